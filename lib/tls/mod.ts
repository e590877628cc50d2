/**
 * The TLS layer: the provider contract, the `native` and `gm` providers and their list as registered factories
 * ({@link builtinTlsProviders}), the secret provider ({@link SecretManager}), the engine-backed connection,
 * ClientHello inspection, transport-socket config and `ssl.*` stats.
 * @module
 */
export * from "./provider.ts";
export * from "./client_hello.ts";
export * from "./engine_connection.ts";
export * from "./native.ts";
export * from "./gm.ts";
export * from "./transport_socket.ts";
export * from "./stats.ts";
export * from "./gm_engines.ts";
export * from "./providers.ts";
export * from "./secret_manager.ts";
