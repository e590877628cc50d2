/**
 * The built-in network filters.
 * @module
 */
import type { NetworkFilterFactory } from "../../lib/api/network.ts";
import { httpConnectionManagerFactory } from "./http_connection_manager.ts";
import { rpcProxyFilterFactory } from "./rpc_proxy.ts";
import { tcpProxyFilterFactory } from "./tcp_proxy.ts";

export { httpConnectionManagerFactory, rpcProxyFilterFactory, tcpProxyFilterFactory };

/** Built-in network filter factories. */
export const builtinNetworkFilters: readonly NetworkFilterFactory[] = [
  httpConnectionManagerFactory as NetworkFilterFactory,
  tcpProxyFilterFactory as NetworkFilterFactory,
  rpcProxyFilterFactory as NetworkFilterFactory,
];
