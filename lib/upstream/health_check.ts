/**
 * {@link HealthChecker}: active health checking of a cluster's hosts (Envoy's `HealthCheckerImplBase` with the
 * HTTP and TCP checkers).
 *
 * One session per host, each on its own timer (`setTimeout`, unref'd: health checks never keep the process up):
 * - The first check runs after `initial_jitter` (random in [0, initial_jitter)); later ones after the interval:
 *   `no_traffic_interval` (`no_traffic_healthy_interval` for healthy hosts) until the cluster has opened its first
 *   upstream connection, `unhealthy_interval` for
 *   unhealthy hosts, `healthy_edge_interval` / `unhealthy_edge_interval` right after a transition, else `interval`;
 *   plus random jitter below `interval_jitter` and `interval_jitter_percent` of the interval.
 * - Hosts start with `FAILED_ACTIVE_HC | PENDING_ACTIVE_HC` (as Envoy). The first success makes a host healthy at
 *   once; afterwards `healthy_threshold` successes in a row are needed.
 * - An HTTP answer outside `expected_statuses` fails the host at once (Envoy's "active" failure); network failures
 *   and timeouts fail it after `unhealthy_threshold` in a row (a timeout also sets `ACTIVE_HC_TIMEOUT`).
 * - An HTTP answer with `x-envoy-immediate-health-check-fail` fails the host at once and sets
 *   `EXCLUDED_VIA_IMMEDIATE_HC_FAIL`; the router reports the same header on ordinary responses
 *   (`Host.monitor.immediateHealthCheckFail`).
 * - HTTP checks keep their connection between checks when `reuse_connection` (default) and the response allows
 *   it; TCP checks connect, write `send`, wait for every `receive` pattern in order, and close.
 *
 * Stats under `cluster.<name>.health_check.`: `attempt`, `success`, `failure`, `network_failure`,
 * `passive_failure`, `verify_cluster` (counters) and `healthy` (gauge). Transitions are logged under `hc`.
 *
 * @module
 */
import type { ClientConnectionCodec, CodecFactory, StreamDecoder } from "../api/codec.ts";
import { HeaderMap } from "../api/headers.ts";
import type { NetConnection } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import { getLogger } from "../observe/log.ts";
import { type Connector, errorText } from "./connect.ts";
import { HealthFlag, type HostImpl } from "./host.ts";
import type { HealthCheckConfig } from "./resilience_config.ts";

const log = getLogger("hc");

/** What the checker needs from its cluster. */
export interface HealthCheckTarget {
  readonly name: string;
  readonly scope: StatsScope;
  /** True once the cluster opened any upstream connection (else `no_traffic_interval` applies). */
  hasTraffic(): boolean;
}

/** Services of a {@link HealthChecker}; injectable for tests. */
export interface HealthCheckerOptions {
  connect: Connector;
  /** The HTTP/1 codec (required for HTTP checks). */
  httpCodec?: CodecFactory | undefined;
  random?: () => number;
  /** Called after a host's health changed because of a check (e.g. to un-eject it or restart slow start). */
  onHostHealthChange?: (host: HostImpl, healthy: boolean) => void;
  /** Called after each successful check (outlier detection may un-eject). */
  onHostCheckSuccess?: (host: HostImpl) => void;
}

/** Health-check stats of a cluster. */
interface HcStats {
  attempt: Counter;
  success: Counter;
  failure: Counter;
  network_failure: Counter;
  passive_failure: Counter;
  verify_cluster: Counter;
  healthy: Gauge;
}

type Outcome = { ok: true; immediateFail?: boolean } | {
  ok: false;
  kind: "active" | "network" | "timeout";
  detail: string;
  immediateFail?: boolean;
};

const USER_AGENT = "Envoy/HC";

/** One host's checks. */
class Session {
  readonly host: HostImpl;
  readonly #hc: HealthChecker;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timeout: ReturnType<typeof setTimeout> | undefined;
  #conn: NetConnection | undefined;
  #codec: ClientConnectionCodec | undefined;
  #numHealthy = 0;
  #numUnhealthy = 0;
  #first = true;
  #stopped = false;
  /** Transition of the last result, for the edge intervals. */
  #edge: "healthy" | "unhealthy" | undefined;
  /** Resolvers waiting for the first result (cluster warm-up). */
  readonly firstResult: Promise<void>;
  #resolveFirst!: () => void;
  /** Settles the check in flight. */
  #settle: ((o: Outcome) => void) | undefined;

  constructor(hc: HealthChecker, host: HostImpl) {
    this.#hc = hc;
    this.host = host;
    this.firstResult = new Promise((r) => this.#resolveFirst = r);
  }

  start(): void {
    const j = this.#hc.config.initialJitterMs;
    this.#arm(j > 0 ? Math.floor(this.#hc.random() * j) : 0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#timeout !== undefined) clearTimeout(this.#timeout);
    this.#timer = this.#timeout = undefined;
    this.#closeConn();
    this.#settle = undefined;
    this.#resolveFirst();
  }

  #arm(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, ms);
    Deno.unrefTimer(this.#timer);
  }

  #nextInterval(): number {
    const c = this.#hc.config;
    let base: number;
    if (!this.#hc.target.hasTraffic()) {
      base = this.host.hasFlag(HealthFlag.FAILED_ACTIVE_HC) ? c.noTrafficIntervalMs : c.noTrafficHealthyIntervalMs;
    } else if (this.#edge === "unhealthy") base = c.unhealthyEdgeIntervalMs;
    else if (this.#edge === "healthy") base = c.healthyEdgeIntervalMs;
    else if (this.host.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) base = c.unhealthyIntervalMs;
    else base = c.intervalMs;
    let jitter = 0;
    if (c.intervalJitterPercent > 0) jitter += this.#hc.random() * base * c.intervalJitterPercent / 100;
    if (c.intervalJitterMs > 0) jitter += this.#hc.random() * c.intervalJitterMs;
    return Math.max(1, Math.floor(base + jitter));
  }

  #run(): void {
    if (this.#stopped) return;
    const hc = this.#hc;
    hc.stats.attempt.inc();
    let settled = false;
    const done = (o: Outcome) => {
      if (settled || this.#stopped) return;
      settled = true;
      this.#settle = undefined;
      if (this.#timeout !== undefined) clearTimeout(this.#timeout);
      this.#timeout = undefined;
      this.#onResult(o);
      this.#arm(this.#nextInterval());
    };
    this.#settle = done;
    this.#timeout = setTimeout(() => {
      this.#timeout = undefined;
      done({ ok: false, kind: "timeout", detail: `no answer within ${hc.config.timeoutMs} ms` });
      // The connection may be stuck mid-response: start over next time.
      this.#closeConn();
    }, hc.config.timeoutMs);
    Deno.unrefTimer(this.#timeout);
    const checker = hc.config.checker;
    if (checker.kind === "http") this.#httpCheck(done);
    else this.#tcpCheck(done);
  }

  #closeConn(): void {
    const c = this.#conn;
    this.#conn = undefined;
    this.#codec = undefined;
    if (c !== undefined && !c.closed) c.close({ reason: "health check" });
  }

  async #connect(): Promise<NetConnection> {
    return await this.#hc.connect(this.host, { timeoutMs: this.#hc.config.timeoutMs });
  }

  #httpCheck(done: (o: Outcome) => void): void {
    const hc = this.#hc;
    const checker = hc.config.checker;
    if (checker.kind !== "http") return;
    const codecFactory = hc.httpCodec;
    if (codecFactory === undefined) {
      done({ ok: false, kind: "network", detail: "no HTTP codec" });
      return;
    }
    const send = () => {
      const codec = this.#codec!;
      const h = new HeaderMap([
        ":method",
        checker.method,
        ":scheme",
        "http",
        ":authority",
        checker.host ?? hc.target.name,
        ":path",
        checker.path,
        "user-agent",
        USER_AGENT,
      ]);
      for (const a of checker.requestHeadersToAdd) {
        if (a.append) h.add(a.name, a.value);
        else h.set(a.name, a.value);
      }
      for (const r of checker.requestHeadersToRemove) h.remove(r);
      let status = 0;
      let immediateFail = false;
      const decoder: StreamDecoder = {
        decodeHeaders: (headers, end) => {
          status = Number(headers.get(":status"));
          immediateFail = headers.has("x-envoy-immediate-health-check-fail");
          if (end) finish();
        },
        decodeData: (_d, end) => {
          if (end) finish();
        },
        decodeTrailers: () => finish(),
        onReset: (_reason, detail) => {
          this.#closeConn();
          done({ ok: false, kind: "network", detail: detail ?? "connection reset" });
        },
      };
      const finish = () => {
        // The codec ends the stream inside dispatch; decide on reuse afterwards.
        queueMicrotask(() => {
          if (!hc.config.reuseConnection || this.#codec === undefined || !this.#codec.reusable) this.#closeConn();
        });
        const ok = checker.expectedStatuses.some(([a, b]) => status >= a && status < b);
        if (immediateFail) {
          done({ ok: false, kind: "active", detail: "x-envoy-immediate-health-check-fail", immediateFail: true });
        } else if (ok) done({ ok: true });
        else done({ ok: false, kind: "active", detail: `status ${status}` });
      };
      try {
        const enc = codec.newStream(decoder);
        enc.encodeHeaders(h, true);
      } catch (e) {
        this.#closeConn();
        done({ ok: false, kind: "network", detail: errorText(e) });
      }
    };
    if (this.#conn !== undefined && !this.#conn.closed && this.#codec !== undefined) {
      send();
      return;
    }
    this.#connect().then((conn) => {
      if (this.#stopped || this.#settle !== done) {
        conn.close();
        return;
      }
      const codec = codecFactory.createClient((d) => conn.write(d));
      this.#conn = conn;
      this.#codec = codec;
      conn.setHandler({
        onData: (d) => {
          try {
            codec.dispatch(d);
          } catch (e) {
            this.#closeConn();
            done({ ok: false, kind: "network", detail: `protocol error: ${errorText(e)}` });
          }
        },
        onEof: () => {
          try {
            codec.onEof();
          } catch { /* reset below */ }
          if (this.#conn === conn) this.#closeConn();
          done({ ok: false, kind: "network", detail: "connection closed" });
        },
        onClose: () => {
          if (this.#conn === conn) {
            this.#conn = undefined;
            this.#codec = undefined;
          }
          done({ ok: false, kind: "network", detail: "connection closed" });
        },
      });
      conn.start();
      send();
    }, (e) => done({ ok: false, kind: "network", detail: errorText(e) }));
  }

  #tcpCheck(done: (o: Outcome) => void): void {
    const checker = this.#hc.config.checker;
    if (checker.kind !== "tcp") return;
    this.#connect().then((conn) => {
      if (this.#stopped || this.#settle !== done) {
        conn.close();
        return;
      }
      this.#conn = conn;
      let buf = new Uint8Array(0);
      const finish = (o: Outcome) => {
        // Settle first: closing calls onClose synchronously, which would report a failure.
        done(o);
        this.#closeConn();
      };
      const check = () => {
        let from = 0;
        for (const p of checker.receive) {
          const i = indexOf(buf, p, from);
          if (i < 0) return false;
          from = i + p.length;
        }
        return true;
      };
      conn.setHandler({
        onData: (d) => {
          const n = new Uint8Array(buf.length + d.length);
          n.set(buf);
          n.set(d, buf.length);
          buf = n;
          if (check()) finish({ ok: true });
        },
        onEof: () => finish({ ok: false, kind: "network", detail: "connection closed before the expected payload" }),
        onClose: () => done({ ok: false, kind: "network", detail: "connection closed" }),
      });
      conn.start();
      if (checker.send !== undefined) conn.write(checker.send);
      if (checker.receive.length === 0) finish({ ok: true });
    }, (e) => done({ ok: false, kind: "network", detail: errorText(e) }));
  }

  #onResult(o: Outcome): void {
    const hc = this.#hc;
    const host = this.host;
    const first = this.#first;
    this.#first = false;
    this.#edge = undefined;
    const wasPending = host.hasFlag(HealthFlag.PENDING_ACTIVE_HC);
    if (o.ok) {
      hc.stats.success.inc();
      this.#numUnhealthy = 0;
      host.setFlag(HealthFlag.ACTIVE_HC_TIMEOUT, false);
      if (host.hasFlag(HealthFlag.FAILED_ACTIVE_HC) || host.hasFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL)) {
        // Envoy: the first result of a new host counts at once, for a fast start.
        if (first || ++this.#numHealthy >= hc.config.healthyThreshold) {
          this.#numHealthy = 0;
          host.setFlag(HealthFlag.PENDING_ACTIVE_HC, false);
          host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, false);
          host.setFlag(HealthFlag.FAILED_ACTIVE_HC, false);
          this.#edge = "healthy";
          hc.healthyCount(1);
          log.info(`cluster "${hc.target.name}": host ${host.key} is now healthy (health check passed)`);
          hc.options.onHostHealthChange?.(host, true);
        }
      } else if (hc.config.alwaysLogHealthCheckSuccess) {
        log.info(`cluster "${hc.target.name}": host ${host.key}: health check passed`);
      }
      hc.options.onHostCheckSuccess?.(host);
    } else {
      hc.stats.failure.inc();
      if (o.kind !== "active") hc.stats.network_failure.inc();
      this.#numHealthy = 0;
      if (o.kind === "timeout") host.setFlag(HealthFlag.ACTIVE_HC_TIMEOUT, true);
      if (o.immediateFail) host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, true);
      const failed = host.hasFlag(HealthFlag.FAILED_ACTIVE_HC);
      if (!failed && (o.kind === "active" || ++this.#numUnhealthy >= hc.config.unhealthyThreshold)) {
        this.#numUnhealthy = 0;
        host.setFlag(HealthFlag.FAILED_ACTIVE_HC, true);
        this.#edge = "unhealthy";
        hc.healthyCount(-1);
        log.warn(`cluster "${hc.target.name}": host ${host.key} is now unhealthy (health check failed: ${o.detail})`);
        hc.options.onHostHealthChange?.(host, false);
      } else if (failed && hc.config.alwaysLogHealthCheckFailures) {
        log.warn(`cluster "${hc.target.name}": host ${host.key}: health check failed: ${o.detail}`);
      } else {
        log.debug(`cluster "${hc.target.name}": host ${host.key}: health check failed: ${o.detail}`);
      }
      host.setFlag(HealthFlag.PENDING_ACTIVE_HC, false);
    }
    if (wasPending || first) this.#resolveFirst();
  }

  /** The upstream answered ordinary traffic with `x-envoy-immediate-health-check-fail`. */
  immediateFail(): void {
    const host = this.host;
    this.#hc.stats.passive_failure.inc();
    host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, true);
    if (!host.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) {
      host.setFlag(HealthFlag.FAILED_ACTIVE_HC, true);
      this.#hc.healthyCount(-1);
      this.#numHealthy = 0;
      log.warn(`cluster "${this.#hc.target.name}": host ${host.key} is now unhealthy (immediate health check fail)`);
      this.#hc.options.onHostHealthChange?.(host, false);
    }
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Active health checks of one cluster; see the module doc. */
export class HealthChecker {
  readonly config: HealthCheckConfig;
  readonly target: HealthCheckTarget;
  readonly options: HealthCheckerOptions;
  readonly stats: HcStats;
  readonly random: () => number;
  readonly connect: Connector;
  readonly httpCodec: CodecFactory | undefined;
  readonly #sessions = new Map<HostImpl, Session>();
  #started = false;

  constructor(config: HealthCheckConfig, target: HealthCheckTarget, options: HealthCheckerOptions) {
    if (config.checker.kind === "http" && options.httpCodec === undefined) {
      throw new Error(`cluster "${target.name}": HTTP health checks need an HTTP codec`);
    }
    this.config = config;
    this.target = target;
    this.options = options;
    this.random = options.random ?? Math.random;
    this.connect = options.connect;
    this.httpCodec = options.httpCodec;
    const s = target.scope.scope("health_check");
    this.stats = {
      attempt: s.counter("attempt"),
      success: s.counter("success"),
      failure: s.counter("failure"),
      network_failure: s.counter("network_failure"),
      passive_failure: s.counter("passive_failure"),
      verify_cluster: s.counter("verify_cluster"),
      healthy: s.gauge("healthy"),
    };
  }

  /** Flags a host starts with under active health checking. */
  static readonly INITIAL_FLAGS: number = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC;

  /** @internal Adjusts the `healthy` gauge. */
  healthyCount(d: number): void {
    if (d > 0) this.stats.healthy.inc(d);
    else this.stats.healthy.dec(-d);
  }

  /** Starts checking `hosts` (call once); later changes go through {@link onHostsChanged}. */
  start(hosts: readonly HostImpl[]): void {
    this.#started = true;
    this.onHostsChanged(hosts, []);
  }

  /** Adds sessions for added hosts and stops those of removed ones. */
  onHostsChanged(added: readonly HostImpl[], removed: readonly HostImpl[]): void {
    for (const h of removed) {
      const s = this.#sessions.get(h);
      if (s === undefined) continue;
      s.stop();
      this.#sessions.delete(h);
      if (!h.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) this.healthyCount(-1);
    }
    if (!this.#started) return;
    for (const h of added) {
      if (this.#sessions.has(h)) continue;
      const s = new Session(this, h);
      this.#sessions.set(h, s);
      if (!h.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) this.healthyCount(1);
      s.start();
    }
  }

  /** Resolves when every current host has had its first check result (cluster warm-up). */
  firstRound(): Promise<void> {
    return Promise.all([...this.#sessions.values()].map((s) => s.firstResult)).then(() => {});
  }

  /** The router saw `x-envoy-immediate-health-check-fail` from this host. */
  immediateFail(host: HostImpl): void {
    this.#sessions.get(host)?.immediateFail();
  }

  /** Stops every session. */
  stop(): void {
    for (const s of this.#sessions.values()) s.stop();
    this.#sessions.clear();
    this.#started = false;
  }
}
