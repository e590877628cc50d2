/**
 * Ferry's embedding API: build and run a server from an Envoy v3 bootstrap, with the built-in extensions plus
 * your own. No side effects on import.
 *
 * @example
 * ```ts
 * import { createServer } from "./mod.ts";
 * const server = await createServer({ static_resources: { listeners: [], clusters: [] } });
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
export { Server } from "./lib/server/server.ts";
export type { ServerOptions, ServerState } from "./lib/server/server.ts";
export { VERSION } from "./lib/version.ts";
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
