/** Connections: the epoll engine (Linux, FFI) and the `Deno.Conn` engine. @module */
export { connectTcp, ConnectTimeoutError, DenoConnection, nextConnectionId } from "./connection.ts";
export type { ConnectionOptions } from "./connection.ts";
export { connectEpoll, epollAvailable, EpollConnection, EpollListener } from "./epoll.ts";
export type { EpollConnectionOptions } from "./epoll.ts";
