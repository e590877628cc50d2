/**
 * {@link HostImpl}: an upstream endpoint with its per-host counters (the `/clusters` admin output).
 *
 * `healthy` is an accessor: setting it tells the owning cluster, which bumps the host-set version so that load
 * balancers recompute their usable-host lists lazily, and updates `membership_healthy`.
 *
 * A host-set update that keeps a host (same `address:port`) changes its weight, metadata, locality, hostname and
 * configured health status in place ({@link HostImpl.update}); everything else about it (pools, connections,
 * health-check and outlier state, counters) stays.
 *
 * @module
 */
import type { ClusterInfo, EndpointHealthStatus, Host, HostMonitor, Locality } from "../api/upstream.ts";
import { deepEqual } from "./_deep_equal.ts";

/**
 * Health flags of a host (Envoy's `Host::HealthFlag`). Envoy's coarse health follows from them: a host is
 * unhealthy with any of `FAILED_ACTIVE_HC`, `FAILED_OUTLIER_CHECK`, `FAILED_EDS_HEALTH`, `EDS_STATUS_DRAINING` or
 * `EXCLUDED_VIA_IMMEDIATE_HC_FAIL`; otherwise degraded with `DEGRADED_EDS_HEALTH` or `DEGRADED_ACTIVE_HC`; otherwise
 * healthy. A host with `PENDING_ACTIVE_HC`, `EXCLUDED_VIA_IMMEDIATE_HC_FAIL` or `EDS_STATUS_DRAINING` is also
 * excluded: it counts in neither side of the priority health and panic ratios.
 */
export const HealthFlag = {
  FAILED_ACTIVE_HC: 1,
  FAILED_OUTLIER_CHECK: 2,
  FAILED_EDS_HEALTH: 4,
  PENDING_DYNAMIC_REMOVAL: 8,
  PENDING_ACTIVE_HC: 16,
  EXCLUDED_VIA_IMMEDIATE_HC_FAIL: 32,
  ACTIVE_HC_TIMEOUT: 64,
  DEGRADED_EDS_HEALTH: 128,
  DEGRADED_ACTIVE_HC: 256,
  EDS_STATUS_DRAINING: 512,
} as const;

/** One of {@link HealthFlag}. */
export type HealthFlagBit = typeof HealthFlag[keyof typeof HealthFlag];

const UNHEALTHY_MASK = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.FAILED_OUTLIER_CHECK | HealthFlag.FAILED_EDS_HEALTH |
  HealthFlag.EDS_STATUS_DRAINING | HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL;
const DEGRADED_MASK = HealthFlag.DEGRADED_EDS_HEALTH | HealthFlag.DEGRADED_ACTIVE_HC;
const EXCLUDED_MASK = HealthFlag.PENDING_ACTIVE_HC | HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL |
  HealthFlag.EDS_STATUS_DRAINING;
/** The flags an EDS `health_status` sets; an update replaces exactly these. */
const EDS_MASK = HealthFlag.FAILED_EDS_HEALTH | HealthFlag.DEGRADED_EDS_HEALTH | HealthFlag.EDS_STATUS_DRAINING;

/** Envoy's admin names of the flags, in Envoy's order. */
const FLAG_NAMES: readonly [number, string][] = [
  [HealthFlag.FAILED_ACTIVE_HC, "/failed_active_hc"],
  [HealthFlag.FAILED_OUTLIER_CHECK, "/failed_outlier_check"],
  [HealthFlag.FAILED_EDS_HEALTH, "/failed_eds_health"],
  [HealthFlag.DEGRADED_ACTIVE_HC, "/degraded_active_hc"],
  [HealthFlag.DEGRADED_EDS_HEALTH, "/degraded_eds_health"],
  [HealthFlag.PENDING_DYNAMIC_REMOVAL, "/pending_dynamic_removal"],
  [HealthFlag.PENDING_ACTIVE_HC, "/pending_active_hc"],
  [HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, "/excluded_via_immediate_hc_fail"],
  [HealthFlag.ACTIVE_HC_TIMEOUT, "/active_hc_timeout"],
  [HealthFlag.EDS_STATUS_DRAINING, "/eds_status_draining"],
];

/** Envoy's coarse health of a host. */
export type CoarseHealth = "healthy" | "degraded" | "unhealthy";

/** Per-host counters, as Envoy's `/clusters` prints them. */
export interface HostCounters {
  cxTotal: number;
  cxActive: number;
  cxConnectFail: number;
  rqTotal: number;
  rqError: number;
  rqSuccess: number;
  rqTimeout: number;
}

/** Formats `address:port`, with brackets for IPv6. */
export function hostKey(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** What a host-set update says about a host that stays (see {@link HostImpl.update}). */
export interface HostUpdate {
  readonly weight: number;
  readonly hostname: string | undefined;
  readonly healthStatus: EndpointHealthStatus;
  readonly locality: Locality;
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  /** `LocalityLbEndpoints.priority` (0 for hosts that are not from an endpoint list). */
  readonly priority?: number | undefined;
  /** `LocalityLbEndpoints.load_balancing_weight` of the host's locality, if set. */
  readonly localityWeight?: number | undefined;
}

/**
 * The flags of an EDS `health_status`, as Envoy sets them: UNHEALTHY and TIMEOUT fail the host, DRAINING fails and
 * excludes it, DEGRADED makes it degraded (used only when there are not enough healthy hosts).
 */
function edsFlags(status: EndpointHealthStatus): number {
  switch (status) {
    case "UNHEALTHY":
    case "TIMEOUT":
      return HealthFlag.FAILED_EDS_HEALTH;
    case "DRAINING":
      return HealthFlag.EDS_STATUS_DRAINING;
    case "DEGRADED":
      return HealthFlag.DEGRADED_EDS_HEALTH;
    default:
      return 0;
  }
}

/** The balancer's key of a locality (equal localities, equal keys; "" for no locality). */
export function localityKey(l: Locality): string {
  return l.region === "" && l.zone === "" && l.subZone === "" ? "" : JSON.stringify([l.region, l.zone, l.subZone]);
}

/** Options of a {@link HostImpl}. */
export interface HostOptions {
  hostname?: string | undefined;
  weight?: number;
  healthStatus?: EndpointHealthStatus;
  locality?: Locality;
  /** `metadata` of the endpoint. */
  metadata?: Readonly<Record<string, unknown>> | undefined;
  /** `LocalityLbEndpoints.priority` (default 0). */
  priority?: number | undefined;
  /** The locality's `load_balancing_weight`, if set. */
  localityWeight?: number | undefined;
  /** Called when the host's coarse health or exclusion changes. */
  onHealthChange?: (host: HostImpl) => void;
  /** Health flags to start with (e.g. `FAILED_ACTIVE_HC | PENDING_ACTIVE_HC` with active health checking). */
  initialFlags?: number;
  /** Start of the slow-start window (`performance.now()`), for hosts added after the cluster started. */
  slowStartSinceMs?: number | undefined;
}

/**
 * One upstream host. For LOGICAL_DNS the address changes in place (`setAddress`): new connections go to the new
 * address while pooled ones are kept, as Envoy's logical host does.
 */
export class HostImpl implements Host {
  readonly port: number;
  readonly cluster: ClusterInfo;
  /** Requests in flight; maintained by the connection pool (see `Http1ConnPool`). */
  activeRequests = 0;
  /** Per-host counters. */
  readonly counters: HostCounters = {
    cxTotal: 0,
    cxActive: 0,
    cxConnectFail: 0,
    rqTotal: 0,
    rqError: 0,
    rqSuccess: 0,
    rqTimeout: 0,
  };
  /** Outlier detection / health-check signals from the router (set by the cluster). */
  monitor: HostMonitor | undefined;
  /** Start of the host's slow-start window (see `SlowStartHost`). */
  slowStartSinceMs: number | undefined;
  #address: string;
  #key: string;
  #flags: number;
  #onHealthChange: ((host: HostImpl) => void) | undefined;
  #hostname: string | undefined;
  #weight: number;
  #healthStatus: EndpointHealthStatus;
  #locality: Locality;
  #metadata: Readonly<Record<string, unknown>> | undefined;
  #priority: number;
  #localityWeight: number | undefined;
  #localityKey: string;

  constructor(cluster: ClusterInfo, address: string, port: number, options: HostOptions = {}) {
    this.cluster = cluster;
    this.#address = address;
    this.port = port;
    this.#key = hostKey(address, port);
    this.#hostname = options.hostname;
    this.#weight = options.weight ?? 1;
    this.#healthStatus = options.healthStatus ?? "UNKNOWN";
    this.#locality = options.locality ?? { region: "", zone: "", subZone: "" };
    this.#metadata = options.metadata;
    this.#priority = options.priority ?? 0;
    this.#localityWeight = options.localityWeight;
    this.#localityKey = localityKey(this.#locality);
    this.#flags = (options.initialFlags ?? 0) | edsFlags(this.#healthStatus);
    this.slowStartSinceMs = options.slowStartSinceMs;
    this.#onHealthChange = options.onHealthChange;
  }

  get address(): string {
    return this.#address;
  }

  /** The configured name for DNS clusters, or `endpoint.hostname`. */
  get hostname(): string | undefined {
    return this.#hostname;
  }

  /** `load_balancing_weight`. */
  get weight(): number {
    return this.#weight;
  }

  /** The health status written in config / EDS. */
  get healthStatus(): EndpointHealthStatus {
    return this.#healthStatus;
  }

  /** The locality of the endpoint's group (`load_assignment.endpoints[].locality`). */
  get locality(): Locality {
    return this.#locality;
  }

  /** `LocalityLbEndpoints.priority` of the host's group (0 = highest). */
  get priority(): number {
    return this.#priority;
  }

  /** The `load_balancing_weight` of the host's locality, if set (used by locality-weighted balancing). */
  get localityWeight(): number | undefined {
    return this.#localityWeight;
  }

  /** The balancer's key of the host's locality (see {@link localityKey}). */
  get localityKey(): string {
    return this.#localityKey;
  }

  /** The endpoint's `metadata`, if any. */
  get metadata(): Readonly<Record<string, unknown>> | undefined {
    return this.#metadata;
  }

  /**
   * Applies what a host-set update says about this host (Envoy's in-place host update): weight, metadata,
   * locality and its weight, priority, hostname and the EDS health status (which replaces `FAILED_EDS_HEALTH`,
   * `DEGRADED_EDS_HEALTH` and `EDS_STATUS_DRAINING`; flags set by health checks or outlier detection stay).
   * Returns true if anything changed, so that the cluster rebuilds its balancers.
   */
  update(u: HostUpdate): boolean {
    let changed = false;
    if (u.weight !== this.#weight) {
      this.#weight = u.weight;
      changed = true;
    }
    if (u.hostname !== this.#hostname) {
      this.#hostname = u.hostname;
      changed = true;
    }
    if (u.locality !== this.#locality && !deepEqual(u.locality, this.#locality)) {
      this.#locality = u.locality;
      this.#localityKey = localityKey(u.locality);
      changed = true;
    }
    if (u.metadata !== this.#metadata && !deepEqual(u.metadata, this.#metadata)) {
      this.#metadata = u.metadata;
      changed = true;
    }
    const priority = u.priority ?? 0;
    if (priority !== this.#priority) {
      this.#priority = priority;
      changed = true;
    }
    if (u.localityWeight !== this.#localityWeight) {
      this.#localityWeight = u.localityWeight;
      changed = true;
    }
    if (u.healthStatus !== this.#healthStatus) {
      this.#healthStatus = u.healthStatus;
      this.#setFlags((this.#flags & ~EDS_MASK) | edsFlags(u.healthStatus));
      changed = true;
    }
    return changed;
  }

  get key(): string {
    return this.#key;
  }

  /** True if the host is healthy in Envoy's sense: no failure flag and not degraded. */
  get healthy(): boolean {
    return (this.#flags & (UNHEALTHY_MASK | DEGRADED_MASK)) === 0;
  }

  /** Setting `healthy` sets or clears `FAILED_ACTIVE_HC` (the flag an operator or test means). */
  set healthy(v: boolean) {
    this.setFlag(HealthFlag.FAILED_ACTIVE_HC, !v);
  }

  /** True if the host is degraded (used only when the healthy hosts are not enough): see {@link HealthFlag}. */
  get degraded(): boolean {
    return (this.#flags & UNHEALTHY_MASK) === 0 && (this.#flags & DEGRADED_MASK) !== 0;
  }

  /** True if the host is excluded from balancing and from the health ratios: see {@link HealthFlag}. */
  get excluded(): boolean {
    return (this.#flags & EXCLUDED_MASK) !== 0;
  }

  /** Envoy's coarse health: see {@link HealthFlag}. */
  get coarseHealth(): CoarseHealth {
    if ((this.#flags & UNHEALTHY_MASK) !== 0) return "unhealthy";
    return (this.#flags & DEGRADED_MASK) !== 0 ? "degraded" : "healthy";
  }

  /** The health flags (bits of {@link HealthFlag}). */
  get flags(): number {
    return this.#flags;
  }

  /** True if the flag is set. */
  hasFlag(flag: HealthFlagBit): boolean {
    return (this.#flags & flag) !== 0;
  }

  /** Sets or clears a flag; tells the cluster when the coarse health or the exclusion changes. */
  setFlag(flag: HealthFlagBit, on: boolean): void {
    this.#setFlags(on ? this.#flags | flag : this.#flags & ~flag);
  }

  #setFlags(next: number): void {
    const before = this.#flags;
    this.#flags = next;
    if (this.#onHealthChange === undefined) return;
    const health = (f: number) => (f & UNHEALTHY_MASK) !== 0 ? 2 : (f & DEGRADED_MASK) !== 0 ? 1 : 0;
    if (health(before) !== health(next) || ((before ^ next) & EXCLUDED_MASK) !== 0) this.#onHealthChange(this);
  }

  /** Envoy's `health_flags` text: `healthy`, or the set flags such as `/failed_active_hc/failed_outlier_check`. */
  get healthFlagsText(): string {
    if (this.#flags === 0) return "healthy";
    let s = "";
    for (const [bit, name] of FLAG_NAMES) if ((this.#flags & bit) !== 0) s += name;
    return s;
  }

  /** Changes the address (LOGICAL_DNS); existing connections are not touched. */
  setAddress(address: string): void {
    this.#address = address;
    this.#key = hostKey(address, this.port);
  }
}
