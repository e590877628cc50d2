/**
 * Transport sockets: parses a listener chain's or a cluster's `transport_socket` into a provider and its context,
 * by `typed_config` `@type`, looked up in a registry of {@link TlsProviderFactory}s (`providers.ts`):
 *
 * | `@type` | provider | side |
 * |---|---|---|
 * | `…transport_sockets.tls.v3.DownstreamTlsContext` | `native` | listener |
 * | `…transport_sockets.tls.v3.UpstreamTlsContext` | `native` | cluster |
 * | `type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext` | `gm` | both |
 * | `…transport_sockets.raw_buffer.v3.RawBuffer` | none (plain TCP) | both |
 *
 * A context whose `common_tls_context` names secrets (`tls_certificate_sds_secret_configs`, ...), or a
 * `GmTlsContext` with `*_sds_secret_config` fields, follows them: the
 * transport socket subscribes to the secret provider, and an update reparses the context with the same factory
 * (rejecting the update if it does not parse) and swaps it in. `context` is then a getter: every handshake that
 * starts afterwards reads the new context; connections already established keep theirs.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { ObjReader } from "../config/reader.ts";
import type { Registry } from "../config/registry.ts";
import { resolveWith, type SecretBinding, secretBindingOf } from "../config/secrets.ts";
import type { GmContext, GmEngines } from "./_gm_types.ts";
import type { NativeClientContext, NativeServerContext } from "./native.ts";
import type { TlsProvider, TlsProviderFactory } from "./provider.ts";
import { createTlsProviderRegistry } from "./providers.ts";

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

/** Options of {@link parseServerTransportSocket} and {@link parseClientTransportSocket}. */
export interface TransportSocketOptions {
  /** Overrides the GM engine table (tests); ignored when `providers` is given. */
  readonly engines?: GmEngines | undefined;
  /** The TLS providers to choose from; default: the built-in ones (`createTlsProviderRegistry`). */
  readonly providers?: Registry<TlsProviderFactory> | undefined;
}

function registryOf(options: TransportSocketOptions): Registry<TlsProviderFactory> {
  return options.providers ?? createTlsProviderRegistry(options.engines ? { gmEngines: options.engines } : {});
}

/** The first `@type` of each provider's side, then raw_buffer: the "known" list of messages. */
function knownTypes(providers: Registry<TlsProviderFactory>, side: "server" | "client"): string[] {
  const out: string[] = [];
  for (const n of providers.names) {
    const f = providers.byName(n)!;
    const first = (side === "server" ? f.serverConfigTypes : f.clientConfigTypes)[0];
    if (first !== undefined) out.push(first);
  }
  return [...out, RAW_BUFFER_TYPE];
}

/** A context that a secret update may replace; read through the transport socket's `context` getter. */
interface Rotating<T> {
  context: T;
}

/**
 * Subscribes to every secret the context names. Kept apart from the closure that holds `state` strongly (the
 * transport socket's getter), and holding it only weakly: a listener or cluster that was replaced and collected
 * drops its subscriptions at the next update instead of pinning its config.
 */
function follow(
  binding: SecretBinding,
  tcRaw: Readonly<Record<string, unknown>>,
  key: string | undefined,
  ref: WeakRef<Rotating<unknown>>,
  parse: (tc: ObjReader, rotating: boolean) => unknown,
  path: string,
): void {
  for (const name of binding.names) {
    const off = binding.manager.subscribe(name, (next) => {
      const state = ref.deref();
      if (!state) {
        off();
        return;
      }
      const resolved = resolveWith(binding, next);
      const tc = new ObjReader(key === undefined ? resolved : { ...tcRaw, [key]: resolved }, path);
      tc.str("@type");
      const context = parse(tc, true);
      return () => {
        state.context = context;
      };
    });
  }
}

/** Parses `tc` with `parse`; a context bound to secrets comes back behind a getter that follows them. */
function bind<T>(
  tc: ObjReader,
  parse: (tc: ObjReader, rotating: boolean) => T,
): { readonly context: T } {
  // A whole typed_config bound (GmTlsContext) or its common_tls_context (Envoy's TLS contexts).
  const common = "common_tls_context" in tc.raw ? "common_tls_context" : "commonTlsContext";
  const own = secretBindingOf(tc.raw);
  const key = own ? undefined : common;
  const binding = own ?? secretBindingOf(tc.raw[common]);
  if (!binding) return { context: parse(tc, false) };
  const tcRaw = { ...tc.raw };
  const state: Rotating<T> = { context: parse(tc, true) };
  // No closure created here may reach the subscriber: closures of one scope share their captured variables.
  follow(binding, tcRaw, key, new WeakRef(state), parse, tc.path);
  return {
    get context() {
      return state.context;
    },
  };
}

/** The transport socket of `factory` over its (possibly rotating) context. */
function socketOf<T>(factory: TlsProviderFactory, held: { readonly context: T }): {
  readonly kind: string;
  readonly provider: TlsProvider;
  readonly context: T;
} {
  return {
    kind: factory.name,
    provider: factory.provider,
    get context() {
      return held.context;
    },
  };
}

/** Parses a listener filter chain's `transport_socket`. Returns undefined for raw_buffer (plain TCP). */
export function parseServerTransportSocket(
  raw: unknown,
  path: string,
  options: TransportSocketOptions = {},
): ServerTransportSocket | undefined {
  const { name, type, tc } = readSocket(raw, path);
  if (type === RAW_BUFFER_TYPE || (!tc && name === "envoy.transport_sockets.raw_buffer")) {
    tc?.done();
    return undefined;
  }
  const providers = registryOf(options);
  const factory = type !== undefined && tc ? providers.byType(type) : undefined;
  if (factory && tc) {
    const held = bind(tc, (r, rotating) => factory.parseServer(r, type!, { rotating }));
    // The registry is heterogeneous; `kind` is the factory's name, which pairs provider and context.
    return socketOf(factory, held) as ServerTransportSocket;
  }
  return unknownType(path, type, name, knownTypes(providers, "server"));
}

/** Parses a cluster's `transport_socket`. Returns undefined for raw_buffer (plain TCP). */
export function parseClientTransportSocket(
  raw: unknown,
  path: string,
  options: TransportSocketOptions = {},
): ClientTransportSocket | undefined {
  const { name, type, tc } = readSocket(raw, path);
  if (type === RAW_BUFFER_TYPE || (!tc && name === "envoy.transport_sockets.raw_buffer")) {
    tc?.done();
    return undefined;
  }
  const providers = registryOf(options);
  const factory = type !== undefined && tc ? providers.byType(type) : undefined;
  if (factory && tc) {
    const held = bind(tc, (r, rotating) => factory.parseClient(r, type!, { rotating }));
    return socketOf(factory, held) as ClientTransportSocket;
  }
  return unknownType(path, type, name, knownTypes(providers, "client"));
}

/**
 * The client context of `ts` as a handshake offering `fallback` by ALPN uses it: unchanged when the context names
 * its own `alpn_protocols` (Envoy keeps those), else a copy offering `fallback` (Envoy's
 * `application_protocol_fallback`, which a cluster with `auto_config` sets to `h2`, `http/1.1`). A GM copy starts
 * its own engine cache, whose client engines are built with the offer.
 */
export function clientContextWithAlpn(
  ts: ClientTransportSocket,
  fallback: readonly string[],
): ClientTransportSocket["context"] {
  const ctx = ts.context;
  if (ctx.alpn.length > 0 || fallback.length === 0) return ctx;
  if (ts.kind === "native") return { ...ts.context, alpn: [...fallback] };
  const gm = ts.context;
  return {
    ...gm,
    alpn: [...fallback],
    engineState: { tls13Clients: new Map(), tls13Credentials: gm.engineState.tls13Credentials },
  };
}
