/**
 * The xDS manager: subscriptions to listeners, routes, clusters, endpoints and secrets from the bootstrap's
 * `dynamic_resources`, applied to the running server through the same providers static config uses.
 *
 * - **Subscriptions follow references**: LDS and CDS are wildcard; the route configurations listeners name
 *   (`rds.route_config_name`), the endpoints EDS clusters name (`eds_cluster_config.service_name`) and the secrets
 *   TLS contexts name (`sds_config`) are subscribed to by name, each through the config source that names it, and
 *   unsubscribed when nothing refers to them any more.
 * - **All or nothing**: every resource of an update is parsed by the same readers as YAML before anything is
 *   applied; one bad resource rejects the update (the source NACKs with the one-line field-path error) and the
 *   previous config keeps serving.
 * - **Warming**: a new or changed listener waits for its route configurations and secrets, a new EDS cluster for its
 *   endpoints (the version it replaces keeps serving), each bounded by its source's `initial_fetch_timeout`: a
 *   route configuration that does not come is an empty one (404), endpoints that do not come leave the cluster
 *   without hosts; a listener whose secrets do not come stays warming.
 * - **Without dropping traffic**: listener updates go through the listener manager (only changed listeners drain),
 *   route configurations replace the table for new streams, EDS keeps the pools of hosts that stay, SDS reaches
 *   new handshakes.
 *
 * @module
 */
import { ConfigError } from "../lib/api/errors.ts";
import { type ConfigSource, parseConfigSource } from "../lib/config/config_source.ts";
import type { DynamicResourcesConfig } from "../lib/config/config_source.ts";
import { ObjReader } from "../lib/config/reader.ts";
import { resolveSecretRefs } from "../lib/config/secrets.ts";
import { getLogger } from "../lib/observe/log.ts";
import type { CounterImpl, GaugeImpl, StatsStore } from "../lib/observe/stats.ts";
import { parseRouteConfiguration } from "../lib/router/mod.ts";
import type { RouteConfig } from "../lib/api/route.ts";
import { parseSecret, type SecretManager } from "../lib/tls/secret_manager.ts";
import type { ClusterManagerImpl } from "../lib/upstream/cluster_manager.ts";
import { type ClusterConfig, parseCluster, parseLoadAssignment } from "../lib/upstream/config.ts";
import type { RouteConfigProviders } from "../lib/router/route_config_provider.ts";
import { FileSource } from "./file_source.ts";
import { Slicer } from "./slicer.ts";
import { type GrpcTarget, methodFor } from "./grpc_source.ts";
import { GrpcSource } from "./grpc_source.ts";
import {
  type DecodedResource,
  type ResourceSource,
  type ResourceUpdate,
  TYPE,
  TYPE_NOUN,
  TYPE_SHORT,
  type TypeUrl,
  type UpdateSink,
} from "./types.ts";
import type { XdsWire } from "./wire.ts";
import type { WorkerConfigOp } from "../lib/server/workers.ts";

const log = getLogger("xds");

/** What the manager drives: the parts of the server that take dynamic config. */
export interface XdsServerApi {
  readonly stats: StatsStore;
  readonly clusterManager: ClusterManagerImpl;
  readonly routeConfigs: RouteConfigProviders;
  readonly secrets: SecretManager;
  /** Names of the bootstrap's static listeners and clusters (xDS may not replace them). */
  readonly staticListenerNames: ReadonlySet<string>;
  readonly staticClusterNames: ReadonlySet<string>;
  /** Adds or updates a listener from final JSON (routes inlined, secrets resolvable); throws ConfigError. */
  addOrUpdateListener(raw: unknown, path: string): Promise<unknown>;
  /** Parses a listener as {@link addOrUpdateListener} would, without applying it. */
  validateListener(raw: unknown, path: string): void;
  removeListener(name: string): Promise<boolean>;
  /**
   * Worker threads (`--concurrency`): each change applied here is forwarded right after, in the same order
   * (listener changes reach them through {@link addOrUpdateListener}); an update is ACKed once they applied it.
   */
  forwardToWorkers?(op: WorkerConfigOp): void;
  workersApplied?(): Promise<void>;
}

/** Options of an {@link XdsManager}. */
export interface XdsManagerOptions {
  readonly dynamic: DynamicResourcesConfig;
  readonly server: XdsServerApi;
  /** The node sent to management servers (Envoy JSON). */
  readonly node: Record<string, unknown>;
  /** Builds the gRPC target of an API config source (the static cluster's first host, its TLS). */
  readonly grpcTarget: (clusterName: string, authority: string | undefined, path: string) => GrpcTarget;
  readonly wire: XdsWire;
  /** Backoff bounds for reconnects (tests shorten them). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/** One resource as held: the JSON it came as, its version, when it arrived. */
interface Held {
  readonly name: string;
  readonly raw: Record<string, unknown>;
  readonly text: string;
  readonly version: string;
  readonly lastUpdated: Date;
}

/** Names a resource depends on, each with the config source that serves it. */
interface Deps {
  /** Route configuration names → source. */
  readonly rds: Map<string, ConfigSource>;
  /** Secret names → source. */
  readonly sds: Map<string, ConfigSource>;
  /** EDS service name → source (clusters only). */
  readonly eds: Map<string, ConfigSource>;
}

interface Warming extends Held {
  readonly deps: Deps;
  /** Set when the warm-up deadline passed: missing routes become empty tables. */
  timedOut: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Per-subscription stats, as Envoy names them (`listener_manager.lds.update_success` ...). */
interface SubStats {
  readonly update_attempt: CounterImpl;
  readonly update_success: CounterImpl;
  readonly update_rejected: CounterImpl;
  readonly update_failure: CounterImpl;
  readonly update_empty: CounterImpl;
  readonly init_fetch_timeout: CounterImpl;
  readonly version: GaugeImpl;
  readonly update_time: GaugeImpl;
  readonly version_text: { value: string };
}

/** A 53-bit hash of a version string, for the `version` gauge (Envoy hashes `version_info` the same way). */
function versionHash(v: string): number {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return (h2 & 0x1fffff) * 0x100000000 + h1;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function get(o: Obj, key: string): unknown {
  if (key in o) return o[key];
  const c = key.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
  return o[c];
}

/**
 * Finds what a listener or cluster refers to: HCM `rds` names, `sds_config` secret references, an EDS cluster's
 * service name. `path` names where it was found for errors in the config sources.
 */
function findDeps(raw: Obj, path: string, isCluster: boolean): Deps {
  const deps: Deps = { rds: new Map(), sds: new Map(), eds: new Map() };
  const walk = (v: unknown, p: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
      return;
    }
    if (!isObj(v)) return;
    const rds = get(v, "rds");
    if (isObj(rds)) {
      const name = get(rds, "route_config_name");
      const cs = get(rds, "config_source");
      if (typeof name === "string" && cs !== undefined) {
        deps.rds.set(name, parseConfigSource(cs, `${p}.rds.config_source`));
      }
    }
    const sds = get(v, "sds_config");
    const sname = get(v, "name");
    if (sds !== undefined && typeof sname === "string") {
      deps.sds.set(sname, parseConfigSource(sds, `${p}.sds_config`));
    }
    for (const [k, x] of Object.entries(v)) if (k !== "rds") walk(x, `${p}.${k}`);
  };
  walk(raw, path);
  if (isCluster) {
    const type = get(raw, "type");
    const ecc = get(raw, "eds_cluster_config");
    if (type === "EDS") {
      if (!isObj(ecc) || get(ecc, "eds_config") === undefined) {
        throw new ConfigError(`${path}.eds_cluster_config.eds_config`, "is required for an EDS cluster");
      }
      const service = get(ecc, "service_name");
      const name = typeof service === "string" && service !== "" ? service : String(get(raw, "name"));
      deps.eds.set(name, parseConfigSource(get(ecc, "eds_config"), `${path}.eds_cluster_config.eds_config`));
    }
  }
  return deps;
}

/**
 * A copy of `raw` with each HCM `rds` replaced by an empty route configuration of that name (the provider of that
 * name is then updated with the real one) and `sds_config` dropped (the secret is then a static reference).
 */
function finalize(raw: Obj): Obj {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!isObj(v)) return v;
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      if ((k === "rds") && isObj(x)) {
        const name = String(get(x, "route_config_name") ?? "");
        out["route_config"] = { name };
        continue;
      }
      if (k === "sds_config" || k === "sdsConfig") continue;
      out[k] = walk(x);
    }
    return out;
  };
  return walk(raw) as Obj;
}

/** `cluster "x"`, `listener "y"`: where a resource's errors point. */
function resPath(t: TypeUrl, name: string): string {
  return `${TYPE_NOUN[t]} ${JSON.stringify(name)}`;
}

/** The key a config source is shared under (one stream per ADS, per API source and type, per file). */
function sourceKey(cs: ConfigSource, t: TypeUrl): string {
  if (cs.kind === "ads") return "ads";
  if (cs.kind === "file") return `file:${cs.file}`;
  return `api:${cs.api.clusterName}:${cs.api.apiType}:${t}`;
}

/** The xDS manager; see the module doc. */
export class XdsManager implements UpdateSink {
  readonly #o: XdsManagerOptions;
  readonly #server: XdsServerApi;
  readonly #sources = new Map<string, ResourceSource>();
  /** Interest per source key and type: name → count of references (for named types). */
  readonly #interest = new Map<string, Map<TypeUrl, Set<string> | "*">>();

  readonly #activeListeners = new Map<string, Held & { deps: Deps }>();
  readonly #warmingListeners = new Map<string, Warming>();
  readonly #listenerErrors = new Map<string, { raw: Obj; version: string; at: Date; details: string }>();
  readonly #activeClusters = new Map<string, Held & { deps: Deps; config: ClusterConfig }>();
  readonly #warmingClusters = new Map<string, Warming & { config: ClusterConfig }>();
  /** Route configurations with their parsed form (listeners are built with an empty table, then given this). */
  readonly #routes = new Map<string, Held & { config: RouteConfig }>();
  readonly #endpoints = new Map<string, Held>();
  readonly #secrets = new Map<string, Held>();
  /** Last accepted version per type. */
  readonly #versions = new Map<TypeUrl, { version: string; at: Date }>();
  readonly #stats = new Map<TypeUrl | string, SubStats>();
  readonly #connected: GaugeImpl;
  readonly #listenersWarming: GaugeImpl;
  readonly #clustersWarming: GaugeImpl;
  readonly #clustersActive: GaugeImpl;
  /** First update per wildcard type (or its timeout). */
  readonly #initial = new Map<TypeUrl, { done: boolean; resolve: () => void; promise: Promise<void> }>();
  #initialized: Promise<void> | undefined;
  /** What static EDS clusters subscribe to (service name → source). */
  readonly #staticEds = new Map<string, ConfigSource>();
  #closed = false;
  #updates: Promise<void> = Promise.resolve();
  #settleWaiters: (() => void)[] = [];

  constructor(options: XdsManagerOptions) {
    this.#o = options;
    this.#server = options.server;
    const s = options.server.stats;
    this.#connected = s.gauge("control_plane.connected_state");
    s.counter("control_plane.rate_limit_enforced");
    s.gauge("control_plane.pending_requests");
    this.#listenersWarming = s.gauge("listener_manager.total_listeners_warming");
    this.#clustersWarming = s.gauge("cluster_manager.warming_clusters");
    this.#clustersActive = s.gauge("cluster_manager.active_clusters");
    this.#stats.set(TYPE.listener, this.#subStats("listener_manager.lds."));
    this.#stats.set(TYPE.cluster, this.#subStats("cluster_manager.cds."));
    for (const name of options.server.staticClusterNames) {
      const eds = options.server.clusterManager.get(name)?.config.eds;
      if (eds) {
        this.#staticEds.set(eds.serviceName, parseConfigSource(eds.configSource, `cluster "${name}".eds_config`));
      }
    }
  }

  #subStats(prefix: string): SubStats {
    const s = this.#server.stats;
    return {
      update_attempt: s.counter(`${prefix}update_attempt`),
      update_success: s.counter(`${prefix}update_success`),
      update_rejected: s.counter(`${prefix}update_rejected`),
      update_failure: s.counter(`${prefix}update_failure`),
      update_empty: s.counter(`${prefix}update_empty`),
      init_fetch_timeout: s.counter(`${prefix}init_fetch_timeout`),
      version: s.gauge(`${prefix}version`),
      update_time: s.gauge(`${prefix}update_time`),
      version_text: s.textReadout(`${prefix}version_text`),
    };
  }

  /** Stats of a named resource's subscription: RDS `rds.<name>.`, EDS `cluster.<name>.`, SDS `sds.<name>.`. */
  #statsFor(t: TypeUrl, name: string): SubStats {
    if (t === TYPE.listener || t === TYPE.cluster) return this.#stats.get(t)!;
    const key = `${TYPE_SHORT[t]}:${name}`;
    let st = this.#stats.get(key);
    if (st === undefined) {
      const prefix = t === TYPE.route ? `rds.${name}.` : `sds.${name}.`;
      st = this.#subStats(prefix);
      this.#stats.set(key, st);
    }
    return st;
  }

  /**
   * Starts the sources: LDS and CDS wildcard subscriptions. Resolves when the first listeners and clusters are
   * applied and warm, or their `initial_fetch_timeout`s have passed (Envoy's init manager: the server is not
   * ready before).
   */
  start(): Promise<void> {
    const d = this.#o.dynamic;
    const waits: Promise<void>[] = [];
    for (const [t, cs] of [[TYPE.cluster, d.cds], [TYPE.listener, d.lds]] as const) {
      if (cs === undefined) continue;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => resolve = r);
      const entry = { done: false, resolve, promise };
      this.#initial.set(t, entry);
      if (cs.initialFetchTimeoutMs > 0) {
        const timer = setTimeout(() => {
          if (entry.done) return;
          log.warn(`${TYPE_SHORT[t]}: no ${TYPE_NOUN[t]}s within initial_fetch_timeout; starting without them`);
          this.#statsFor(t, "").init_fetch_timeout.inc();
          entry.done = true;
          resolve();
        }, cs.initialFetchTimeoutMs);
        Deno.unrefTimer(timer);
      }
      waits.push(promise);
      this.#want(cs, t, "*");
    }
    if (this.#staticEds.size > 0) this.#resubscribe();
    for (const s of this.#sources.values()) s.start();
    this.#initialized = Promise.all(waits).then(() => this.#settled());
    return this.#initialized;
  }

  /** Stops every source; what was applied keeps serving. */
  close(): void {
    this.#closed = true;
    for (const s of this.#sources.values()) s.close();
    for (const w of this.#warmingListeners.values()) clearTimeout(w.timer);
    for (const w of this.#warmingClusters.values()) clearTimeout(w.timer);
    for (const e of this.#initial.values()) e.resolve();
  }

  /** Resolves once nothing is warming. */
  #settled(): Promise<void> {
    if (this.#warmingListeners.size === 0 && this.#warmingClusters.size === 0) return Promise.resolve();
    return new Promise((r) => this.#settleWaiters.push(r));
  }

  #checkSettled(): void {
    this.#listenersWarming.set(this.#warmingListeners.size);
    this.#clustersWarming.set(this.#warmingClusters.size);
    this.#clustersActive.set(this.#activeClusters.size);
    if (this.#warmingListeners.size === 0 && this.#warmingClusters.size === 0) {
      const w = this.#settleWaiters;
      this.#settleWaiters = [];
      for (const f of w) f();
    }
  }

  /** The source of a config source, created (and started, once the manager runs) on first use. */
  #source(cs: ConfigSource, t: TypeUrl): ResourceSource {
    const key = sourceKey(cs, t);
    let s = this.#sources.get(key);
    if (s !== undefined) return s;
    if (cs.kind === "file") {
      s = new FileSource({
        file: cs.file,
        watchedDirectory: cs.watchedDirectory,
        typeUrl: t,
        sink: this,
        path: cs.path,
      });
    } else {
      const api = cs.kind === "ads" ? this.#o.dynamic.ads : cs.api;
      if (api === undefined) throw new ConfigError(`${cs.path}.ads`, "needs dynamic_resources.ads_config");
      const label = cs.kind === "ads"
        ? `ADS (cluster ${JSON.stringify(api.clusterName)})`
        : `${TYPE_SHORT[t].toUpperCase()} (cluster ${JSON.stringify(api.clusterName)})`;
      const target = { ...this.#o.grpcTarget(api.clusterName, api.authority, api.path), label };
      const delta = api.apiType === "DELTA_GRPC";
      s = new GrpcSource({
        target: { ...target, metadata: [...target.metadata, ...api.initialMetadata] },
        delta,
        method: methodFor(cs.kind === "ads" ? "ads" : t, delta),
        node: this.#o.node,
        setNodeOnFirstMessageOnly: api.setNodeOnFirstMessageOnly,
        wire: this.#o.wire,
        sink: this,
        ...(this.#o.backoffBaseMs !== undefined ? { backoffBaseMs: this.#o.backoffBaseMs } : {}),
        ...(this.#o.backoffMaxMs !== undefined ? { backoffMaxMs: this.#o.backoffMaxMs } : {}),
      });
    }
    this.#sources.set(key, s);
    if (this.#initialized !== undefined) s.start();
    return s;
  }

  /** Records interest in `names` of type `t` from a source, and tells the source. */
  #want(cs: ConfigSource, t: TypeUrl, names: "*" | Set<string>): void {
    const key = sourceKey(cs, t);
    const src = this.#source(cs, t);
    let m = this.#interest.get(key);
    if (m === undefined) this.#interest.set(key, m = new Map());
    m.set(t, names);
    src.setInterest(t, names);
  }

  /** Recomputes the named subscriptions (RDS, EDS, SDS) from what active and warming resources refer to. */
  #resubscribe(): void {
    const wanted = new Map<string, { cs: ConfigSource; t: TypeUrl; names: Set<string> }>();
    const add = (t: TypeUrl, deps: Map<string, ConfigSource>) => {
      for (const [name, cs] of deps) {
        const key = `${sourceKey(cs, t)}|${t}`;
        let w = wanted.get(key);
        if (w === undefined) wanted.set(key, w = { cs, t, names: new Set() });
        w.names.add(name);
      }
    };
    for (const l of [...this.#activeListeners.values(), ...this.#warmingListeners.values()]) {
      add(TYPE.route, l.deps.rds);
      add(TYPE.secret, l.deps.sds);
    }
    for (const c of [...this.#activeClusters.values(), ...this.#warmingClusters.values()]) {
      add(TYPE.endpoint, c.deps.eds);
      add(TYPE.secret, c.deps.sds);
    }
    add(TYPE.endpoint, this.#staticEds);
    // Types no longer referred to through a source: subscribe to nothing.
    for (const [key, m] of this.#interest) {
      for (const t of m.keys()) {
        if (t === TYPE.listener || t === TYPE.cluster) continue;
        if (![...wanted.values()].some((w) => w.t === t && sourceKey(w.cs, t) === key)) {
          m.set(t, new Set());
          this.#sources.get(key)?.setInterest(t, new Set());
        }
      }
    }
    for (const w of wanted.values()) this.#want(w.cs, w.t, w.names);
    // Drop held named resources nothing refers to any more.
    const names = (t: TypeUrl) => new Set([...wanted.values()].filter((w) => w.t === t).flatMap((w) => [...w.names]));
    const routes = names(TYPE.route);
    for (const n of [...this.#routes.keys()]) if (!routes.has(n)) this.#routes.delete(n);
    const eps = names(TYPE.endpoint);
    for (const n of [...this.#endpoints.keys()]) if (!eps.has(n)) this.#endpoints.delete(n);
  }

  onConnection(connected: boolean, reason: string): void {
    this.#connected.set(connected ? 1 : 0);
    if (!connected) {
      for (const st of [this.#stats.get(TYPE.listener), this.#stats.get(TYPE.cluster)]) st?.update_failure.inc();
      log.debug(`control plane: disconnected (${reason})`);
    }
  }

  onRejected(t: TypeUrl, message: string): void {
    const st = this.#statsFor(t, "");
    st.update_attempt.inc();
    st.update_rejected.inc();
    log.warn(`${TYPE_SHORT[t]}: update rejected: ${message}`);
  }

  /**
   * Applies one update (see the module doc); throws the one-line error that the source NACKs with. Updates from
   * different sources run one after another: applying yields the event loop between slices.
   */
  onUpdate(u: ResourceUpdate): Promise<void> {
    const run = this.#updates.then(() => this.#onUpdate(u));
    this.#updates = run.catch(() => {});
    return run;
  }

  async #onUpdate(u: ResourceUpdate): Promise<void> {
    if (this.#closed) return;
    const named = u.typeUrl !== TYPE.listener && u.typeUrl !== TYPE.cluster;
    const statsOf = (n: string) => this.#statsFor(u.typeUrl, n);
    // EDS counts on the cluster's own scope (`cluster.<name>.update_*`, in the cluster manager), as Envoy.
    const touched = u.typeUrl === TYPE.endpoint ? [] : named ? [...u.resources.map((r) => r.name), ...u.removed] : [""];
    for (const n of touched) statsOf(n).update_attempt.inc();
    const slicer = new Slicer();
    try {
      switch (u.typeUrl) {
        case TYPE.listener:
          await this.#applyListeners(u);
          break;
        case TYPE.cluster:
          await this.#applyClusters(u, slicer);
          break;
        case TYPE.route:
          await this.#applyRoutes(u, slicer);
          break;
        case TYPE.endpoint:
          await this.#applyEndpoints(u, slicer);
          break;
        case TYPE.secret:
          this.#applySecrets(u);
          break;
      }
    } catch (e) {
      for (const n of touched) statsOf(n).update_rejected.inc();
      throw e;
    }
    const now = Date.now();
    for (const n of touched) {
      const st = statsOf(n);
      st.update_success.inc();
      if (u.resources.length === 0 && u.removed.length === 0) st.update_empty.inc();
      st.version.set(versionHash(u.version));
      if (u.version !== "") st.version_text.value = u.version;
      st.update_time.set(now);
    }
    this.#versions.set(u.typeUrl, { version: u.version, at: new Date(now) });
    const init = this.#initial.get(u.typeUrl);
    if (init && !init.done) {
      init.done = true;
      init.resolve();
    }
    await this.#advanceWarming(slicer);
    // The source ACKs when this resolves: only once the workers serve the update too.
    await this.#server.workersApplied?.();
    this.#checkSettled();
  }

  // ---- listeners ----

  async #applyListeners(u: ResourceUpdate): Promise<void> {
    // Parse everything first: nothing is applied if one listener is bad.
    const changed: { r: DecodedResource; deps: Deps }[] = [];
    for (const r of u.resources) {
      const path = resPath(TYPE.listener, r.name);
      if (this.#server.staticListenerNames.has(r.name)) {
        throw new ConfigError(`${path}.name`, "is a static listener (static_resources) and cannot be replaced by LDS");
      }
      const cur = this.#warmingListeners.get(r.name) ?? this.#activeListeners.get(r.name);
      if (cur !== undefined && cur.text === r.text) continue;
      const deps = findDeps(r.raw, path, false);
      // With the routes it needs replaced by empty tables, it must parse; secrets it waits for are checked on
      // arrival (a listener whose secrets are all here is checked in full now).
      if ([...deps.sds.keys()].every((n) => this.#server.secrets.get(n) !== undefined)) {
        this.#server.validateListener(finalize(r.raw), path);
      }
      changed.push({ r, deps });
    }
    for (const name of u.removed) {
      if (!this.#activeListeners.has(name) && !this.#warmingListeners.has(name)) continue;
      const w = this.#warmingListeners.get(name);
      if (w) clearTimeout(w.timer);
      this.#warmingListeners.delete(name);
      this.#listenerErrors.delete(name);
      if (this.#activeListeners.delete(name)) {
        await this.#server.removeListener(name);
        log.info(`lds: listener "${name}" removed`);
      }
    }
    for (const { r, deps } of changed) {
      const prev = this.#warmingListeners.get(r.name);
      if (prev) clearTimeout(prev.timer);
      const w: Warming = { ...r, lastUpdated: new Date(), deps, timedOut: false, timer: undefined };
      const timeout = Math.max(0, ...[...deps.rds.values(), ...deps.sds.values()].map((c) => c.initialFetchTimeoutMs));
      if (timeout > 0 && (deps.rds.size > 0 || deps.sds.size > 0)) {
        w.timer = setTimeout(() => {
          w.timedOut = true;
          void this.#advanceWarming().then(() => this.#checkSettled());
        }, timeout);
        Deno.unrefTimer(w.timer);
      }
      this.#warmingListeners.set(r.name, w);
    }
    this.#resubscribe();
  }

  async #warmListener(w: Warming): Promise<boolean> {
    const missingRds = [...w.deps.rds.keys()].filter((n) => !this.#routes.has(n));
    const missingSds = [...w.deps.sds.keys()].filter((n) => this.#server.secrets.get(n) === undefined);
    if (missingSds.length > 0) {
      if (w.timedOut && w.timer !== undefined) {
        log.warn(`lds: listener "${w.name}" still waits for secret(s) ${missingSds.join(", ")}`);
        w.timer = undefined;
      }
      return false;
    }
    if (missingRds.length > 0 && !w.timedOut) return false;
    if (missingRds.length > 0) {
      log.warn(
        `lds: listener "${w.name}": route configuration(s) ${missingRds.join(", ")} did not arrive; serving 404`,
      );
    }
    clearTimeout(w.timer);
    this.#warmingListeners.delete(w.name);
    const path = resPath(TYPE.listener, w.name);
    try {
      // Built with empty tables for its RDS names, then given the parsed configurations: a 10,000-route table is
      // parsed once (by RDS), not again inside every listener that names it. No connection is accepted in between
      // (no event-loop turn).
      await this.#server.addOrUpdateListener(finalize(w.raw), path);
      for (const name of w.deps.rds.keys()) {
        const rc = this.#routes.get(name);
        if (rc === undefined) continue;
        this.#server.routeConfigs.update(rc.config);
        this.#server.forwardToWorkers?.({ kind: "route", name, raw: rc.raw, path: resPath(TYPE.route, name) });
      }
    } catch (e) {
      const details = e instanceof Error ? e.message : String(e);
      log.error(`lds: listener "${w.name}" version ${w.version} failed: ${details}`);
      this.#listenerErrors.set(w.name, { raw: w.raw, version: w.version, at: new Date(), details });
      this.#server.stats.counter("listener_manager.lds.update_rejected").inc();
      return true;
    }
    this.#listenerErrors.delete(w.name);
    this.#activeListeners.set(w.name, { ...w });
    log.info(`lds: listener "${w.name}" version ${w.version} active`);
    return true;
  }

  // ---- clusters ----

  #parseCluster(r: DecodedResource): { config: ClusterConfig; deps: Deps } {
    const path = resPath(TYPE.cluster, r.name);
    const deps = findDeps(r.raw, path, true);
    const missing = [...deps.sds.keys()].filter((n) => this.#server.secrets.get(n) === undefined);
    if (missing.length > 0) {
      // Parsed again when the secrets arrive; the structure is checked without the TLS context now.
      const { transport_socket: _t, transportSocket: _u, ...rest } = r.raw;
      return { config: parseCluster(rest, path), deps };
    }
    const resolved = resolveSecretRefs(finalize(r.raw), path, this.#server.secrets);
    return { config: parseCluster(resolved, path), deps };
  }

  async #applyClusters(u: ResourceUpdate, slicer: Slicer): Promise<void> {
    const changed: { r: DecodedResource; config: ClusterConfig; deps: Deps }[] = [];
    for (const r of u.resources) {
      await slicer.tick();
      const path = resPath(TYPE.cluster, r.name);
      if (this.#server.staticClusterNames.has(r.name)) {
        throw new ConfigError(`${path}.name`, "is a static cluster (static_resources) and cannot be replaced by CDS");
      }
      const cur = this.#warmingClusters.get(r.name) ?? this.#activeClusters.get(r.name);
      if (cur !== undefined && cur.text === r.text) continue;
      changed.push({ r, ...this.#parseCluster(r) });
    }
    for (const name of u.removed) {
      const w = this.#warmingClusters.get(name);
      if (w) clearTimeout(w.timer);
      this.#warmingClusters.delete(name);
      if (this.#activeClusters.delete(name)) {
        this.#server.clusterManager.remove(name);
        this.#server.forwardToWorkers?.({ kind: "cluster-remove", name });
        log.debug(`cds: cluster "${name}" removed`);
      }
    }
    if (changed.length > 0 || u.removed.length > 0) {
      log.info(
        `cds: ${changed.length} cluster(s) added or changed, ${u.removed.length} removed (version ${u.version})`,
      );
    }
    // One warm-up deadline for the clusters of this update (not a timer each).
    const batch: (Warming & { config: ClusterConfig })[] = [];
    let batchTimeout = 0;
    for (const { r, config, deps } of changed) {
      const prev = this.#warmingClusters.get(r.name);
      if (prev) clearTimeout(prev.timer);
      const w: Warming & { config: ClusterConfig } = {
        ...r,
        lastUpdated: new Date(),
        deps,
        config,
        timedOut: false,
        timer: undefined,
      };
      const waits = [...deps.eds.values(), ...deps.sds.values()];
      if (waits.length > 0) {
        batch.push(w);
        for (const c of waits) batchTimeout = Math.max(batchTimeout, c.initialFetchTimeoutMs);
      }
      this.#warmingClusters.set(r.name, w);
    }
    if (batch.length > 0 && batchTimeout > 0) {
      const timer = setTimeout(() => {
        for (const w of batch) w.timedOut = true;
        void this.#advanceWarming().then(() => this.#checkSettled());
      }, batchTimeout);
      Deno.unrefTimer(timer);
    }
    this.#resubscribe();
  }

  #warmCluster(w: Warming & { config: ClusterConfig }): boolean {
    const missingSds = [...w.deps.sds.keys()].filter((n) => this.#server.secrets.get(n) === undefined);
    if (missingSds.length > 0) return false;
    const eds = [...w.deps.eds.keys()][0];
    const cla = eds !== undefined ? this.#endpoints.get(eds) : undefined;
    if (eds !== undefined && cla === undefined && !w.timedOut) {
      // An update of an active cluster whose endpoints are already held needs no wait.
      return false;
    }
    clearTimeout(w.timer);
    this.#warmingClusters.delete(w.name);
    const path = resPath(TYPE.cluster, w.name);
    let config = w.config;
    try {
      if (w.deps.sds.size > 0) {
        config = parseCluster(resolveSecretRefs(finalize(w.raw), path, this.#server.secrets), path);
      }
      const cm = this.#server.clusterManager;
      cm.addOrUpdate(config);
      this.#server.forwardToWorkers?.({ kind: "cluster", name: w.name, raw: finalize(w.raw), path });
      if (cla !== undefined) {
        const la = parseLoadAssignment(cla.raw, resPath(TYPE.endpoint, eds!), config.type);
        cm.updateHosts(w.name, la.localities, la);
        this.#server.forwardToWorkers?.({ kind: "hosts", cluster: w.name, raw: cla.raw });
      } else if (eds !== undefined) {
        log.warn(`cds: cluster "${w.name}": no endpoints for "${eds}" within initial_fetch_timeout; no hosts yet`);
      }
    } catch (e) {
      log.error(`cds: cluster "${w.name}" version ${w.version} failed: ${e instanceof Error ? e.message : String(e)}`);
      this.#server.stats.counter("cluster_manager.cds.update_rejected").inc();
      return true;
    }
    this.#activeClusters.set(w.name, { ...w });
    log.debug(`cds: cluster "${w.name}" version ${w.version} active`);
    return true;
  }

  // ---- routes, endpoints, secrets ----

  async #applyRoutes(u: ResourceUpdate, slicer: Slicer): Promise<void> {
    const parsed: { r: DecodedResource; config: RouteConfig }[] = [];
    for (const r of u.resources) {
      await slicer.tick();
      parsed.push({ r, config: parseRouteConfiguration(r.raw, resPath(TYPE.route, r.name)) });
    }
    for (const { r, config } of parsed) {
      const cur = this.#routes.get(r.name);
      this.#routes.set(r.name, { ...r, config, lastUpdated: new Date() });
      if (cur !== undefined && cur.text === r.text) continue;
      const n = this.#server.routeConfigs.update(config);
      this.#server.forwardToWorkers?.({ kind: "route", name: r.name, raw: r.raw, path: resPath(TYPE.route, r.name) });
      log.debug(`rds: route configuration "${r.name}" version ${r.version} → ${n} connection manager(s)`);
    }
    for (const n of u.removed) this.#routes.delete(n);
  }

  async #applyEndpoints(u: ResourceUpdate, slicer: Slicer): Promise<void> {
    const cm = this.#server.clusterManager;
    const plans: { cluster: string; la: ReturnType<typeof parseLoadAssignment>; raw: unknown }[] = [];
    // Every active EDS cluster of the service (static ones too); warming clusters take theirs when they warm.
    for (const r of u.resources) {
      await slicer.tick();
      const cur = this.#endpoints.get(r.name);
      if (cur !== undefined && cur.text === r.text) continue;
      for (const c of cm.clustersForService(r.name)) {
        const la = parseLoadAssignment(r.raw, resPath(TYPE.endpoint, r.name), c.config.type);
        plans.push({ cluster: c.config.name, la, raw: r.raw });
      }
    }
    for (const r of u.resources) this.#endpoints.set(r.name, { ...r, lastUpdated: new Date() });
    for (const p of plans) {
      await slicer.tick();
      cm.updateHosts(p.cluster, p.la.localities, p.la);
      this.#server.forwardToWorkers?.({ kind: "hosts", cluster: p.cluster, raw: p.raw });
    }
    for (const n of u.removed) {
      this.#endpoints.delete(n);
      for (const c of cm.clustersForService(n)) {
        cm.updateHosts(c.config.name, []);
        this.#server.forwardToWorkers?.({ kind: "hosts", cluster: c.config.name, raw: null });
      }
    }
  }

  #applySecrets(u: ResourceUpdate): void {
    const sm = this.#server.secrets;
    // Check all first; SecretManager.update checks a candidate against every context that uses it.
    const parsed = u.resources.map((r) => {
      const path = resPath(TYPE.secret, r.name);
      const o = new ObjReader(r.raw, path);
      const p = parseSecret(o);
      o.done();
      return { r, p, path };
    });
    for (const { r, p, path } of parsed) {
      const cur = this.#secrets.get(r.name);
      if (cur !== undefined && cur.text === r.text) continue;
      if (sm.get(r.name) === undefined) sm.add({ ...p, path });
      else sm.update(r.name, r.raw, path);
      this.#server.forwardToWorkers?.({ kind: "secret", name: r.name, raw: r.raw, path });
      this.#secrets.set(r.name, { ...r, lastUpdated: new Date() });
      log.info(`sds: secret "${r.name}" version ${r.version}`);
    }
    // A removed secret stays in use by contexts built with it (as Envoy): nothing to tear down.
    for (const n of u.removed) this.#secrets.delete(n);
  }

  /** Moves warming clusters, then listeners, that have what they wait for to active. */
  async #advanceWarming(slicer = new Slicer()): Promise<void> {
    if (this.#closed) return;
    let moved = false;
    let clusters = 0;
    for (const w of [...this.#warmingClusters.values()]) {
      await slicer.tick();
      // Warming state may have changed while the loop yielded.
      if (this.#warmingClusters.get(w.name) !== w) continue;
      if (this.#warmCluster(w)) {
        moved = true;
        clusters++;
      }
    }
    if (clusters > 0) log.info(`cds: ${clusters} cluster(s) warmed and active`);
    for (const w of [...this.#warmingListeners.values()]) {
      if (this.#warmingListeners.get(w.name) !== w) continue;
      if (await this.#warmListener(w)) moved = true;
    }
    if (moved) this.#resubscribe();
  }

  // ---- admin ----

  /** The dynamic parts of `/config_dump`, by config dump type. */
  configDump(options: { includeEds: boolean }): {
    listeners: Obj;
    clusters: Obj;
    routes: Obj;
    secrets: Obj;
    endpoints: Obj | undefined;
  } {
    const ts = (d: Date) => d.toISOString();
    const lds = this.#versions.get(TYPE.listener);
    const cds = this.#versions.get(TYPE.cluster);
    const names = new Set([
      ...this.#activeListeners.keys(),
      ...this.#warmingListeners.keys(),
      ...this.#listenerErrors.keys(),
    ]);
    const dynamicListeners = [...names].map((name) => {
      const a = this.#activeListeners.get(name);
      const w = this.#warmingListeners.get(name);
      const err = this.#listenerErrors.get(name);
      return {
        name,
        ...(a ? { active_state: { version_info: a.version, listener: a.raw, last_updated: ts(a.lastUpdated) } } : {}),
        ...(w ? { warming_state: { version_info: w.version, listener: w.raw, last_updated: ts(w.lastUpdated) } } : {}),
        ...(err
          ? {
            error_state: {
              failed_configuration: err.raw,
              last_update_attempt: ts(err.at),
              details: err.details,
            },
          }
          : {}),
      };
    });
    const cluster = (c: Held) => ({ version_info: c.version, cluster: c.raw, last_updated: ts(c.lastUpdated) });
    return {
      listeners: { ...(lds ? { version_info: lds.version } : {}), dynamic_listeners: dynamicListeners },
      clusters: {
        ...(cds ? { version_info: cds.version } : {}),
        dynamic_active_clusters: [...this.#activeClusters.values()].map(cluster),
        dynamic_warming_clusters: [...this.#warmingClusters.values()].map(cluster),
      },
      routes: {
        dynamic_route_configs: [...this.#routes.values()].map((r) => ({
          version_info: r.version,
          route_config: r.raw,
          last_updated: ts(r.lastUpdated),
        })),
      },
      secrets: {
        dynamic_active_secrets: [...this.#secrets.values()].map((s) => ({
          name: s.name,
          version_info: s.version,
          last_updated: ts(s.lastUpdated),
          secret: s.raw,
        })),
      },
      endpoints: options.includeEds
        ? {
          dynamic_endpoint_configs: [...this.#endpoints.values()].map((e) => ({
            version_info: e.version,
            endpoint_config: e.raw,
            last_updated: ts(e.lastUpdated),
          })),
        }
        : undefined,
    };
  }
}
