/**
 * The gRPC side of ext_authz: Envoy's `envoy.service.auth.v3.Authorization/Check` messages, loaded with protobufjs
 * from the `.proto` files `@grpc/grpc-js-xds` ships (through `xds/proto.ts`'s loader),
 * and a unary call with `@grpc/grpc-js` per authorization host.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import { Buffer } from "node:buffer";
import { loadProtoRoot } from "../../xds/proto.ts";

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

/** One gRPC client per authorization server address, closed with {@link GrpcAuthClients.close}. */
export class GrpcAuthClients {
  readonly #clients = new Map<string, grpc.Client>();

  /** Calls Check on `target` (`host:port`); `done` gets the response or an error text, once. */
  check(
    target: string,
    request: Record<string, unknown>,
    opts: { timeoutMs: number; initialMetadata: readonly [string, string][] },
    done: (r: CheckResponse | { error: string }) => void,
  ): { cancel(): void } {
    const t = authTypes();
    let client = this.#clients.get(target);
    if (!client) {
      // Idle channels drop their connection after a minute: a replaced config's clients are never closed explicitly
      // (filter factories have no teardown hook), so they must not hold sockets.
      client = new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.client_idle_timeout_ms": 60_000 });
      this.#clients.set(target, client);
    }
    const md = new grpc.Metadata();
    for (const [k, v] of opts.initialMetadata) md.add(k, v);
    const msg = t.checkRequest.fromObject(request);
    const bytes = t.checkRequest.encode(msg).finish();
    const call = client.makeUnaryRequest<Uint8Array, CheckResponse>(
      CHECK_METHOD,
      (b) => Buffer.from(b),
      (b) =>
        t.checkResponse.toObject(t.checkResponse.decode(b), {
          enums: Number,
          longs: Number,
          bytes: Uint8Array,
          defaults: false,
        }) as CheckResponse,
      bytes,
      md,
      opts.timeoutMs > 0 ? { deadline: Date.now() + opts.timeoutMs } : {},
      (err, res) => {
        if (err) done({ error: `${grpc.status[err.code] ?? err.code}: ${err.details}` });
        else done(res ?? {});
      },
    );
    return { cancel: () => call.cancel() };
  }

  /** Closes every client. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
