/** Connections. @module */
export { connectTcp, ConnectTimeoutError, DenoConnection, nextConnectionId } from "./connection.ts";
export type { ConnectionOptions } from "./connection.ts";
