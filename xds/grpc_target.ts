/**
 * The gRPC target of an xDS server named by `envoy_grpc.cluster_name`: the static cluster's first host, in
 * plaintext or TLS/mTLS from the cluster's `transport_socket` (an Envoy `UpstreamTlsContext`: certificates, key and
 * trusted CA from files or inline, `sni`), as Envoy reaches its management server through a cluster.
 *
 * gRPC runs on `@grpc/grpc-js`, whose TLS is Node's: a GM (SM2) transport socket cannot carry xDS and is rejected
 * with a message naming the cluster.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { ConfigError } from "../lib/api/errors.ts";
import { describe } from "../lib/config/reader.ts";
import type { GrpcTarget } from "./grpc_source.ts";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function field(o: Obj, key: string): unknown {
  if (key in o) return o[key];
  return o[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())];
}

/** Reads an Envoy `DataSource` (`filename`, `inline_string`, `inline_bytes`). */
function dataSource(v: unknown, path: string): Buffer | undefined {
  if (!isObj(v)) return undefined;
  const file = field(v, "filename");
  if (typeof file === "string") {
    try {
      return Buffer.from(Deno.readFileSync(file));
    } catch (e) {
      throw new ConfigError(`${path}.filename`, `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const s = field(v, "inline_string");
  if (typeof s === "string") return Buffer.from(s);
  const b = field(v, "inline_bytes");
  if (typeof b === "string") return Buffer.from(b, "base64");
  return undefined;
}

const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/**
 * Builds the target from the static cluster `rawCluster` (secret references already resolved) whose first host
 * is `hostKey` (`address:port`).
 */
export function grpcTargetOf(
  rawCluster: Obj,
  hostKey: string,
  authority: string | undefined,
  path: string,
): Omit<GrpcTarget, "label"> {
  const name = String(field(rawCluster, "name"));
  const channelOptions: grpc.ChannelOptions = {
    "grpc.default_authority": authority ?? name,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  };
  const ts = field(rawCluster, "transport_socket");
  if (!isObj(ts)) {
    return { address: hostKey, credentials: grpc.credentials.createInsecure(), channelOptions, metadata: [] };
  }
  const tc = field(ts, "typed_config");
  const tpath = `${path}.transport_socket.typed_config`;
  if (!isObj(tc) || tc["@type"] !== UPSTREAM_TLS) {
    throw new ConfigError(
      tpath,
      `cluster ${describe(name)} carries xDS, which runs over standard TLS only (${UPSTREAM_TLS}); got ${
        describe(isObj(tc) ? tc["@type"] : undefined)
      }`,
    );
  }
  const common = isObj(field(tc, "common_tls_context")) ? field(tc, "common_tls_context") as Obj : {};
  const certs = field(common, "tls_certificates");
  let cert: Buffer | undefined, key: Buffer | undefined;
  if (Array.isArray(certs) && isObj(certs[0])) {
    cert = dataSource(field(certs[0], "certificate_chain"), `${tpath}.common_tls_context.tls_certificates[0]`);
    key = dataSource(field(certs[0], "private_key"), `${tpath}.common_tls_context.tls_certificates[0]`);
  }
  const vc = field(common, "validation_context");
  const ca = isObj(vc)
    ? dataSource(field(vc, "trusted_ca"), `${tpath}.common_tls_context.validation_context`)
    : undefined;
  const sni = field(tc, "sni");
  if (typeof sni === "string" && sni !== "") {
    channelOptions["grpc.ssl_target_name_override"] = sni;
    if (authority === undefined) channelOptions["grpc.default_authority"] = sni;
  }
  const credentials = grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null);
  return { address: hostKey, credentials, channelOptions, metadata: [] };
}
