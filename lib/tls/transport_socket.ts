/**
 * Transport sockets: parses a listener chain's or a cluster's `transport_socket` into a provider and its context,
 * by `typed_config` `@type`:
 *
 * | `@type` | provider | side |
 * |---|---|---|
 * | `…transport_sockets.tls.v3.DownstreamTlsContext` | `native` | listener |
 * | `…transport_sockets.tls.v3.UpstreamTlsContext` | `native` | cluster |
 * | `type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext` | `gm` | both |
 * | `…transport_sockets.raw_buffer.v3.RawBuffer` | none (plain TCP) | both |
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { prepareSm4Aead } from "../crypto/sm4_aead.ts";
import { ObjReader } from "../config/reader.ts";
import {
  createGmProvider,
  GM_TLS_CONTEXT_TYPE,
  GM_TLS_CONTEXT_TYPE_FERRY,
  type GmContext,
  type GmEngines,
  gmProvider,
  parseGmTlsContext,
} from "./gm.ts";
import {
  DOWNSTREAM_TLS_CONTEXT_TYPE,
  type NativeClientContext,
  nativeProvider,
  type NativeServerContext,
  parseDownstreamTlsContext,
  parseUpstreamTlsContext,
  UPSTREAM_TLS_CONTEXT_TYPE,
} from "./native.ts";
import type { TlsProvider } from "./provider.ts";

const RAW_BUFFER_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

/** A listener chain's TLS: the provider and its server context. */
export type ServerTransportSocket =
  | {
    readonly kind: "native";
    readonly provider: TlsProvider<NativeServerContext, NativeClientContext>;
    readonly context: NativeServerContext;
  }
  | { readonly kind: "gm"; readonly provider: TlsProvider<GmContext, GmContext>; readonly context: GmContext };

/** A cluster's TLS: the provider and its client context. */
export type ClientTransportSocket =
  | {
    readonly kind: "native";
    readonly provider: TlsProvider<NativeServerContext, NativeClientContext>;
    readonly context: NativeClientContext;
  }
  | { readonly kind: "gm"; readonly provider: TlsProvider<GmContext, GmContext>; readonly context: GmContext };

function readSocket(
  raw: unknown,
  path: string,
): { name: string | undefined; type: string | undefined; tc: ObjReader | undefined } {
  const o = new ObjReader(raw, path);
  const name = o.str("name");
  const tc = o.obj("typed_config");
  o.done();
  const type = tc?.str("@type");
  if (!tc && name === undefined) throw new ConfigError(path, "one of name, typed_config is required");
  return { name, type, tc };
}

function unknownType(path: string, type: string | undefined, name: string | undefined, allowed: string[]): never {
  if (type !== undefined) {
    throw new ConfigError(
      `${path}.typed_config.@type`,
      `transport socket type ${JSON.stringify(type)} is not supported here (known: ${allowed.join(", ")})`,
    );
  }
  throw new ConfigError(`${path}.typed_config`, `is required for transport socket ${JSON.stringify(name)}`);
}

/**
 * Parses a listener filter chain's `transport_socket`. Returns undefined for raw_buffer (plain TCP).
 * `engines` overrides the GM engine table (tests).
 */
export function parseServerTransportSocket(
  raw: unknown,
  path: string,
  engines?: GmEngines,
): ServerTransportSocket | undefined {
  const { name, type, tc } = readSocket(raw, path);
  if (type === RAW_BUFFER_TYPE || (!tc && name === "envoy.transport_sockets.raw_buffer")) {
    tc?.done();
    return undefined;
  }
  if (type === DOWNSTREAM_TLS_CONTEXT_TYPE && tc) {
    const context = parseDownstreamTlsContext(tc);
    tc.done();
    return { kind: "native", provider: nativeProvider, context };
  }
  if ((type === GM_TLS_CONTEXT_TYPE || type === GM_TLS_CONTEXT_TYPE_FERRY) && tc) {
    const context = parseGmTlsContext(tc, "server", engines);
    prepareSm4Aead();
    return { kind: "gm", provider: engines ? createGmProvider(engines) : gmProvider, context };
  }
  if (type === UPSTREAM_TLS_CONTEXT_TYPE) {
    throw new ConfigError(
      `${path}.typed_config.@type`,
      "a listener needs a DownstreamTlsContext, not an UpstreamTlsContext",
    );
  }
  return unknownType(path, type, name, [DOWNSTREAM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE, RAW_BUFFER_TYPE]);
}

/** Parses a cluster's `transport_socket`. Returns undefined for raw_buffer (plain TCP). */
export function parseClientTransportSocket(
  raw: unknown,
  path: string,
  engines?: GmEngines,
): ClientTransportSocket | undefined {
  const { name, type, tc } = readSocket(raw, path);
  if (type === RAW_BUFFER_TYPE || (!tc && name === "envoy.transport_sockets.raw_buffer")) {
    tc?.done();
    return undefined;
  }
  if (type === UPSTREAM_TLS_CONTEXT_TYPE && tc) {
    const context = parseUpstreamTlsContext(tc);
    tc.done();
    return { kind: "native", provider: nativeProvider, context };
  }
  if ((type === GM_TLS_CONTEXT_TYPE || type === GM_TLS_CONTEXT_TYPE_FERRY) && tc) {
    const context = parseGmTlsContext(tc, "client", engines);
    prepareSm4Aead();
    return { kind: "gm", provider: engines ? createGmProvider(engines) : gmProvider, context };
  }
  if (type === DOWNSTREAM_TLS_CONTEXT_TYPE) {
    throw new ConfigError(
      `${path}.typed_config.@type`,
      "a cluster needs an UpstreamTlsContext, not a DownstreamTlsContext",
    );
  }
  return unknownType(path, type, name, [UPSTREAM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE, RAW_BUFFER_TYPE]);
}
