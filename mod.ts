/**
 * Ferry's embedding API: build and run a server from an Envoy v3 bootstrap, with the built-in extensions plus
 * your own. No side effects on import.
 *
 * Listeners can be added, updated and removed while the server runs, with Envoy's LDS semantics (new connections
 * get the new config, old ones drain; the bound socket is kept when the address is unchanged):
 * `await server.addOrUpdateListener(listenerJson)` (one Envoy v3 `Listener` object; resolves `"added"`,
 * `"updated"` or `"unchanged"`) and `await server.removeListener(name)`. Errors are one-line {@link ConfigError}s
 * naming the field path (`config: listener.address: ...`), and leave the running config as it was.
 *
 * @example
 * ```ts
 * import { createServer } from "./mod.ts";
 * const server = await createServer({ static_resources: { listeners: [], clusters: [] } });
 * await server.addOrUpdateListener({
 *   name: "api",
 *   address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
 *   filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: {
 *     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
 *     stat_prefix: "api",
 *     route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" },
 *       direct_response: { status: 200, body: { inline_string: "hello" } } }] }] },
 *     http_filters: [{ name: "envoy.filters.http.router", typed_config: {
 *       "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
 *   } }] }],
 * });
 * await server.removeListener("api");
 * await server.drainAndStop(0);
 * ```
 *
 * @module
 */
import { parseBootstrap } from "./lib/config/bootstrap.ts";
import { createRegistries } from "./lib/server/registries.ts";
import type { Extensions } from "./lib/server/registries.ts";
import { Server } from "./lib/server/server.ts";
import type { ServerOptions } from "./lib/server/server.ts";

export * from "./lib/api/mod.ts";
export { parseBootstrap, parseConfigText } from "./lib/config/bootstrap.ts";
export type { BootstrapConfig, ListenerConfig } from "./lib/config/bootstrap.ts";
export { defaultBootstrap } from "./lib/config/default.ts";
export { ObjReader, typedConfig } from "./lib/config/reader.ts";
export { Registry } from "./lib/config/registry.ts";
export type { Registries } from "./lib/config/registry.ts";
export { createRegistries } from "./lib/server/registries.ts";
export type { Extensions } from "./lib/server/registries.ts";
export { NetworkFilterManager } from "./lib/network/filter_manager.ts";
export type { NetworkFilterSpec } from "./lib/network/filter_manager.ts";
export { ListenerError } from "./lib/server/listener.ts";
export type { Listener } from "./lib/server/listener.ts";
export { ListenerManager } from "./lib/server/listener_manager.ts";
export type {
  AddOrUpdateOptions,
  ListenerManagerOptions,
  ListenerUpdateResult,
} from "./lib/server/listener_manager.ts";
export { Server } from "./lib/server/server.ts";
export type { ServerOptions, ServerState } from "./lib/server/server.ts";
export { VERSION } from "./lib/version.ts";
export { parseSecret, SecretManager } from "./lib/tls/secret_manager.ts";
export type { ParsedSecret, Secret, SecretKind, SecretSubscriber } from "./lib/tls/secret_manager.ts";
export { builtinTlsProviders, createTlsProviderRegistry } from "./lib/tls/providers.ts";
export type { TlsProviderRegistryOptions } from "./lib/tls/providers.ts";
export type { TlsParseOptions, TlsProvider, TlsProviderFactory } from "./lib/tls/provider.ts";
/** The GM cryptography library (SM2, SM3, SM4, X.509), also usable on its own. */
export * as gm from "./lib/crypto/mod.ts";

/** Validates `bootstrap` (the JSON form of Envoy's Bootstrap) and starts a server with it. */
export async function createServer(
  bootstrap: unknown,
  options: ServerOptions & { extensions?: Extensions } = {},
): Promise<Server> {
  const registries = createRegistries(options.extensions);
  const config = parseBootstrap(bootstrap, registries);
  return await Server.start(config, registries, options);
}
