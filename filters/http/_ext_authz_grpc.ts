/**
 * The gRPC side of ext_authz: Envoy's `envoy.service.auth.v3.Authorization/Check` messages, loaded with protobufjs
 * from the `.proto` files `@grpc/grpc-js-xds` ships (through `xds/proto.ts`'s loader),
 * and a unary call per check on Ferry's own HTTP/2 codec (`lib/upstream/grpc_stream.ts`).
 *
 * @module
 */
import type protobuf from "protobufjs";
import { loadProtoRoot } from "../../xds/proto.ts";
import { connectTcp } from "../../lib/network/connection.ts";
import { GrpcStream } from "../../lib/upstream/grpc_stream.ts";

/** The method path of the authorization service. */
export const CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check";

/** The CheckRequest / CheckResponse types. */
export interface AuthTypes {
  readonly checkRequest: protobuf.Type;
  readonly checkResponse: protobuf.Type;
}

let types: AuthTypes | undefined;

/** Loads `envoy/service/auth/v3/external_auth.proto` and its imports (once per process, synchronously). */
export function authTypes(): AuthTypes {
  if (types) return types;
  const { root } = loadProtoRoot(["envoy/service/auth/v3/external_auth.proto"], "ext_authz protos");
  types = {
    checkRequest: root.lookupType("envoy.service.auth.v3.CheckRequest"),
    checkResponse: root.lookupType("envoy.service.auth.v3.CheckResponse"),
  };
  return types;
}

/** A `CheckResponse` as plain JSON-ish data (snake_case fields, enums as numbers). */
export interface CheckResponse {
  status?: { code?: number; message?: string };
  denied_response?: {
    status?: { code?: number };
    headers?: HeaderValueOption[];
    body?: string;
  };
  ok_response?: {
    headers?: HeaderValueOption[];
    headers_to_remove?: string[];
    response_headers_to_add?: HeaderValueOption[];
  };
}

/** `config.core.v3.HeaderValueOption` as decoded. */
export interface HeaderValueOption {
  header?: { key?: string; value?: string; raw_value?: Uint8Array };
  append?: { value?: boolean } | boolean;
  append_action?: number;
}

/**
 * Check calls to authorization servers, each on its own gRPC stream over Ferry's HTTP/2 client codec
 * (`lib/upstream/grpc_stream.ts`), not `@grpc/grpc-js`: under Deno that runs on `node:http2`, which can abort the
 * whole process inside nghttp2 on a GOAWAY (denoland/deno#36788; it crashed this filter's test 2 runs in 8).
 * One connection per check (loopback sidecar services answer in well under a millisecond); a pooled HTTP/2
 * connection is the next step.
 */
export class GrpcAuthClients {
  /** Calls Check on `target` (`host:port`); `done` gets the response or an error text, once (not after cancel). */
  check(
    target: string,
    request: Record<string, unknown>,
    opts: { timeoutMs: number; initialMetadata: readonly [string, string][] },
    done: (r: CheckResponse | { error: string }) => void,
  ): { cancel(): void } {
    const t = authTypes();
    const bytes = t.checkRequest.encode(t.checkRequest.fromObject(request)).finish();
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(target);
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let response: CheckResponse | undefined;
    const stream = new GrpcStream({
      connect: () => connectTcp(m?.[1] ?? target, Number(m?.[2] ?? 0), Math.max(1, opts.timeoutMs || 5000)),
      authority: target,
      scheme: "http",
      path: CHECK_METHOD,
      metadata: opts.initialMetadata.map(([key, value]) => ({ key, value })),
    });
    const finish = (r: CheckResponse | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.cancel();
      done(r);
    };
    stream.open((msg) => {
      try {
        response = t.checkResponse.toObject(t.checkResponse.decode(msg), {
          enums: Number,
          longs: Number,
          bytes: Uint8Array,
          defaults: false,
        }) as CheckResponse;
      } catch (e) {
        finish({ error: `INTERNAL: undecodable CheckResponse: ${e instanceof Error ? e.message : String(e)}` });
      }
    }, (reason, status) => {
      if (status === 0 && response !== undefined) finish(response);
      else finish({ error: status === 0 ? "INTERNAL: no CheckResponse" : reason });
    });
    stream.write(bytes);
    stream.end();
    if (opts.timeoutMs > 0) {
      timer = setTimeout(() => finish({ error: "DEADLINE_EXCEEDED: check timed out" }), opts.timeoutMs);
    }
    return {
      cancel: () => {
        settled = true;
        clearTimeout(timer);
        stream.cancel();
      },
    };
  }

  /** Nothing to close: each check owns its connection. */
  close(): void {}
}
