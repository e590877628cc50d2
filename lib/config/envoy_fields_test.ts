/**
 * Real Envoy configs through the real bootstrap loader: enum names in any case, single values where lists are
 * expected, and every Envoy field that Ferry does not implement reported as `is not supported` (a made-up field
 * stays `unknown field`), per message, in the place the message occupies in a bootstrap.
 */
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../api/errors.ts";
import { createRegistries } from "../server/registries.ts";
import { ENVOY_FIELDS, type EnvoyMessage } from "./_envoy_fields.ts";
import type { HcmConfig } from "../stream/hcm_config.ts";
import { type BootstrapConfig, parseBootstrap } from "./bootstrap.ts";

type Obj = Record<string, unknown>;

const HCM_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const UPSTREAM_HTTP = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** Extra fields for each place a message occupies in the bootstrap built by {@link bootstrap}. */
interface Patches {
  bootstrap?: Obj;
  admin?: Obj;
  listener?: Obj;
  filterChain?: Obj;
  hcm?: Obj;
  httpFilter?: Obj;
  hcmUpgrade?: Obj;
  hcmCommonHttp?: Obj;
  hcmHttp1?: Obj;
  hcmHttp2?: Obj;
  hcmHttp2Keepalive?: Obj;
  routeConfig?: Obj;
  vhost?: Obj;
  route?: Obj;
  match?: Obj;
  action?: Obj;
  hashPolicy?: Obj;
  routeUpgrade?: Obj;
  retry?: Obj;
  weighted?: Obj;
  clusterWeight?: Obj;
  router?: Obj;
  fault?: Obj;
  cluster?: Obj;
  commonLb?: Obj;
  circuitBreakers?: Obj;
  thresholds?: Obj;
  outlier?: Obj;
  healthCheck?: Obj;
  httpHealthCheck?: Obj;
  tcpHealthCheck?: Obj;
  loadAssignment?: Obj;
  policy?: Obj;
  locality?: Obj;
  lbEndpoint?: Obj;
  endpoint?: Obj;
  clusterCommonHttp?: Obj;
  upstreamHttp?: Obj;
  upstreamHttp1?: Obj;
  tcpProxy?: Obj;
  tcpWeight?: Obj;
  dynamic?: Obj;
  configSource?: Obj;
  apiConfigSource?: Obj;
  grpcService?: Obj;
  envoyGrpc?: Obj;
  pathConfigSource?: Obj;
}

/** A valid bootstrap (an HCM listener, a cluster "c"), with `p`'s fields added in their places. */
function bootstrap(p: Patches = {}): Obj {
  const weighted = p.weighted || p.clusterWeight;
  const action: Obj = {
    ...(weighted
      ? { weighted_clusters: { clusters: [{ name: "c", weight: 1, ...p.clusterWeight }], ...p.weighted } }
      : {
        cluster: "c",
      }),
    ...(p.retry ? { retry_policy: { retry_on: "5xx", ...p.retry } } : {}),
    ...(p.hashPolicy ? { hash_policy: [{ header: { header_name: "x-h" }, ...p.hashPolicy }] } : {}),
    ...(p.routeUpgrade ? { upgrade_configs: [{ upgrade_type: "websocket", ...p.routeUpgrade }] } : {}),
    ...p.action,
  };
  const router = { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER_TYPE, ...p.router } };
  const fault = { name: "envoy.filters.http.fault", typed_config: { "@type": FAULT_TYPE, ...p.fault } };
  const hcm = {
    "@type": HCM_TYPE,
    stat_prefix: "in",
    route_config: {
      virtual_hosts: [{
        name: "v",
        domains: ["*"],
        routes: [{ match: { prefix: "/", ...p.match }, route: action, ...p.route }],
        ...p.vhost,
      }],
      ...p.routeConfig,
    },
    http_filters: [...(p.fault ? [fault] : []), { ...router, ...p.httpFilter }],
    ...(p.hcmUpgrade ? { upgrade_configs: [{ upgrade_type: "websocket", ...p.hcmUpgrade }] } : {}),
    ...(p.hcmCommonHttp ? { common_http_protocol_options: p.hcmCommonHttp } : {}),
    ...(p.hcmHttp1 ? { http_protocol_options: p.hcmHttp1 } : {}),
    ...(p.hcmHttp2 || p.hcmHttp2Keepalive
      ? {
        http2_protocol_options: {
          ...(p.hcmHttp2Keepalive ? { connection_keepalive: { timeout: "1s", ...p.hcmHttp2Keepalive } } : {}),
          ...p.hcmHttp2,
        },
      }
      : {}),
    ...p.hcm,
  };
  const listeners: Obj[] = [{
    name: "l",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }],
      ...p.filterChain,
    }],
    ...p.listener,
  }];
  if (p.tcpProxy || p.tcpWeight) {
    const target = p.tcpWeight ? { weighted_clusters: { clusters: [{ name: "c", weight: 1, ...p.tcpWeight }] } } : {
      cluster: "c",
    };
    listeners.push({
      name: "t",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      filter_chains: [{
        filters: [{
          name: "envoy.filters.network.tcp_proxy",
          typed_config: { "@type": TCP_PROXY_TYPE, stat_prefix: "t", ...target, ...p.tcpProxy },
        }],
      }],
    });
  }
  const hc = p.healthCheck || p.httpHealthCheck || p.tcpHealthCheck;
  // A checker alternative under test replaces the HTTP checker (they are a oneof).
  const otherChecker = ["grpc_health_check", "grpcHealthCheck", "custom_health_check", "customHealthCheck"]
    .some((k) => p.healthCheck?.[k] !== undefined);
  const checker = p.tcpHealthCheck
    ? { tcp_health_check: p.tcpHealthCheck }
    : otherChecker
    ? {}
    : { http_health_check: { path: "/health", ...p.httpHealthCheck } };
  const upstream = p.upstreamHttp || p.upstreamHttp1;
  const cluster: Obj = {
    name: "c",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: "c",
      endpoints: [{
        lb_endpoints: [{
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 8080 } }, ...p.endpoint },
          ...p.lbEndpoint,
        }],
        ...p.locality,
      }],
      ...(p.policy ? { policy: p.policy } : {}),
      ...p.loadAssignment,
    },
    ...(p.commonLb ? { common_lb_config: p.commonLb } : {}),
    ...(p.circuitBreakers || p.thresholds
      ? { circuit_breakers: { thresholds: [{ max_connections: 10, ...p.thresholds }], ...p.circuitBreakers } }
      : {}),
    ...(p.outlier ? { outlier_detection: p.outlier } : {}),
    ...(hc
      ? {
        health_checks: [{
          timeout: "1s",
          interval: "5s",
          unhealthy_threshold: 2,
          healthy_threshold: 2,
          ...checker,
          ...p.healthCheck,
        }],
      }
      : {}),
    ...(p.clusterCommonHttp ? { common_http_protocol_options: p.clusterCommonHttp } : {}),
    ...(upstream
      ? {
        typed_extension_protocol_options: {
          [UPSTREAM_HTTP]: {
            "@type": `type.googleapis.com/${UPSTREAM_HTTP}`,
            ...(p.upstreamHttp1 ? { explicit_http_config: { http_protocol_options: p.upstreamHttp1 } } : {}),
            ...p.upstreamHttp,
          },
        },
      }
      : {}),
    ...p.cluster,
  };
  const dynamic = p.dynamic || p.configSource || p.apiConfigSource || p.grpcService || p.envoyGrpc ||
    p.pathConfigSource;
  return {
    ...(p.admin ? { admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } }, ...p.admin } } : {}),
    static_resources: { listeners, clusters: [cluster] },
    ...(dynamic
      ? {
        dynamic_resources: {
          ads_config: {
            api_type: "GRPC",
            transport_api_version: "V3",
            grpc_services: [{ envoy_grpc: { cluster_name: "c", ...p.envoyGrpc }, ...p.grpcService }],
            ...p.apiConfigSource,
          },
          lds_config: { ads: {}, ...p.configSource },
          cds_config: { path_config_source: { path: "/tmp/cds.yaml", ...p.pathConfigSource } },
          ...p.dynamic,
        },
      }
      : {}),
    ...p.bootstrap,
  };
}

function load(raw: unknown): BootstrapConfig {
  return parseBootstrap(raw, createRegistries());
}

/** The parsed HttpConnectionManager of the first listener's chain. */
function hcmOf(config: BootstrapConfig): HcmConfig {
  return (config.listeners[0]!.filterChains[0]!.filters[0]!.config as { hcm: HcmConfig }).hcm;
}

function loadError(raw: unknown): string {
  return assertThrows(() => load(raw), ConfigError).message;
}

const L0 = "static_resources.listeners[0]";
const HCM = `${L0}.filter_chains[0].filters[0].typed_config`;
const VH = `${HCM}.route_config.virtual_hosts[0]`;
const ROUTE = `${VH}.routes[0]`;
const ACTION = `${ROUTE}.route`;
const C0 = "static_resources.clusters[0]";
const LB_EP = `${C0}.load_assignment.endpoints[0].lb_endpoints[0]`;
const TCP = "static_resources.listeners[1].filter_chains[0].filters[0].typed_config";

/** One place of an Envoy message: where its fields go and the path they are reported at. */
interface Place {
  readonly message: EnvoyMessage;
  readonly patch: keyof Patches;
  readonly path: string;
}

const PLACES: readonly Place[] = [
  { message: "envoy.config.bootstrap.v3.Bootstrap", patch: "bootstrap", path: "" },
  { message: "envoy.config.bootstrap.v3.Bootstrap.DynamicResources", patch: "dynamic", path: "dynamic_resources" },
  { message: "envoy.config.core.v3.ConfigSource", patch: "configSource", path: "dynamic_resources.lds_config" },
  { message: "envoy.config.core.v3.ApiConfigSource", patch: "apiConfigSource", path: "dynamic_resources.ads_config" },
  {
    message: "envoy.config.core.v3.GrpcService",
    patch: "grpcService",
    path: "dynamic_resources.ads_config.grpc_services[0]",
  },
  {
    message: "envoy.config.core.v3.GrpcService.EnvoyGrpc",
    patch: "envoyGrpc",
    path: "dynamic_resources.ads_config.grpc_services[0].envoy_grpc",
  },
  {
    message: "envoy.config.core.v3.PathConfigSource",
    patch: "pathConfigSource",
    path: "dynamic_resources.cds_config.path_config_source",
  },
  { message: "envoy.config.bootstrap.v3.Admin", patch: "admin", path: "admin" },
  { message: "envoy.config.listener.v3.Listener", patch: "listener", path: L0 },
  { message: "envoy.config.listener.v3.FilterChain", patch: "filterChain", path: `${L0}.filter_chains[0]` },
  {
    message: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    patch: "hcm",
    path: HCM,
  },
  {
    message: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    patch: "httpFilter",
    path: `${HCM}.http_filters[0]`,
  },
  {
    message: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig",
    patch: "hcmUpgrade",
    path: `${HCM}.upgrade_configs[0]`,
  },
  {
    message: "envoy.config.core.v3.HttpProtocolOptions",
    patch: "hcmCommonHttp",
    path: `${HCM}.common_http_protocol_options`,
  },
  { message: "envoy.config.core.v3.Http1ProtocolOptions", patch: "hcmHttp1", path: `${HCM}.http_protocol_options` },
  { message: "envoy.config.core.v3.Http2ProtocolOptions", patch: "hcmHttp2", path: `${HCM}.http2_protocol_options` },
  {
    message: "envoy.config.core.v3.KeepaliveSettings",
    patch: "hcmHttp2Keepalive",
    path: `${HCM}.http2_protocol_options.connection_keepalive`,
  },
  { message: "envoy.config.route.v3.RouteConfiguration", patch: "routeConfig", path: `${HCM}.route_config` },
  { message: "envoy.config.route.v3.VirtualHost", patch: "vhost", path: VH },
  { message: "envoy.config.route.v3.Route", patch: "route", path: ROUTE },
  { message: "envoy.config.route.v3.RouteMatch", patch: "match", path: `${ROUTE}.match` },
  { message: "envoy.config.route.v3.RouteAction", patch: "action", path: ACTION },
  { message: "envoy.config.route.v3.RouteAction.HashPolicy", patch: "hashPolicy", path: `${ACTION}.hash_policy[0]` },
  {
    message: "envoy.config.route.v3.RouteAction.UpgradeConfig",
    patch: "routeUpgrade",
    path: `${ACTION}.upgrade_configs[0]`,
  },
  { message: "envoy.config.route.v3.RetryPolicy", patch: "retry", path: `${ACTION}.retry_policy` },
  { message: "envoy.config.route.v3.WeightedCluster", patch: "weighted", path: `${ACTION}.weighted_clusters` },
  {
    message: "envoy.config.route.v3.WeightedCluster.ClusterWeight",
    patch: "clusterWeight",
    path: `${ACTION}.weighted_clusters.clusters[0]`,
  },
  {
    message: "envoy.extensions.filters.http.router.v3.Router",
    patch: "router",
    path: `${HCM}.http_filters[0].typed_config`,
  },
  {
    message: "envoy.extensions.filters.http.fault.v3.HTTPFault",
    patch: "fault",
    path: `${HCM}.http_filters[0].typed_config`,
  },
  { message: "envoy.config.cluster.v3.Cluster", patch: "cluster", path: C0 },
  { message: "envoy.config.cluster.v3.Cluster.CommonLbConfig", patch: "commonLb", path: `${C0}.common_lb_config` },
  { message: "envoy.config.cluster.v3.CircuitBreakers", patch: "circuitBreakers", path: `${C0}.circuit_breakers` },
  {
    message: "envoy.config.cluster.v3.CircuitBreakers.Thresholds",
    patch: "thresholds",
    path: `${C0}.circuit_breakers.thresholds[0]`,
  },
  { message: "envoy.config.cluster.v3.OutlierDetection", patch: "outlier", path: `${C0}.outlier_detection` },
  { message: "envoy.config.core.v3.HealthCheck", patch: "healthCheck", path: `${C0}.health_checks[0]` },
  {
    message: "envoy.config.core.v3.HealthCheck.HttpHealthCheck",
    patch: "httpHealthCheck",
    path: `${C0}.health_checks[0].http_health_check`,
  },
  {
    message: "envoy.config.core.v3.HealthCheck.TcpHealthCheck",
    patch: "tcpHealthCheck",
    path: `${C0}.health_checks[0].tcp_health_check`,
  },
  {
    message: "envoy.config.endpoint.v3.ClusterLoadAssignment",
    patch: "loadAssignment",
    path: `${C0}.load_assignment`,
  },
  {
    message: "envoy.config.endpoint.v3.ClusterLoadAssignment.Policy",
    patch: "policy",
    path: `${C0}.load_assignment.policy`,
  },
  {
    message: "envoy.config.endpoint.v3.LocalityLbEndpoints",
    patch: "locality",
    path: `${C0}.load_assignment.endpoints[0]`,
  },
  { message: "envoy.config.endpoint.v3.LbEndpoint", patch: "lbEndpoint", path: LB_EP },
  { message: "envoy.config.endpoint.v3.Endpoint", patch: "endpoint", path: `${LB_EP}.endpoint` },
  {
    message: "envoy.config.core.v3.HttpProtocolOptions",
    patch: "clusterCommonHttp",
    path: `${C0}.common_http_protocol_options`,
  },
  {
    message: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    patch: "upstreamHttp",
    path: `${C0}.typed_extension_protocol_options.${UPSTREAM_HTTP}`,
  },
  {
    message: "envoy.config.core.v3.Http1ProtocolOptions",
    patch: "upstreamHttp1",
    path: `${C0}.typed_extension_protocol_options.${UPSTREAM_HTTP}.explicit_http_config.http_protocol_options`,
  },
  { message: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", patch: "tcpProxy", path: TCP },
  {
    message: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
    patch: "tcpWeight",
    path: `${TCP}.weighted_clusters.clusters[0]`,
  },
];

/**
 * The Envoy fields Ferry does not implement, per place: each must be reported as `is not supported` at its path.
 * Fields Ferry accepts and ignores (metadata, runtime keys, stats toggles) are not here.
 */
const NOT_SUPPORTED: Readonly<Record<keyof Patches, readonly string[]>> = {
  bootstrap: [
    "node_context_params",
    "cluster_manager",
    "hds_config",
    "flags_path",
    "stats_sinks",
    "deferred_stat_options",
    "stats_config",
    "stats_flush_on_admin",
    "watchdog",
    "watchdogs",
    "enable_dispatcher_stats",
    "header_prefix",
    "stats_server_version_override",
    "use_tcp_for_dns_lookups",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "fatal_actions",
    "config_sources",
    "default_config_source",
    "default_socket_interface",
    "certificate_provider_instances",
    "inline_headers",
    "perf_tracing_file_path",
    "default_regex_engine",
    "xds_delegate_extension",
    "xds_config_tracker_extension",
    "listener_manager",
    "application_log_config",
    "grpc_async_client_manager_config",
    "memory_allocator_manager",
  ],
  admin: ["access_log", "socket_options"],
  listener: [
    "additional_addresses",
    "filter_chain_matcher",
    "use_original_dst",
    "deprecated_v1",
    "transparent",
    "freebind",
    "socket_options",
    "tcp_fast_open_queue_length",
    "udp_listener_config",
    "api_listener",
    "connection_balance_config",
    "reuse_port",
    "access_log",
    "max_connections_to_accept_per_socket_event",
    "bind_to_port",
    "internal_listener",
    "enable_mptcp",
  ],
  filterChain: ["use_proxy_proto", "on_demand_configuration"],
  hcm: [
    "rds",
    "scoped_routes",
    "add_user_agent",
    "http3_protocol_options",
    "scheme_header_transformation",
    "access_log_flush_interval",
    "flush_access_log_on_new_request",
    "access_log_options",
    "original_ip_detection_extensions",
    "early_header_mutation_extensions",
    "forward_client_cert_details",
    "set_current_client_cert_details",
    "proxy_100_continue",
    "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
    "normalize_path",
    "request_id_extension",
    "local_reply_config",
    "strip_any_host_port",
    "stream_error_on_invalid_http_message",
    "path_normalization_options",
    "strip_trailing_host_dot",
    "proxy_status_config",
    "typed_header_validation_config",
    "append_x_forwarded_port",
    "append_local_overload",
    "add_proxy_protocol_connection_state",
  ],
  httpFilter: ["config_discovery", "disabled"],
  hcmUpgrade: ["filters"],
  hcmCommonHttp: [
    "max_connection_duration",
    "max_stream_duration",
    "max_requests_per_connection",
    "max_response_headers_kb",
  ],
  hcmHttp1: [
    "header_key_format",
    "enable_trailers",
    "allow_chunked_length",
    "override_stream_error_on_invalid_http_message",
    "send_fully_qualified_url",
    "use_balsa_parser",
    "allow_custom_methods",
    "ignore_http_11_upgrade",
  ],
  routeConfig: [
    "vhds",
    "cluster_specifier_plugins",
    "ignore_path_parameters_in_path_matching",
  ],
  vhost: [
    "matcher",
    "virtual_clusters",
    "rate_limits",
    "cors",
    "retry_policy_typed_config",
    "hedge_policy",
    "include_is_timeout_retry_header",
  ],
  route: ["filter_action", "non_forwarding_action", "tracing"],
  match: ["path_match_policy", "runtime_fraction", "tls_context", "dynamic_metadata"],
  action: [
    "cluster_specifier_plugin",
    "inline_cluster_specifier_plugin",
    "metadata_match",
    "path_rewrite_policy",
    "early_data_policy",
    "retry_policy_typed_config",
    "rate_limits",
    "include_vh_rate_limits",
    "cors",
    "max_grpc_timeout",
    "grpc_timeout_offset",
    "internal_redirect_policy",
    "internal_redirect_action",
    "max_internal_redirects",
    "hedge_policy",
  ],
  hashPolicy: ["filter_state"],
  routeUpgrade: ["connect_config"],
  retry: ["retry_priority", "retry_options_predicates", "rate_limited_retry_back_off"],
  weighted: ["runtime_key_prefix", "header_name"],
  clusterWeight: ["cluster_header", "metadata_match"],
  router: ["upstream_log", "upstream_log_options", "upstream_http_filters"],
  fault: ["downstream_nodes", "response_rate_limit", "filter_metadata"],
  cluster: [
    "transport_socket_matches",
    "alt_stat_name",
    "cluster_type",
    "upstream_http_protocol_options",
    "http_protocol_options",
    "dns_failure_refresh_rate",
    "dns_resolvers",
    "use_tcp_for_dns_lookups",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "wait_for_warm_on_init",
    "cleanup_interval",
    "upstream_bind_config",
    "lb_subset_config",
    "original_dst_lb_config",
    "protocol_selection",
    "upstream_connection_options",
    "close_connections_on_host_health_failure",
    "filters",
    "load_balancing_policy",
    "lrs_server",
    "lrs_report_endpoint_metrics",
    "track_timeout_budgets",
    "upstream_config",
    "track_cluster_stats",
    "preconnect_policy",
    "connection_pool_per_downstream_connection",
    "dns_jitter",
  ],
  commonLb: [
    "zone_aware_lb_config",
    "update_merge_window",
    "ignore_new_hosts_until_first_hc",
    "close_connections_on_host_set_change",
    "consistent_hashing_lb_config",
    "override_host_status",
  ],
  circuitBreakers: ["per_host_thresholds"],
  thresholds: ["max_connection_pools"],
  outlier: ["monitors", "detect_degraded_hosts"],
  healthCheck: [
    "alt_port",
    "custom_health_check",
    "event_log_path",
    "event_logger",
    "event_service",
    "tls_options",
    "transport_socket_match_criteria",
  ],
  httpHealthCheck: ["send", "receive", "response_buffer_size", "retriable_statuses", "service_name_matcher"],
  tcpHealthCheck: ["proxy_protocol_config"],
  loadAssignment: ["named_endpoints"],
  policy: ["drop_overloads"],
  locality: ["load_balancer_endpoints", "leds_cluster_locality_config", "proximity"],
  lbEndpoint: ["endpoint_name"],
  endpoint: ["health_check_config", "additional_addresses"],
  clusterCommonHttp: [
    "max_connection_duration",
    "max_stream_duration",
    "headers_with_underscores_action",
    "max_response_headers_kb",
  ],
  upstreamHttp: [
    "upstream_http_protocol_options",
    "http_filters",
    "header_validation_config",
  ],
  upstreamHttp1: [
    "allow_absolute_url",
    "accept_http_10",
    "default_host_for_http_10",
    "header_key_format",
    "enable_trailers",
    "allow_chunked_length",
    "override_stream_error_on_invalid_http_message",
    "send_fully_qualified_url",
    "use_balsa_parser",
    "allow_custom_methods",
    "ignore_http_11_upgrade",
  ],
  hcmHttp2: [
    "allow_metadata",
    "stream_error_on_invalid_http_messaging",
    "custom_settings_parameters",
    "override_stream_error_on_invalid_http_message",
    "max_metadata_size",
  ],
  hcmHttp2Keepalive: ["connection_idle_interval"],
  tcpProxy: [
    "on_demand",
    "metadata_match",
    "downstream_idle_timeout",
    "upstream_idle_timeout",
    "hash_policy",
    "tunneling_config",
    "max_downstream_connection_duration",
    "access_log_flush_interval",
    "flush_access_log_on_connected",
    "access_log_options",
    "backoff_options",
    "proxy_protocol_tlvs",
    "max_early_data_bytes",
  ],
  tcpWeight: ["metadata_match"],
  dynamic: ["lds_resources_locator", "cds_resources_locator"],
  configSource: ["authorities", "self"],
  apiConfigSource: ["cluster_names", "config_validators"],
  grpcService: ["google_grpc"],
  envoyGrpc: [],
  pathConfigSource: [],
};

/** Values for fields that are unsupported only with a particular value; any other field gets `true`. */
const VALUES: Readonly<Record<string, unknown>> = { bind_to_port: false, downstream_nodes: ["x"] };

function valueFor(field: string): unknown {
  return Object.hasOwn(VALUES, field) ? VALUES[field] : true;
}

/** The error of loading the base bootstrap with `field` set at `place`, or undefined if it loads. */
function probe(place: Place, field: string, value: unknown = valueFor(field)): string | undefined {
  try {
    load(bootstrap({ [place.patch]: { [field]: value } }));
    return undefined;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message;
  }
}

function at(place: Place, field: string): string {
  return place.path ? `${place.path}.${field}` : field;
}

function camel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

Deno.test("envoy fields: the base bootstrap loads with every place present", () => {
  for (const place of PLACES) load(bootstrap({ [place.patch]: {} }));
});

Deno.test("envoy fields: every listed unimplemented field is reported as not supported, per message", () => {
  for (const place of PLACES) {
    for (const field of NOT_SUPPORTED[place.patch]) {
      const msg = probe(place, field) ?? "(loaded)";
      const where = `config: ${at(place, field)}: `;
      assert(msg.startsWith(where) && msg.includes("is not supported"), `${place.message}.${field}: ${msg}`);
    }
  }
});

Deno.test("envoy fields: lowerCamelCase spellings of unimplemented fields are reported as not supported", () => {
  for (const place of PLACES) {
    for (const field of NOT_SUPPORTED[place.patch]) {
      const msg = probe(place, camel(field), valueFor(field)) ?? "(loaded)";
      const named = [at(place, field), at(place, camel(field))].some((p) => msg.startsWith(`config: ${p}: `));
      assert(named && msg.includes("is not supported"), `${place.message}.${camel(field)}: ${msg}`);
    }
  }
});

Deno.test("envoy fields: a made-up field is an unknown field, per message", () => {
  for (const place of PLACES) {
    assertEquals(probe(place, "bogus_field", 1), `config: ${at(place, "bogus_field")}: unknown field`, place.message);
  }
});

Deno.test("envoy fields: no field of a listed Envoy message is reported as an unknown field", () => {
  for (const place of PLACES) {
    for (const field of ENVOY_FIELDS[place.message]) {
      const msg = probe(place, field);
      assert(msg === undefined || !msg.startsWith(`config: ${at(place, field)}: unknown field`), msg);
    }
  }
});

Deno.test("envoy fields: the table names only real fields of its message, and every message has a place", () => {
  for (const place of PLACES) {
    const fields: readonly string[] = ENVOY_FIELDS[place.message];
    assertEquals(NOT_SUPPORTED[place.patch].filter((f) => !fields.includes(f)), [], place.message);
  }
  const placed = new Set(PLACES.map((p) => p.message));
  assertEquals(Object.keys(ENVOY_FIELDS).filter((m) => !placed.has(m as EnvoyMessage)), []);
});

Deno.test("envoy fields: locality metadata is accepted, as on endpoints", () => {
  load(bootstrap({ locality: { metadata: { filter_metadata: { x: { a: 1 } } } } }));
});

Deno.test("bootstrap accepts enum names in lower and mixed case and normalises them", () => {
  const config = load(bootstrap({
    cluster: { type: "strict_dns", lb_policy: "Least_Request", dns_lookup_family: "v4_only" },
    hcm: { codec_type: "auto", server_header_transformation: "pass_through" },
    vhost: { require_tls: "none" },
    action: { cluster_not_found_response_code: "not_found" },
    listener: { traffic_direction: "Inbound" },
    lbEndpoint: { health_status: "healthy" },
    thresholds: { priority: "high" },
    httpHealthCheck: { codec_client_type: "http1", method: "head" },
  }));
  const c = config.clusters[0]!;
  assertEquals(c.type, "STRICT_DNS");
  assertEquals(c.lbPolicy, "LEAST_REQUEST");
  assertEquals(c.dnsLookupFamily, "V4_ONLY");
  assertEquals(c.localities[0]!.endpoints[0]!.healthStatus, "HEALTHY");
  assertEquals(c.circuitBreakers.HIGH.maxConnections, 10);
  assertEquals(c.healthChecks[0]!.checker.kind === "http" && c.healthChecks[0]!.checker.method, "HEAD");
  const hcm = hcmOf(config);
  assertEquals(hcm.codecType, "AUTO");
  assertEquals(hcm.serverHeaderTransformation, "PASS_THROUGH");
  const action = hcm.routeConfig.virtualHosts[0]!.routes[0]!.action;
  assertEquals(action.kind === "route" && action.clusterNotFoundStatus, 404);
  assertEquals(
    load(bootstrap({ cluster: { type: "Static", lb_policy: "round_robin", dns_lookup_family: "All" } })).clusters[0]!
      .lbPolicy,
    "ROUND_ROBIN",
  );
  assertEquals(hcmOf(load(bootstrap({ hcm: { codec_type: "Http1" } }))).codecType, "HTTP1");
});

Deno.test("bootstrap enum errors list the valid names; a known but unimplemented name in any case is not supported", () => {
  assertEquals(
    loadError(bootstrap({ cluster: { lb_policy: "fastest" } })),
    `config: ${C0}.lb_policy: "fastest" is not one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV`,
  );
  assertEquals(
    loadError(bootstrap({ cluster: { type: "original_dst" } })),
    `config: ${C0}.type: "original_dst" is not supported`,
  );
  assertEquals(
    loadError(bootstrap({ hcm: { codec_type: "http3" } })),
    `config: ${HCM}.codec_type: "http3" is not supported`,
  );
  assertEquals(
    loadError(bootstrap({ cluster: { dns_lookup_family: "v5_only" } })),
    `config: ${C0}.dns_lookup_family: "v5_only" is not one of AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED, ALL`,
  );
});

const LISTENER_ADDRESS = { socket_address: { address: "127.0.0.1", port_value: 0 } };
const ROUTER = { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER_TYPE } };

/** A bootstrap that writes a single object (or string) wherever Envoy has a list. */
function singles(): Obj {
  return {
    static_resources: {
      listeners: {
        name: "l",
        address: LISTENER_ADDRESS,
        filter_chains: {
          filters: {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": HCM_TYPE,
              stat_prefix: "in",
              route_config: {
                virtual_hosts: { name: "v", domains: "*", routes: { match: { prefix: "/" }, route: { cluster: "c" } } },
              },
              http_filters: ROUTER,
            },
          },
        },
      },
      clusters: {
        name: "c",
        load_assignment: {
          cluster_name: "c",
          endpoints: {
            lb_endpoints: { endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } } },
          },
        },
      },
    },
  };
}

Deno.test("bootstrap accepts a single object or value where a list is expected", () => {
  const config = load(singles());
  assertEquals(config.clusters.map((c) => c.name), ["c"]);
  assertEquals(config.clusters[0]!.localities[0]!.endpoints[0]!.address, "10.0.0.1");
  assertEquals(config.listeners.map((l) => l.name), ["l"]);
  const hcm = hcmOf(config);
  assertEquals(hcm.httpFilters.length, 1);
  assertEquals(hcm.routeConfig.virtualHosts.length, 1);
  assertEquals(hcm.routeConfig.virtualHosts[0]!.domains, ["*"]);
  assertEquals(hcm.routeConfig.virtualHosts[0]!.routes.length, 1);
});

Deno.test("bootstrap errors inside a single object given for a list name it as [0]", () => {
  const withBogus = (edit: (raw: Obj) => void): string => {
    const raw = singles();
    edit(raw);
    return loadError(raw);
  };
  const sr = (raw: Obj) => raw["static_resources"] as Obj;
  assertEquals(
    withBogus((raw) => Object.assign(sr(raw)["clusters"] as Obj, { bogus: 1 })),
    "config: static_resources.clusters[0].bogus: unknown field",
  );
  assertEquals(
    withBogus((raw) => {
      const la = (sr(raw)["clusters"] as Obj)["load_assignment"] as Obj;
      Object.assign((la["endpoints"] as Obj)["lb_endpoints"] as Obj, { load_balancing_weight: 0 });
    }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight: " +
      "0 is below the minimum 1",
  );
  assertEquals(
    withBogus((raw) => {
      const l = sr(raw)["listeners"] as Obj;
      const tc = ((l["filter_chains"] as Obj)["filters"] as Obj)["typed_config"] as Obj;
      ((tc["route_config"] as Obj)["virtual_hosts"] as Obj)["domains"] = "";
    }),
    `config: ${VH}.domains[0]: must not be empty`,
  );
});

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function validate(yaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--mode", "validate", "--config-yaml", yaml],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli --mode validate: an unimplemented Envoy field is one line saying it is not supported, exit 1", async () => {
  const cases: [string, string][] = [
    [
      JSON.stringify(bootstrap({ hcm: { add_user_agent: true } })),
      `config: ${HCM}.add_user_agent: is not supported`,
    ],
    [
      JSON.stringify(bootstrap({ action: { max_grpc_timeout: "5s" } })),
      `config: ${ACTION}.max_grpc_timeout: is not supported`,
    ],
    [JSON.stringify(bootstrap({ cluster: { bogus_field: 1 } })), `config: ${C0}.bogus_field: unknown field`],
  ];
  for (const [yaml, want] of cases) {
    const r = await validate(yaml);
    assertEquals(r.code, 1, `${want}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assertEquals(r.stderr.trim(), want);
  }
});

Deno.test("cli --mode validate accepts lower-case enums and single objects for lists, exit 0", async () => {
  const raw = singles();
  Object.assign((raw["static_resources"] as Obj)["clusters"] as Obj, { type: "static", lb_policy: "random" });
  const r = await validate(JSON.stringify(raw));
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.startsWith("OK: --config-yaml (1 listener(s), 1 cluster(s))"), r.stdout);
});
