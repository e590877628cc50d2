/**
 * {@link HostImpl}: an upstream endpoint with its per-host counters (the `/clusters` admin output).
 *
 * `healthy` is an accessor: setting it tells the owning cluster, which bumps the host-set version so that load
 * balancers recompute their usable-host lists lazily, and updates `membership_healthy`.
 *
 * @module
 */
import type { ClusterInfo, Host } from "../api/upstream.ts";
import type { EndpointHealthStatus, LocalityConfig } from "./config.ts";

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

/** Options of a {@link HostImpl}. */
export interface HostOptions {
  hostname?: string | undefined;
  weight?: number;
  healthStatus?: EndpointHealthStatus;
  locality?: LocalityConfig;
  /** Called when `healthy` changes. */
  onHealthChange?: (host: HostImpl) => void;
}

/**
 * One upstream host. For LOGICAL_DNS the address changes in place (`setAddress`): new connections go to the new
 * address while pooled ones are kept, as Envoy's logical host does.
 */
export class HostImpl implements Host {
  readonly port: number;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly cluster: ClusterInfo;
  /** The health status written in config / EDS. */
  readonly healthStatus: EndpointHealthStatus;
  readonly locality: LocalityConfig;
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
  #address: string;
  #key: string;
  #healthy: boolean;
  #onHealthChange: ((host: HostImpl) => void) | undefined;

  constructor(cluster: ClusterInfo, address: string, port: number, options: HostOptions = {}) {
    this.cluster = cluster;
    this.#address = address;
    this.port = port;
    this.#key = hostKey(address, port);
    this.hostname = options.hostname;
    this.weight = options.weight ?? 1;
    this.healthStatus = options.healthStatus ?? "UNKNOWN";
    this.locality = options.locality ?? { region: "", zone: "", subZone: "" };
    // Envoy treats UNHEALTHY, DRAINING and TIMEOUT as unhealthy; DEGRADED is still used (no degraded tier yet).
    this.#healthy = !(this.healthStatus === "UNHEALTHY" || this.healthStatus === "DRAINING" ||
      this.healthStatus === "TIMEOUT");
    this.#onHealthChange = options.onHealthChange;
  }

  get address(): string {
    return this.#address;
  }

  get key(): string {
    return this.#key;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  set healthy(v: boolean) {
    if (v === this.#healthy) return;
    this.#healthy = v;
    this.#onHealthChange?.(this);
  }

  /** Changes the address (LOGICAL_DNS); existing connections are not touched. */
  setAddress(address: string): void {
    this.#address = address;
    this.#key = hostKey(address, this.port);
  }
}
