/**
 * The TLS layer: the provider contract, the `native` and `gm` providers, the engine-backed connection,
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
