/**
 * `ferry.filters.network.rpc_proxy`: the RPC proxy network filter (typed config
 * `type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy`), Ferry's counterpart of Envoy's `dubbo_proxy` /
 * `generic_proxy`, shaped like the HTTP connection manager and built on it.
 *
 * Config (proto3 JSON, unknown fields rejected):
 * - `stat_prefix` (required);
 * - `protocol`: `AUTO` (default: Bolt and Dubbo by their magic, HTTP/2 by its preface, anything else HTTP/1.1 — one
 *   port for everything), `BOLT` or `DUBBO`;
 * - `route_config` (required): an ordinary Envoy `RouteConfiguration`. Requests are matched on the headers the RPC
 *   codec maps (`codecs/bolt/mapping.ts`): `:authority` is the service's interface (so a virtual host per service
 *   with `domains: [<interface>]`, or one `*` domain), `:path` is `/<interface>/<method>`, and `service`, `version`,
 *   `method` and the protocol's own keys are headers for `headers` matchers. Weighted clusters, retries, timeouts,
 *   hash policies and outlier detection work as for HTTP;
 * - `rpc_filters`: HTTP filter entries as in the HCM's `http_filters` (fault, RBAC, ..., the router last); default:
 *   the router alone;
 * - `access_log`: as the HCM's;
 * - `request_timeout`: the longest a request may wait for its answer (absent or 0: none). A request's own timeout
 *   (Bolt's frame timeout) applies too; the shorter wins; on expiry the caller gets the protocol's TIMEOUT;
 * - `max_frame_bytes`: the largest RPC frame accepted (default 16 MiB); a larger one closes the connection;
 * - `max_requests_in_flight`: most requests awaiting their answers on one downstream connection (default 10000);
 *   more are answered at once with the protocol's busy status (Bolt: SERVER_THREADPOOL_BUSY).
 *
 * Upstream, a cluster is reached over the same protocol the request came in (Bolt → the `bolt` codec's
 * `multiplex-request-id` pool, upstream request ids of its own), HTTP over the cluster's HTTP codec. The connection
 * manager's stats live under `<stat_prefix>.` (e.g. `downstream_rq_total`); the Bolt codec's under
 * `<stat_prefix>.bolt.`: `request`, `response.<status>` (e.g. `response.success`, `response.timeout`),
 * `decode_error`, `heartbeat` and the gauge `request_active`; the Dubbo codec's under `<stat_prefix>.dubbo.`:
 * `request`, `response_<status>` (e.g. `response_ok`, `response_service_not_found`), `request_decoding_error`,
 * `heartbeat` and the gauge `request_active` (see `codecs/dubbo/types.ts`).
 *
 * @module
 */
import type { CodecFactory } from "../../lib/api/codec.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import type {
  IoEngine,
  NetworkFilterContext,
  NetworkFilterFactory,
  NetworkFilterFactoryCb,
} from "../../lib/api/network.ts";
import type { StatsScope } from "../../lib/api/stats.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { StreamFilter, StreamFilterCallbacks, StreamFilterFactoryCb } from "../../lib/api/stream_filter.ts";
import type {
  Cluster,
  ClusterManager,
  ConnPool,
  Host,
  LbContext,
  LocalityLbEndpoints,
} from "../../lib/api/upstream.ts";
import { joinPath, ObjReader } from "../../lib/config/reader.ts";
import type { Registries } from "../../lib/config/registry.ts";
import { schedule } from "../../lib/network/timer_wheel.ts";
import type { WheelTimer } from "../../lib/network/timer_wheel.ts";
import { createAccessLogger } from "../../lib/observe/access_log.ts";
import { getLogger } from "../../lib/observe/log.ts";
import { RouteConfigProviderImpl } from "../../lib/router/mod.ts";
import { ConnectionManager, createFilterFactories, createHcmStats } from "../../lib/stream/conn_manager.ts";
import type { ConnManagerShared } from "../../lib/stream/conn_manager.ts";
import { parseHcmConfig } from "../../lib/stream/hcm_config.ts";
import type { HcmConfig } from "../../lib/stream/hcm_config.ts";
import { createBoltCodecFactory } from "../../codecs/bolt/codec.ts";
import { BOLT_STATUS_NAMES, DEFAULT_MAX_FRAME_BYTES } from "../../codecs/bolt/types.ts";
import type { BoltStats } from "../../codecs/bolt/types.ts";
import { createDubboCodecFactory, createDubboStats, type DubboStats } from "../../codecs/dubbo/mod.ts";
import { createDetectingCodecFactory, detectHttp2Preface, RPC_DETECTORS } from "../../codecs/detect.ts";
import type { DetectCandidate } from "../../codecs/detect.ts";
import { httpConnectionManagerFactory } from "./http_connection_manager.ts";
import type { HcmFilterConfig } from "./http_connection_manager.ts";

/** The `@type` of the RPC proxy's typed_config. */
export const RPC_PROXY_TYPE = "type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy";

const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};

/** The RPC protocols a proxy may be pinned to. */
export type RpcProtocol = "AUTO" | "BOLT" | "DUBBO";

/** Parsed RPC proxy config. */
export interface RpcProxyConfig {
  readonly statPrefix: string;
  readonly protocol: RpcProtocol;
  /** The connection-manager config the proxy runs (route table, filters, access logs, timeouts). */
  readonly hcm: HcmConfig;
  /** ms; 0: none (the request's own timeout may still apply). */
  readonly requestTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Per downstream connection. */
  readonly maxRequestsInFlight: number;
  /** Registered codecs by name (`bolt`, `dubbo`, `http1`, `http2`): downstream templates and upstream codecs. */
  readonly codecs: Readonly<Record<string, CodecFactory | undefined>>;
  /** The field path of the typed_config. */
  readonly path: string;
}

/** Which registered codec carries a protocol, by the name a downstream stream reports (`Stream.protocol`). */
const UPSTREAM_BY_PROTOCOL: Readonly<Record<string, string>> = { Bolt: "bolt", Dubbo: "dubbo" };

/** Parses the typed_config (without `@type`) of an RpcProxy; errors name the field path. */
export function parseRpcProxyConfig(
  raw: Record<string, unknown>,
  path: string,
  registries: Registries,
): RpcProxyConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const protocol = o.enumOf("protocol", ["AUTO", "BOLT", "DUBBO"] as const) ?? "AUTO";
  const routeConfig = o.value("route_config", { required: true });
  const rpcFilters = o.value("rpc_filters");
  const accessLog = o.value("access_log");
  const requestTimeoutMs = o.durationMs("request_timeout") ?? 0;
  const maxFrameBytes = o.int("max_frame_bytes", { min: 1024, max: 1 << 30 }) ?? DEFAULT_MAX_FRAME_BYTES;
  const maxRequestsInFlight = o.int("max_requests_in_flight", { min: 1, max: 1_000_000 }) ?? 10_000;
  o.done();
  const hcmRaw: Record<string, unknown> = {
    stat_prefix: statPrefix,
    route_config: routeConfig,
    http_filters: rpcFilters ?? [ROUTER],
    generate_request_id: false,
    server_header_transformation: "PASS_THROUGH",
  };
  if (accessLog !== undefined) hcmRaw["access_log"] = accessLog;
  let hcm: HcmConfig;
  try {
    hcm = parseHcmConfig(hcmRaw, path, registries);
  } catch (e) {
    if (e instanceof ConfigError) {
      const p = e.path.replace(`${path}.http_filters`, `${path}.rpc_filters`);
      const detail = e.detail.replace("the last HTTP filter", "the last RPC filter");
      throw new ConfigError(p, detail, { cause: e });
    }
    throw e;
  }
  const codecs: Record<string, CodecFactory | undefined> = {};
  for (const n of ["bolt", "dubbo", "http1", "http2"]) codecs[n] = registries.codecs.byName(n);
  const need = protocol === "BOLT" ? "bolt" : protocol === "DUBBO" ? "dubbo" : undefined;
  if (need !== undefined && codecs[need] === undefined) {
    throw new ConfigError(joinPath(path, "protocol"), `${protocol}: no "${need}" codec is registered`);
  }
  if (protocol === "AUTO" && codecs["bolt"] === undefined && codecs["dubbo"] === undefined) {
    throw new ConfigError(joinPath(path, "protocol"), `AUTO: no RPC codec (bolt, dubbo) is registered`);
  }
  return { statPrefix, protocol, hcm, requestTimeoutMs, maxFrameBytes, maxRequestsInFlight, codecs, path };
}

/** The Bolt codec's stats under `<scope>.bolt.` (see the module doc). */
export function createBoltStats(scope: StatsScope): BoltStats {
  const s = scope.scope("bolt");
  const request = s.counter("request");
  const decodeError = s.counter("decode_error");
  const heartbeat = s.counter("heartbeat");
  const active = s.gauge("request_active");
  const responses = new Map<number, { inc(n?: number): void }>();
  return {
    request: () => request.inc(),
    response(status) {
      let c = responses.get(status);
      if (c === undefined) {
        c = s.counter(`response.${BOLT_STATUS_NAMES[status] ?? `status_${status}`}`);
        responses.set(status, c);
      }
      c.inc();
    },
    decodeError: () => decodeError.inc(),
    heartbeat: () => heartbeat.inc(),
    active: (d) => (d > 0 ? active.inc(d) : active.dec(-d)),
  };
}

/**
 * A cluster seen through the RPC proxy: the router's `httpPool(host, protocol)` becomes the pool of the codec that
 * speaks the downstream's protocol (a Bolt request goes to a Bolt upstream), so the router, retries, balancers and
 * outlier detection serve RPC unchanged. Everything else is the cluster's own.
 */
class RpcCluster implements Cluster {
  readonly #inner: Cluster;
  readonly #codecs: Readonly<Record<string, CodecFactory | undefined>>;

  constructor(inner: Cluster, codecs: Readonly<Record<string, CodecFactory | undefined>>) {
    this.#inner = inner;
    this.#codecs = codecs;
  }

  get info() {
    return this.#inner.info;
  }

  get hosts(): readonly Host[] {
    return this.#inner.hosts;
  }

  chooseHost(ctx?: LbContext): Host | undefined {
    return this.#inner.chooseHost(ctx);
  }

  httpPool(host: Host, downstreamProtocol?: string, ioEngine?: IoEngine): ConnPool {
    const name = downstreamProtocol === undefined ? undefined : UPSTREAM_BY_PROTOCOL[downstreamProtocol];
    const codec = name === undefined ? undefined : this.#codecs[name];
    return codec !== undefined
      ? this.#inner.pool(host, codec, ioEngine)
      : this.#inner.httpPool(host, downstreamProtocol, ioEngine);
  }

  pool(host: Host, codec: CodecFactory, ioEngine?: IoEngine): ConnPool {
    return this.#inner.pool(host, codec, ioEngine);
  }

  connect(host: Host, ioEngine?: IoEngine) {
    return this.#inner.connect(host, ioEngine);
  }

  updateHosts(endpoints: readonly LocalityLbEndpoints[]): void {
    this.#inner.updateHosts(endpoints);
  }
}

/** The cluster manager the proxy's filters see: the server's, with each cluster wrapped once as {@link RpcCluster}. */
class RpcClusterManager implements ClusterManager {
  readonly #inner: ClusterManager;
  readonly #codecs: Readonly<Record<string, CodecFactory | undefined>>;
  readonly #wrapped = new WeakMap<Cluster, RpcCluster>();

  constructor(inner: ClusterManager, codecs: Readonly<Record<string, CodecFactory | undefined>>) {
    this.#inner = inner;
    this.#codecs = codecs;
  }

  get(name: string): Cluster | undefined {
    const c = this.#inner.get(name);
    if (c === undefined) return undefined;
    let w = this.#wrapped.get(c);
    if (w === undefined) {
      w = new RpcCluster(c, this.#codecs);
      this.#wrapped.set(c, w);
    }
    return w;
  }

  get clusters(): ReadonlyMap<string, Cluster> {
    return this.#inner.clusters;
  }
}

/** Request-timeout headers of the RPC codecs (ms), the frame's own deadline. */
const TIMEOUT_HEADERS = ["x-bolt-timeout", "x-dubbo-timeout"] as const;

/**
 * The proxy's first stream filter: answers TIMEOUT (a local 504, flag `UT`) when the shorter of the request's own
 * timeout and `request_timeout` (those set) passes before a response started; the router's upstream request is
 * reset and a late answer dropped.
 */
function timeoutFilterFactory(requestTimeoutMs: number): StreamFilterFactoryCb {
  return { name: "ferry.rpc.request_timeout", create: (cb) => new RpcTimeoutFilter(cb, requestTimeoutMs) };
}

/** One stream's deadline (see {@link timeoutFilterFactory}). */
class RpcTimeoutFilter implements StreamFilter {
  readonly #cb: StreamFilterCallbacks;
  readonly #configured: number;
  #timer: WheelTimer | undefined;

  constructor(cb: StreamFilterCallbacks, configured: number) {
    this.#cb = cb;
    this.#configured = configured;
  }

  decodeHeaders(headers: HeaderMap): "continue" {
    let ms = this.#configured;
    for (const n of TIMEOUT_HEADERS) {
      const v = headers.get(n);
      if (v === undefined) continue;
      const t = parseMs(v);
      if (t > 0 && (ms === 0 || t < ms)) ms = t;
    }
    if (ms > 0) this.#timer = schedule(ms, () => this.#expire());
    return "continue";
  }

  encodeHeaders(): "continue" {
    this.onDestroy();
    return "continue";
  }

  onDestroy(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #expire(): void {
    this.#timer = undefined;
    this.#cb.sendLocalReply(504, "rpc request timeout", { responseFlag: "UT", details: "rpc_request_timeout" });
  }
}

/** A header's decimal milliseconds (up to 9 digits), or 0. */
function parseMs(v: string): number {
  if (v.length === 0 || v.length > 9) return 0;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n;
}

/** The downstream codec factory of a config: the pinned protocol's, or detection over all registered. */
function downstreamCodec(config: RpcProxyConfig, boltStats: BoltStats, dubboStats: DubboStats): CodecFactory {
  const c = config.codecs;
  const bolt = c["bolt"] !== undefined
    ? createBoltCodecFactory({
      stats: boltStats,
      maxFrameBytes: config.maxFrameBytes,
      maxRequestsInFlight: config.maxRequestsInFlight,
    })
    : undefined;
  if (config.protocol === "BOLT") return bolt!;
  const dubbo = c["dubbo"] !== undefined
    ? createDubboCodecFactory({ stats: dubboStats, maxBodyBytes: config.maxFrameBytes })
    : undefined;
  if (config.protocol === "DUBBO") return dubbo!;
  const candidates: DetectCandidate[] = [];
  if (bolt !== undefined) candidates.push({ codec: bolt, detect: RPC_DETECTORS["bolt"]! });
  if (dubbo !== undefined) candidates.push({ codec: dubbo, detect: RPC_DETECTORS["dubbo"]! });
  if (c["http2"] !== undefined) candidates.push({ codec: c["http2"], detect: detectHttp2Preface });
  return createDetectingCodecFactory("rpc-auto", candidates, c["http1"]);
}

const log = getLogger("rpc");

/** The config-time step: route table, stats, loggers, codecs and the filter chain, shared by connections. */
function createRpcProxyFactory(config: RpcProxyConfig, context: NetworkFilterContext): NetworkFilterFactoryCb {
  const hcm = config.hcm;
  const scope = context.stats.scope(config.statPrefix);
  const boltStats = createBoltStats(scope);
  const clusterManager = new RpcClusterManager(context.clusterManager, config.codecs);
  const filterFactories = [
    timeoutFilterFactory(config.requestTimeoutMs),
    ...createFilterFactories(hcm, { scope, clusterManager }),
  ];
  const shared: ConnManagerShared = {
    config: hcm,
    codec: downstreamCodec(config, boltStats, createDubboStats(scope.scope("dubbo"))),
    stats: createHcmStats(scope),
    accessLoggers: hcm.accessLogs.map((a) => createAccessLogger(a)),
    routes: context.routeConfigs?.provide(hcm.routeConfig) ?? new RouteConfigProviderImpl(hcm.routeConfig),
    filterFactories,
    draining: context.draining,
    bufferLimit: context.bufferLimit,
  };
  const debug = (m: string) => log.debug(m);
  return (callbacks) => new ConnectionManager(shared, callbacks.connection, debug);
}

/** The RPC proxy network filter factory. */
export const rpcProxyFilterFactory: NetworkFilterFactory<RpcProxyConfig> = {
  name: "ferry.filters.network.rpc_proxy",
  configTypes: [RPC_PROXY_TYPE],
  terminal: true,
  parseConfig(raw, path, registries) {
    return parseRpcProxyConfig(raw, path, registries as Registries);
  },
  referencedClusters(config) {
    const as: HcmFilterConfig = { hcm: config.hcm, codec: config.codecs["bolt"]!, path: config.path };
    return httpConnectionManagerFactory.referencedClusters!(as);
  },
  createFactory: createRpcProxyFactory,
  create(config, callbacks, context) {
    return createRpcProxyFactory(config, context)(callbacks);
  },
};
