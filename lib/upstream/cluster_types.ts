/**
 * Cluster types as registered factories ({@link ClusterTypeFactory}, Envoy's `ClusterFactory`): the discovery part
 * of a cluster — how its hosts are found. The cluster itself (`ClusterImpl`) owns the hosts, pools, balancer
 * and health state, and applies every host list a discovery hands it through one diffing routine, so that a host
 * that stays keeps its object, pools and health state whichever way the list arrived.
 *
 * Built in ({@link builtinClusterTypes}):
 * - `STATIC`: the hosts are the `load_assignment` endpoints (IP addresses); takes endpoint updates (CDS changes of
 *   `load_assignment`, EDS-style pushes through `ClusterManagerImpl.updateHosts`).
 * - `STRICT_DNS`: resolves every endpoint name every `dns_refresh_rate` (or the record TTL with `respect_dns_ttl`);
 *   every address becomes a host with the endpoint's weight. IP literals need no lookup.
 * - `LOGICAL_DNS`: one host, moved to the first address of each answer (new connections go to the new address,
 *   pooled connections stay).
 *
 * - `EDS`: like STATIC, but its hosts come from endpoint pushes (`ClusterManagerImpl.updateHosts`, fed by xDS); it
 *   starts with its inline `load_assignment`, usually none.
 *
 * A failed resolution is logged and counted (`update_failure`); the hosts of the previous answer stay.
 *
 * @module
 */
import type { Counter } from "../api/stats.ts";
import type { LocalityLbEndpoints } from "../api/upstream.ts";
import { Registry } from "../config/registry.ts";
import { ConfigError } from "../api/errors.ts";
import type { EndpointConfig, LocalityConfig } from "./config.ts";
import { type ClusterConfig, isIpAddress, MAX_PRIORITY } from "./config.ts";
import { errorText } from "./connect.ts";
import type { DnsResolver } from "./dns.ts";
import type { HostUpdate } from "./host.ts";

/**
 * One host a discovery wants in its cluster. Hosts are matched across updates by `id` (default `address:port`):
 * the same id keeps the same host object, updated in place.
 */
export interface HostSpec extends HostUpdate {
  /** Matching identity; LOGICAL_DNS gives its one host a fixed id so that a new address moves it in place. */
  readonly id?: string;
  readonly address: string;
  readonly port: number;
}

/** The cluster's `update_attempt`, `update_success` and `update_failure` counters. */
export interface DiscoveryStats {
  readonly attempt: Counter;
  readonly success: Counter;
  readonly failure: Counter;
}

/** What a discovery gets from its cluster. */
export interface HostDiscoveryContext {
  readonly clusterName: string;
  readonly resolver: DnsResolver;
  /** Warnings (DNS failures). */
  readonly log: (message: string) => void;
  readonly stats: DiscoveryStats;
  /**
   * Replaces the cluster's hosts (every priority) with `hosts` (the cluster diffs; unchanged hosts keep everything).
   * May be called from `create` for hosts known without a lookup.
   */
  setHosts(hosts: readonly HostSpec[]): void;
}

/** How one cluster finds its hosts (created once per cluster config). */
export interface HostDiscovery {
  /** The first discovery (DNS answers); resolves at once when nothing needs looking up. Never rejects. */
  initialize(): Promise<void>;
  /** Discovers again now (tests, admin); resolves when done. */
  refresh(): Promise<void>;
  /**
   * Present only on types that take endpoint lists from outside (STATIC, EDS): validates the whole list, then sets
   * the hosts. Throws, changing nothing, if the list is invalid.
   */
  updateEndpoints?(endpoints: readonly LocalityLbEndpoints[]): void;
  /** No more discovery: timers stop, answers still in flight are dropped. */
  stop(): void;
}

/**
 * A cluster type, registered by Envoy's `type` enum name (`STATIC`, ...). `create` is the config-time step: the
 * cluster calls it once per cluster config.
 */
export interface ClusterTypeFactory {
  readonly name: string;
  /** `cluster_type` typed-config URLs (none for the built-ins, which Envoy selects by `type`). */
  readonly configTypes: readonly string[];
  create(config: ClusterConfig, context: HostDiscoveryContext): HostDiscovery;
}

const NO_LOCALITY: LocalityConfig = { region: "", zone: "", subZone: "" };

/** The hosts of an endpoint list (STATIC, EDS): one per endpoint, with its group's priority and locality weight. */
function endpointSpecs(
  clusterName: string,
  endpoints: readonly LocalityLbEndpoints[],
  requireIp: boolean,
): HostSpec[] {
  const specs: HostSpec[] = [];
  endpoints.forEach((l, i) => {
    if (!Number.isInteger(l.priority) || l.priority < 0 || l.priority > MAX_PRIORITY) {
      throw new Error(`cluster "${clusterName}": endpoints[${i}]: priority ${l.priority} is not in 0..${MAX_PRIORITY}`);
    }
    l.endpoints.forEach((e, j) => {
      if (requireIp && !isIpAddress(e.address)) {
        throw new Error(
          `cluster "${clusterName}": endpoints[${i}].lb_endpoints[${j}]: ${
            JSON.stringify(e.address)
          } is not an IP address`,
        );
      }
      specs.push({
        address: e.address,
        port: e.port,
        hostname: e.hostname,
        weight: e.weight,
        healthStatus: e.healthStatus,
        locality: l.locality ?? NO_LOCALITY,
        metadata: e.metadata,
        priority: l.priority,
        localityWeight: l.weight,
      });
    });
  });
  return specs;
}

class StaticDiscovery implements HostDiscovery {
  readonly #ctx: HostDiscoveryContext;

  constructor(config: ClusterConfig, ctx: HostDiscoveryContext) {
    this.#ctx = ctx;
    ctx.setHosts(endpointSpecs(config.name, config.localities, false));
  }

  initialize(): Promise<void> {
    return Promise.resolve();
  }

  refresh(): Promise<void> {
    return Promise.resolve();
  }

  updateEndpoints(endpoints: readonly LocalityLbEndpoints[]): void {
    this.#ctx.setHosts(endpointSpecs(this.#ctx.clusterName, endpoints, true));
  }

  stop(): void {}
}

/** `EDS`: starts with its inline `load_assignment` (usually none); takes its hosts from endpoint pushes. */
export const edsClusterType: ClusterTypeFactory = {
  name: "EDS",
  configTypes: [],
  create(config, context) {
    return new StaticDiscovery(config, context);
  },
};

/** `STATIC`: see the module doc. */
export const staticClusterType: ClusterTypeFactory = {
  name: "STATIC",
  configTypes: [],
  create(config, context) {
    return new StaticDiscovery(config, context);
  },
};

/** One endpoint of a DNS cluster and the addresses of its last successful resolution. */
interface Target {
  readonly endpoint: EndpointConfig;
  readonly locality: LocalityConfig;
  readonly priority: number;
  readonly localityWeight: number | undefined;
  readonly literal: boolean;
  addresses: readonly string[];
}

/** The fixed host id of a LOGICAL_DNS cluster. */
const LOGICAL_HOST_ID = "logical";

class DnsDiscovery implements HostDiscovery {
  readonly #config: ClusterConfig;
  readonly #ctx: HostDiscoveryContext;
  readonly #logical: boolean;
  readonly #targets: Target[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(config: ClusterConfig, ctx: HostDiscoveryContext, logical: boolean) {
    this.#config = config;
    this.#ctx = ctx;
    this.#logical = logical;
    for (const l of config.localities) {
      for (const e of l.endpoints) {
        const literal = isIpAddress(e.address);
        this.#targets.push({
          endpoint: e,
          locality: l.locality ?? NO_LOCALITY,
          priority: l.priority,
          localityWeight: l.weight,
          literal,
          addresses: literal ? [e.address] : [],
        });
      }
    }
    if (this.#targets.some((t) => t.literal)) this.#publish();
  }

  initialize(): Promise<void> {
    if (this.#targets.every((t) => t.literal)) return Promise.resolve();
    return this.#resolveAll();
  }

  refresh(): Promise<void> {
    return this.#resolveAll();
  }

  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #publish(): void {
    const specs: HostSpec[] = [];
    for (const t of this.#targets) {
      const e = t.endpoint;
      const common = {
        port: e.port,
        hostname: e.hostname ?? (t.literal ? undefined : e.address),
        weight: e.weight,
        healthStatus: e.healthStatus,
        locality: t.locality,
        metadata: e.metadata,
        priority: t.priority,
        localityWeight: t.localityWeight,
      };
      if (this.#logical) {
        const first = t.addresses[0];
        if (first !== undefined) specs.push({ ...common, id: LOGICAL_HOST_ID, address: first });
      } else {
        for (const a of t.addresses) specs.push({ ...common, address: a });
      }
    }
    this.#ctx.setHosts(specs);
  }

  async #resolveAll(): Promise<void> {
    this.#clearTimer();
    const cfg = this.#config;
    const ctx = this.#ctx;
    let minTtl = Infinity;
    await Promise.all(
      this.#targets.filter((t) => !t.literal).map(async (t) => {
        const name = t.endpoint.address;
        ctx.stats.attempt.inc();
        try {
          const r = await ctx.resolver(name, cfg.dnsLookupFamily, { withTtl: cfg.respectDnsTtl });
          if (this.#stopped) return;
          ctx.stats.success.inc();
          if (r.ttlMs !== undefined && r.ttlMs > 0) minTtl = Math.min(minTtl, r.ttlMs);
          // LOGICAL_DNS keeps its host on an empty answer (from a resolver that does not reject).
          if (this.#logical && r.addresses.length === 0) return;
          t.addresses = r.addresses;
          this.#publish();
        } catch (e) {
          ctx.stats.failure.inc();
          ctx.log(`cluster "${ctx.clusterName}": DNS resolution of ${JSON.stringify(name)} failed: ${errorText(e)}`);
        }
      }),
    );
    if (this.#stopped) return;
    const next = cfg.respectDnsTtl && minTtl !== Infinity ? minTtl : cfg.dnsRefreshRateMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#resolveAll();
    }, next);
    Deno.unrefTimer(this.#timer);
  }
}

/** `STRICT_DNS`: see the module doc. */
export const strictDnsClusterType: ClusterTypeFactory = {
  name: "STRICT_DNS",
  configTypes: [],
  create(config, context) {
    return new DnsDiscovery(config, context, false);
  },
};

/** `LOGICAL_DNS`: see the module doc. */
export const logicalDnsClusterType: ClusterTypeFactory = {
  name: "LOGICAL_DNS",
  configTypes: [],
  create(config, context) {
    return new DnsDiscovery(config, context, true);
  },
};

/** Every built-in cluster type. */
export const builtinClusterTypes: readonly ClusterTypeFactory[] = [
  staticClusterType,
  strictDnsClusterType,
  logicalDnsClusterType,
  edsClusterType,
];

/** A registry of the built-in cluster types plus `extra`; throws if a name is registered twice. */
export function createClusterTypeRegistry(extra: readonly ClusterTypeFactory[] = []): Registry<ClusterTypeFactory> {
  return new Registry("cluster type", [...builtinClusterTypes, ...extra]);
}

/** The factory of `type` in `registry`, or a {@link ConfigError} at `path` naming the known types. */
export function lookupClusterType(
  registry: Registry<ClusterTypeFactory>,
  type: string,
  path: string,
): ClusterTypeFactory {
  const f = registry.byName(type);
  if (f !== undefined) return f;
  throw new ConfigError(path, `unknown cluster type ${JSON.stringify(type)} (known: ${registry.names.join(", ")})`);
}
