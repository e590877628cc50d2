/**
 * `envoy.filters.network.http_connection_manager`: the network filter that speaks HTTP, as a factory over
 * `lib/stream` (config parsing in `hcm_config.ts`, the per-connection manager in `conn_manager.ts`).
 *
 * @module
 */
import type { NetworkFilterContext, NetworkFilterFactory, NetworkFilterFactoryCb } from "../../lib/api/network.ts";
import type { CodecFactory } from "../../lib/api/codec.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { joinPath } from "../../lib/config/reader.ts";
import type { Registries } from "../../lib/config/registry.ts";
import { createAccessLogger } from "../../lib/observe/access_log.ts";
import { createHttp2Stats } from "../../lib/observe/http2_stats.ts";
import { getLogger } from "../../lib/observe/log.ts";
import { RouteConfigProviderImpl } from "../../lib/router/mod.ts";
import { ConnectionManager, createFilterFactories, createHcmStats } from "../../lib/stream/conn_manager.ts";
import type { ConnManagerShared } from "../../lib/stream/conn_manager.ts";
import { HCM_TYPE, parseHcmConfig } from "../../lib/stream/hcm_config.ts";
import type { HcmConfig } from "../../lib/stream/hcm_config.ts";
import { Tracer } from "../../lib/tracing/tracer.ts";

/** Parsed config plus the codec chosen for it. */
export interface HcmFilterConfig {
  readonly hcm: HcmConfig;
  readonly codec: CodecFactory;
  /** The field path of the typed_config, for errors found after parsing (an unknown cluster). */
  readonly path: string;
}

const log = getLogger("http");

/**
 * The codec registered for an HCM `codec_type`. `AUTO` takes the `auto` codec when one is registered (protocol
 * detection by preface or ALPN, with HTTP/2) and HTTP/1.1 until then.
 */
const CODEC_NAMES: Readonly<Record<string, readonly string[]>> = {
  AUTO: ["auto", "http1"],
  HTTP1: ["http1"],
  HTTP2: ["http2"],
  HTTP3: ["http3"],
};

function codecFor(codecType: string, registries: Registries, path: string): CodecFactory {
  for (const name of CODEC_NAMES[codecType] ?? []) {
    const c = registries.codecs.byName(name);
    if (c) return c;
  }
  throw new ConfigError(joinPath(path, "codec_type"), `${JSON.stringify(codecType)}: no codec is registered for it`);
}

/** The HTTP connection manager network filter factory. */
export const httpConnectionManagerFactory: NetworkFilterFactory<HcmFilterConfig> = {
  name: "envoy.filters.network.http_connection_manager",
  configTypes: [HCM_TYPE],
  terminal: true,
  parseConfig(raw, path, registries) {
    // parseHcmConfig takes lib/config's Registries, of which the API's ExtensionRegistries is the part it reads.
    const r = registries as Registries;
    const hcm = parseHcmConfig(raw, path, r);
    return { hcm, codec: codecFor(hcm.codecType, r, path), path };
  },
  referencedClusters(config) {
    const rc = config.hcm.routeConfig;
    const out: { name: string; path: string }[] = [];
    // The tracing collector cluster is checked as Envoy does, whatever validate_clusters says of routes.
    const tt = config.hcm.tracing?.provider?.transport;
    if (tt !== undefined) out.push({ name: tt.cluster, path: tt.clusterPath });
    if (!rc.validateClusters) return out;
    const vhosts = joinPath(joinPath(config.path, "route_config"), "virtual_hosts");
    rc.virtualHosts.forEach((vh, i) => {
      const routes = joinPath(joinPath(vhosts, i), "routes");
      vh.routes.forEach((r, j) => {
        const a = r.action;
        if (a.kind !== "route") return;
        // cluster_header names its cluster per request: nothing to check here.
        const at = joinPath(joinPath(routes, j), "route");
        if (a.clusterSpecifier === "cluster" && a.cluster) {
          out.push({ name: a.cluster.name, path: joinPath(at, "cluster") });
        }
        const wc = joinPath(joinPath(at, "weighted_clusters"), "clusters");
        a.weightedClusters.forEach((c, k) => out.push({ name: c.name, path: joinPath(joinPath(wc, k), "name") }));
        const mp = joinPath(at, "request_mirror_policies");
        a.mirrorPolicies?.forEach((m, k) => {
          if (m.cluster !== undefined) out.push({ name: m.cluster, path: joinPath(joinPath(mp, k), "cluster") });
        });
      });
    });
    return out;
  },
  createFactory: createHcmFactory,
  create(config, callbacks, context) {
    return createHcmFactory(config, context)(callbacks);
  },
};

/**
 * The config-time step: the route table, stats and access loggers are built once per filter chain config and
 * shared by its connections; `draining` is the listener config's (true once it is replaced or removed).
 */
function createHcmFactory(config: HcmFilterConfig, context: NetworkFilterContext): NetworkFilterFactoryCb {
  const hcm = config.hcm;
  const scope = context.stats.scope(`http.${hcm.statPrefix}`);
  const filterContext = { scope, clusterManager: context.clusterManager };
  const shared: ConnManagerShared = {
    config: hcm,
    codec: config.codec,
    stats: createHcmStats(scope),
    accessLoggers: hcm.accessLogs.map((a) => createAccessLogger(a)),
    routes: context.routeConfigs?.provide(hcm.routeConfig) ?? new RouteConfigProviderImpl(hcm.routeConfig),
    filterFactories: createFilterFactories(hcm, filterContext),
    draining: context.draining,
    bufferLimit: context.bufferLimit,
    ...(context.overload ? { overload: context.overload } : {}),
    http2Stats: createHttp2Stats(context.stats.scope("http2")),
    tracer: hcm.tracing
      ? new Tracer(hcm.tracing, {
        clusterManager: context.clusterManager,
        stats: context.stats,
        scope,
        egress: context.trafficDirection === "OUTBOUND",
      })
      : undefined,
  };
  const debug = (m: string) => log.debug(m);
  return (callbacks) => new ConnectionManager(shared, callbacks.connection, debug);
}
