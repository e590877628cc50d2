/**
 * {@link OutlierDetector}: passive health checking of a cluster's hosts (Envoy's `Outlier::DetectorImpl`).
 *
 * The router reports every attempt (`HostMonitor.putHttpResponseCode` / `putResult`). Per host:
 * - consecutive 5xx (`consecutive_5xx`), consecutive gateway failures (502/503/504, `consecutive_gateway_failure`)
 *   and, with `split_external_local_origin_errors`, consecutive local-origin failures (connect failure, timeout,
 *   reset; `consecutive_local_origin_failure`). Without the split, local-origin failures count as a 503 (504 for a
 *   timeout), as Envoy does;
 * - success and failure counts per `interval` (external and local origin), for `success_rate` ejection (hosts below
 *   `mean − stdev · success_rate_stdev_factor / 1000`, given `success_rate_minimum_hosts` hosts with
 *   `success_rate_request_volume` requests) and `failure_percentage` ejection (failure % ≥
 *   `failure_percentage_threshold`, given `failure_percentage_minimum_hosts` hosts with
 *   `failure_percentage_request_volume` requests).
 *
 * Ejection is enforced with probability `enforcing_<kind>` % and only while the ejected share stays within
 * `max_ejection_percent` (or, with `always_eject_one_host`, for the first host). An ejected host gets
 * `FAILED_OUTLIER_CHECK` and is un-ejected on the first interval tick after `base_ejection_time × n` (capped by
 * `max_ejection_time`, plus random jitter below `max_ejection_time_jitter`), where n grows by one per ejection and
 * shrinks by one per interval the host spends un-ejected. A passing active health check un-ejects at once
 * (`successful_active_health_check_uneject_host`). The cluster drains an ejected host's pool (in-flight requests
 * finish; nothing new is placed on it).
 *
 * Stats under `cluster.<name>.outlier_detection.`: `ejections_active` (gauge), `ejections_total`,
 * `ejections_overflow`, `ejections_enforced_total`, and `ejections_enforced_<kind>` / `ejections_detected_<kind>`
 * for `consecutive_5xx`, `consecutive_gateway_failure`, `consecutive_local_origin_failure`, `success_rate`,
 * `local_origin_success_rate`, `failure_percentage`, `local_origin_failure_percentage`. Ejections and
 * un-ejections are logged under `upstream`.
 *
 * @module
 */
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import type { HostMonitor, OutlierResult } from "../api/upstream.ts";
import { getLogger } from "../observe/log.ts";
import { HealthFlag, type HostImpl } from "./host.ts";
import type { OutlierDetectionConfig } from "./resilience_config.ts";

const log = getLogger("upstream");

/** Why a host was ejected (Envoy's `OutlierEjectionType`, as stat suffixes). */
export type EjectionType =
  | "consecutive_5xx"
  | "consecutive_gateway_failure"
  | "consecutive_local_origin_failure"
  | "success_rate"
  | "local_origin_success_rate"
  | "failure_percentage"
  | "local_origin_failure_percentage";

const EJECTION_TYPES: readonly EjectionType[] = [
  "consecutive_5xx",
  "consecutive_gateway_failure",
  "consecutive_local_origin_failure",
  "success_rate",
  "local_origin_success_rate",
  "failure_percentage",
  "local_origin_failure_percentage",
];

/** Services of an {@link OutlierDetector}; injectable for tests. */
export interface OutlierDetectorOptions {
  /** Monotonic clock in ms. */
  now?: () => number;
  random?: () => number;
  /** Called after a host was ejected or un-ejected. */
  onEjectionChange?: (host: HostImpl, ejected: boolean) => void;
  /** Do not start the interval timer (tests call `tick()`). */
  manualTicks?: boolean;
}

/** Success/total counts of one interval. */
class Bucket {
  success = 0;
  total = 0;
  reset(): void {
    this.success = this.total = 0;
  }
}

/** The per-host monitor the router reports to. */
export class HostOutlierMonitor implements HostMonitor {
  readonly host: HostImpl;
  readonly #d: OutlierDetector;
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;
  /** Current interval's external-origin (or, unsplit, all) results. */
  readonly external = new Bucket();
  readonly local = new Bucket();
  /** Ejections so far, decayed by one per un-ejected interval (the backoff multiplier). */
  ejectTimeBackoff = 0;
  ejectedAt: number | undefined;
  ejectionMs = 0;
  /** Ejections ever (for logs). */
  numEjections = 0;

  constructor(d: OutlierDetector, host: HostImpl) {
    this.#d = d;
    this.host = host;
  }

  get ejected(): boolean {
    return this.ejectedAt !== undefined;
  }

  putHttpResponseCode(status: number): void {
    this.#d.onHttpCode(this, status, false);
  }

  putResult(result: OutlierResult): void {
    this.#d.onResult(this, result);
  }

  immediateHealthCheckFail(): void {
    this.#d.options.onImmediateHealthCheckFail?.(this.host);
  }
}

/** Outlier detection of one cluster; see the module doc. */
export class OutlierDetector {
  readonly config: OutlierDetectionConfig;
  readonly clusterName: string;
  readonly options: OutlierDetectorOptions & { onImmediateHealthCheckFail?: (host: HostImpl) => void };
  readonly #monitors = new Map<HostImpl, HostOutlierMonitor>();
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #active: Gauge;
  readonly #total: Counter;
  readonly #overflow: Counter;
  readonly #enforcedTotal: Counter;
  readonly #enforced: Record<EjectionType, Counter>;
  readonly #detected: Record<EjectionType, Counter>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    config: OutlierDetectionConfig,
    clusterName: string,
    scope: StatsScope,
    options: OutlierDetectorOptions & { onImmediateHealthCheckFail?: (host: HostImpl) => void } = {},
  ) {
    this.config = config;
    this.clusterName = clusterName;
    this.options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    const s = scope.scope("outlier_detection");
    this.#active = s.gauge("ejections_active");
    this.#total = s.counter("ejections_total");
    this.#overflow = s.counter("ejections_overflow");
    this.#enforcedTotal = s.counter("ejections_enforced_total");
    const enforced: Partial<Record<EjectionType, Counter>> = {};
    const detected: Partial<Record<EjectionType, Counter>> = {};
    for (const t of EJECTION_TYPES) {
      enforced[t] = s.counter(`ejections_enforced_${t}`);
      detected[t] = s.counter(`ejections_detected_${t}`);
    }
    this.#enforced = enforced as Record<EjectionType, Counter>;
    this.#detected = detected as Record<EjectionType, Counter>;
    if (!options.manualTicks) this.#arm();
  }

  /** The monitor of a host (created by {@link addHost}). */
  monitor(host: HostImpl): HostOutlierMonitor | undefined {
    return this.#monitors.get(host);
  }

  /** Starts monitoring a host; returns its monitor (the cluster hands it to the host as `monitor`). */
  addHost(host: HostImpl): HostOutlierMonitor {
    let m = this.#monitors.get(host);
    if (m === undefined) {
      m = new HostOutlierMonitor(this, host);
      this.#monitors.set(host, m);
    }
    return m;
  }

  /** Stops monitoring a removed host. */
  removeHost(host: HostImpl): void {
    const m = this.#monitors.get(host);
    if (m === undefined) return;
    if (m.ejected) this.#active.dec();
    this.#monitors.delete(host);
  }

  /** Hosts ejected now. */
  get ejectedCount(): number {
    let n = 0;
    for (const m of this.#monitors.values()) if (m.ejected) n++;
    return n;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.tick();
      this.#arm();
    }, this.config.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** @internal From a host monitor: an HTTP status (or a local-origin failure mapped to one). */
  onHttpCode(m: HostOutlierMonitor, status: number, fromLocal: boolean): void {
    const c = this.config;
    if (!fromLocal || !c.splitExternalLocalOriginErrors) {
      m.external.total++;
      if (status < 500) m.external.success++;
    }
    if (status >= 500) {
      if (m.ejected) return;
      const gateway = status === 502 || status === 503 || status === 504;
      if (gateway) {
        if (++m.consecutiveGateway === c.consecutiveGatewayFailure) {
          this.#detect(m, "consecutive_gateway_failure", c.enforcingConsecutiveGatewayFailure);
        }
      } else m.consecutiveGateway = 0;
      if (++m.consecutive5xx === c.consecutive5xx) {
        this.#detect(m, "consecutive_5xx", c.enforcingConsecutive5xx);
      }
    } else {
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
    }
  }

  /** @internal From a host monitor: a transport-level result. */
  onResult(m: HostOutlierMonitor, r: OutlierResult): void {
    const c = this.config;
    if (!c.splitExternalLocalOriginErrors) {
      // Unsplit: local-origin failures are 5xx-class events; successes of the connection alone say nothing.
      if (r === "local-origin-connect-success") return;
      this.onHttpCode(m, r === "local-origin-timeout" ? 504 : 503, true);
      return;
    }
    m.local.total++;
    if (r === "local-origin-connect-success") {
      m.local.success++;
      m.consecutiveLocal = 0;
      return;
    }
    if (m.ejected) return;
    if (++m.consecutiveLocal === c.consecutiveLocalOriginFailure) {
      this.#detect(m, "consecutive_local_origin_failure", c.enforcingConsecutiveLocalOriginFailure);
    }
  }

  #detect(m: HostOutlierMonitor, type: EjectionType, enforcing: number): void {
    // A host removed by a host-set update may still report the requests it was finishing: it is not ejected.
    if (m.ejected || this.#monitors.get(m.host) !== m) return;
    this.#detected[type].inc();
    this.#eject(m, type, enforcing);
  }

  #eject(m: HostOutlierMonitor, type: EjectionType, enforcing: number): void {
    const c = this.config;
    const total = this.#monitors.size;
    const active = this.ejectedCount;
    const ejectedPercent = total === 0 ? 100 : 100 * (active + 1) / total;
    if (!(ejectedPercent <= c.maxEjectionPercent || (c.alwaysEjectOneHost && active === 0))) {
      this.#overflow.inc();
      return;
    }
    if (!(this.#random() * 100 < enforcing)) return;
    this.#total.inc();
    this.#enforcedTotal.inc();
    this.#enforced[type].inc();
    this.#active.inc();
    m.ejectTimeBackoff++;
    m.numEjections++;
    m.ejectedAt = this.#now();
    const jitter = c.maxEjectionTimeJitterMs > 0 ? Math.floor(this.#random() * c.maxEjectionTimeJitterMs) : 0;
    m.ejectionMs = Math.min(c.baseEjectionTimeMs * m.ejectTimeBackoff, c.maxEjectionTimeMs) + jitter;
    m.consecutive5xx = m.consecutiveGateway = m.consecutiveLocal = 0;
    m.host.setFlag(HealthFlag.FAILED_OUTLIER_CHECK, true);
    log.warn(
      `cluster "${this.clusterName}": host ${m.host.key} ejected (${type}) for ${m.ejectionMs} ms` +
        ` (ejection ${m.numEjections}, ${active + 1} of ${total} hosts ejected)`,
    );
    this.options.onEjectionChange?.(m.host, true);
  }

  /** Un-ejects a host now (a successful active health check). */
  uneject(host: HostImpl, why = "health check passed"): void {
    const m = this.#monitors.get(host);
    if (m === undefined || !m.ejected) return;
    m.ejectedAt = undefined;
    this.#active.dec();
    m.consecutive5xx = m.consecutiveGateway = m.consecutiveLocal = 0;
    host.setFlag(HealthFlag.FAILED_OUTLIER_CHECK, false);
    log.info(`cluster "${this.clusterName}": host ${host.key} un-ejected (${why})`);
    this.options.onEjectionChange?.(host, false);
  }

  /** One interval: un-eject hosts whose time is up, run success-rate and failure-percentage ejection. */
  tick(): void {
    const now = this.#now();
    const c = this.config;
    for (const m of this.#monitors.values()) {
      if (m.ejected) {
        if (now - m.ejectedAt! >= m.ejectionMs) this.uneject(m.host, "ejection time elapsed");
      } else if (m.ejectTimeBackoff > 0) {
        m.ejectTimeBackoff--;
      }
    }
    this.#successRate("external", c.enforcingSuccessRate, "success_rate");
    this.#failurePercentage("external", c.enforcingFailurePercentage, "failure_percentage");
    if (c.splitExternalLocalOriginErrors) {
      this.#successRate("local", c.enforcingLocalOriginSuccessRate, "local_origin_success_rate");
      this.#failurePercentage("local", c.enforcingFailurePercentageLocalOrigin, "local_origin_failure_percentage");
    }
    for (const m of this.#monitors.values()) {
      m.external.reset();
      m.local.reset();
    }
  }

  #successRate(which: "external" | "local", enforcing: number, type: EjectionType): void {
    const c = this.config;
    const rates: [HostOutlierMonitor, number][] = [];
    for (const m of this.#monitors.values()) {
      const b = m[which];
      if (!m.ejected && b.total >= c.successRateRequestVolume && b.total > 0) {
        rates.push([m, 100 * b.success / b.total]);
      }
    }
    if (rates.length === 0 || rates.length < c.successRateMinimumHosts) return;
    const mean = rates.reduce((s, [, r]) => s + r, 0) / rates.length;
    const variance = rates.reduce((s, [, r]) => s + (r - mean) ** 2, 0) / rates.length;
    const threshold = mean - Math.sqrt(variance) * (c.successRateStdevFactor / 1000);
    for (const [m, r] of rates) if (r < threshold) this.#detect(m, type, enforcing);
  }

  #failurePercentage(which: "external" | "local", enforcing: number, type: EjectionType): void {
    const c = this.config;
    const rows: [HostOutlierMonitor, number][] = [];
    for (const m of this.#monitors.values()) {
      const b = m[which];
      if (!m.ejected && b.total >= c.failurePercentageRequestVolume && b.total > 0) {
        rows.push([m, 100 * (b.total - b.success) / b.total]);
      }
    }
    if (rows.length === 0 || rows.length < c.failurePercentageMinimumHosts) return;
    for (const [m, f] of rows) if (f >= c.failurePercentageThreshold) this.#detect(m, type, enforcing);
  }
}
