/**
 * Upstream: cluster config, the cluster manager, clusters and their types (STATIC, STRICT_DNS, LOGICAL_DNS), load
 * balancers (round robin, least request, random, ring hash, Maglev), connection pools by pool mode (the HTTP/1
 * ping-pong pool), active health checking, outlier detection and circuit breakers. Cluster types, load balancers
 * and pools are registered factories: {@link builtinClusterTypes}, {@link builtinLoadBalancers},
 * {@link builtinConnPools}, gathered by {@link createUpstreamRegistries}.
 *
 * @module
 */
export {
  DEFAULT_OVERPROVISIONING_FACTOR,
  edsServiceName,
  MAX_PRIORITY,
  parseCluster,
  parseClusters,
  parseLoadAssignment,
} from "./config.ts";
export type {
  ClusterConfig,
  ClusterType,
  DnsLookupFamily,
  EdsClusterConfig,
  EndpointConfig,
  EndpointHealthStatus,
  LbPolicy,
  LeastRequestConfig,
  LoadAssignmentConfig,
  LoadAssignmentPolicy,
  LocalityConfig,
  LocalityEndpointsConfig,
  ThresholdsConfig,
} from "./config.ts";
export { ClusterManagerImpl, compareClusterConfig } from "./cluster_manager.ts";
export type { ClusterConfigChange, ClusterManagerOptions } from "./cluster_manager.ts";
export { ClusterImpl, ClusterInfoImpl } from "./cluster.ts";
export type { ClusterDescription, ClusterOptions, CodecLookup, HostDescription } from "./cluster.ts";
export {
  builtinClusterTypes,
  createClusterTypeRegistry,
  edsClusterType,
  logicalDnsClusterType,
  lookupClusterType,
  staticClusterType,
  strictDnsClusterType,
} from "./cluster_types.ts";
export type {
  ClusterTypeFactory,
  DiscoveryStats,
  HostDiscovery,
  HostDiscoveryContext,
  HostSpec,
} from "./cluster_types.ts";
export {
  builtinConnPools,
  createConnPoolRegistry,
  multiplexStreamIdPoolFactory,
  pingPongPoolFactory,
} from "./pool_factory.ts";
export type { ConnPoolFactory, ConnPoolParams, UpstreamConnPool } from "./pool_factory.ts";
export { createUpstreamRegistries } from "./registries.ts";
export type { UpstreamExtensions, UpstreamRegistries } from "./registries.ts";
export { HealthFlag, HostImpl, hostKey, localityKey } from "./host.ts";
export type { CoarseHealth, HealthFlagBit, HostCounters, HostOptions, HostUpdate } from "./host.ts";
export { HealthChecker } from "./health_check.ts";
export type { HealthCheckerOptions, HealthCheckTarget } from "./health_check.ts";
export { HostOutlierMonitor, OutlierDetector } from "./outlier.ts";
export type { EjectionType, OutlierDetectorOptions } from "./outlier.ts";
export type {
  HealthCheckConfig,
  HttpHealthCheckConfig,
  MaglevConfig,
  OutlierDetectionConfig,
  RetryBudgetConfig,
  RingHashConfig,
  SlowStartConfig,
  TcpHealthCheckConfig,
} from "./resilience_config.ts";
export { computeHashKey } from "./lb/hash_policy.ts";
export type { HashResult } from "./lb/hash_policy.ts";
export { Http1ConnPool } from "./http1_pool.ts";
export { MuxConnPool } from "./mux_pool.ts";
export type { MuxConnPoolOptions } from "./mux_pool.ts";
export type { Http1ConnPoolOptions, PoolStreamEncoder, UpstreamWatermarkCallbacks } from "./http1_pool.ts";
export { connectHost } from "./connect.ts";
export type { ConnectOptions, Connector } from "./connect.ts";
export { systemResolver } from "./dns.ts";
export type { DnsResolver, DnsResult } from "./dns.ts";
export { createResources, ResourceLimit, RetryBudgetLimit } from "./resources.ts";
export type { ClusterResources } from "./resources.ts";
export { CLUSTER_STAT_NAMES, createClusterStats } from "./stats.ts";
export * from "./lb/mod.ts";
