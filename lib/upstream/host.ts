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
 * Health flags of a host (Envoy's `Host::HealthFlag`); a host is healthy when none but `PENDING_ACTIVE_HC` and
 * `DEGRADED_EDS_HEALTH` is set.
 */
export const HealthFlag = {
  FAILED_ACTIVE_HC: 1,
  FAILED_OUTLIER_CHECK: 2,
  FAILED_EDS_HEALTH: 4,
  PENDING_DYNAMIC_REMOVAL: 8,
  PENDING_ACTIVE_HC: 16,
  EXCLUDED_VIA_IMMEDIATE_HC_FAIL: 32,
  ACTIVE_HC_TIMEOUT: 64,
} as const;
/** One of {@link HealthFlag}. */
export type HealthFlagBit = typeof HealthFlag[keyof typeof HealthFlag];

const UNHEALTHY_MASK = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.FAILED_OUTLIER_CHECK | HealthFlag.FAILED_EDS_HEALTH |
  HealthFlag.PENDING_DYNAMIC_REMOVAL | HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL;

const FLAG_NAMES: readonly [number, string][] = [
  [HealthFlag.FAILED_ACTIVE_HC, "/failed_active_hc"],
  [HealthFlag.FAILED_OUTLIER_CHECK, "/failed_outlier_check"],
  [HealthFlag.FAILED_EDS_HEALTH, "/failed_eds_health"],
  [HealthFlag.PENDING_DYNAMIC_REMOVAL, "/pending_dynamic_removal"],
  [HealthFlag.PENDING_ACTIVE_HC, "/pending_active_hc"],
  [HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, "/excluded_via_immediate_hc_fail"],
  [HealthFlag.ACTIVE_HC_TIMEOUT, "/active_hc_timeout"],
];

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
}

/** Envoy treats UNHEALTHY, DRAINING and TIMEOUT as unhealthy; DEGRADED is still used (no degraded tier yet). */
function edsFlags(status: EndpointHealthStatus): number {
  if (status === "UNHEALTHY" || status === "TIMEOUT") return HealthFlag.FAILED_EDS_HEALTH;
  if (status === "DRAINING") return HealthFlag.PENDING_DYNAMIC_REMOVAL;
  return 0;
}

/** Options of a {@link HostImpl}. */
export interface HostOptions {
  hostname?: string | undefined;
  weight?: number;
  healthStatus?: EndpointHealthStatus;
  locality?: Locality;
  /** `metadata` of the endpoint. */
  metadata?: Readonly<Record<string, unknown>> | undefined;
  /** Called when `healthy` changes. */
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

  /** The endpoint's `metadata`, if any. */
  get metadata(): Readonly<Record<string, unknown>> | undefined {
    return this.#metadata;
  }

  /**
   * Applies what a host-set update says about this host (Envoy's in-place host update): weight, metadata,
   * locality, hostname and the configured health status (which sets or clears `FAILED_EDS_HEALTH` /
   * `PENDING_DYNAMIC_REMOVAL`; flags set by health checks or outlier detection stay). Returns true if anything
   * changed, so that the cluster rebuilds its balancers.
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
    if (!deepEqual(u.locality, this.#locality)) {
      this.#locality = u.locality;
      changed = true;
    }
    if (!deepEqual(u.metadata, this.#metadata)) {
      this.#metadata = u.metadata;
      changed = true;
    }
    if (u.healthStatus !== this.#healthStatus) {
      this.#healthStatus = u.healthStatus;
      const want = edsFlags(u.healthStatus);
      const before = this.healthy;
      const mask = HealthFlag.FAILED_EDS_HEALTH | HealthFlag.PENDING_DYNAMIC_REMOVAL;
      this.#flags = (this.#flags & ~mask) | want;
      if (this.healthy !== before) this.#onHealthChange?.(this);
      changed = true;
    }
    return changed;
  }

  get key(): string {
    return this.#key;
  }

  get healthy(): boolean {
    return (this.#flags & UNHEALTHY_MASK) === 0;
  }

  /** Setting `healthy` sets or clears `FAILED_ACTIVE_HC` (the flag an operator or test means). */
  set healthy(v: boolean) {
    this.setFlag(HealthFlag.FAILED_ACTIVE_HC, !v);
  }

  /** The health flags (bits of {@link HealthFlag}). */
  get flags(): number {
    return this.#flags;
  }

  /** True if the flag is set. */
  hasFlag(flag: HealthFlagBit): boolean {
    return (this.#flags & flag) !== 0;
  }

  /** Sets or clears a flag; tells the cluster when `healthy` changes. */
  setFlag(flag: HealthFlagBit, on: boolean): void {
    const before = this.healthy;
    this.#flags = on ? this.#flags | flag : this.#flags & ~flag;
    if (this.healthy !== before) this.#onHealthChange?.(this);
  }

  /** Envoy's `health_flags` text: `healthy`, or the set flags such as `/failed_active_hc/failed_outlier_check`. */
  get healthFlagsText(): string {
    if (this.#flags === 0) return this.healthStatus === "DEGRADED" ? "/degraded_eds_health" : "healthy";
    let s = "";
    for (const [bit, name] of FLAG_NAMES) if ((this.#flags & bit) !== 0) s += name;
    if (this.healthStatus === "DEGRADED") s += "/degraded_eds_health";
    return s;
  }

  /** Changes the address (LOGICAL_DNS); existing connections are not touched. */
  setAddress(address: string): void {
    this.#address = address;
    this.#key = hostKey(address, this.port);
  }
}
