/**
 * The built-in network filters.
 * @module
 */
import type { NetworkFilterFactory } from "../../lib/api/network.ts";
import { httpConnectionManagerFactory } from "./http_connection_manager.ts";
import { connectionLimitFilterFactory } from "./connection_limit.ts";
import { networkFaultFilterFactory } from "./fault_inject.ts";
import { networkLocalRateLimitFilterFactory } from "./local_ratelimit.ts";
import { networkRbacFilterFactory } from "./rbac.ts";
import { rpcProxyFilterFactory } from "./rpc_proxy.ts";
import { tcpProxyFilterFactory } from "./tcp_proxy.ts";

export { httpConnectionManagerFactory, rpcProxyFilterFactory, tcpProxyFilterFactory };
export {
  connectionLimitFilterFactory,
  networkFaultFilterFactory,
  networkLocalRateLimitFilterFactory,
  networkRbacFilterFactory,
};

/** Built-in network filter factories. */
export const builtinNetworkFilters: readonly NetworkFilterFactory[] = [
  httpConnectionManagerFactory as NetworkFilterFactory,
  tcpProxyFilterFactory as NetworkFilterFactory,
  rpcProxyFilterFactory as NetworkFilterFactory,
  networkRbacFilterFactory as NetworkFilterFactory,
  connectionLimitFilterFactory as NetworkFilterFactory,
  networkLocalRateLimitFilterFactory as NetworkFilterFactory,
  networkFaultFilterFactory as NetworkFilterFactory,
];
