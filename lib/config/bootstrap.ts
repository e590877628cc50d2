/**
 * The bootstrap: Envoy's v3 `Bootstrap` message (the subset Ferry implements), parsed strictly.
 *
 * Loading is separate from parsing so the same parser serves files, `--config-yaml` and the embedded default.
 * Every error is one {@link ConfigError} line naming the field path.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import {
  checkConfigSourceClusters,
  type DynamicResourcesConfig,
  parseConfigSource,
  parseDynamicResources,
} from "./config_source.ts";
import { ConfigError } from "../api/errors.ts";
import { parseIgnoredExtensions, registerIgnoredExtensions } from "./ignored_extensions.ts";
import type { NetworkFilterFactory } from "../api/network.ts";
import { parseClusters } from "../upstream/config.ts";
import { type FilterChainMatch, matchKey, parseFilterChainMatch } from "../server/filter_chain_match.ts";
import type { ListenerFilterFactory } from "../server/listener_filter.ts";
import { parseServerTransportSocket, type ServerTransportSocket } from "../tls/transport_socket.ts";
import { loadStaticSecrets, resolveSecretRefs } from "./secrets.ts";
import { SecretManager } from "../tls/secret_manager.ts";
import type { ClusterConfig } from "../upstream/config.ts";
import { describe, ObjReader } from "./reader.ts";
import { parseLayeredRuntime, type RuntimeLayerConfig } from "../runtime/runtime.ts";
import type { Registries } from "./registry.ts";
import { nodeZone, parseBootstrapTracing, setBootstrapTracing } from "../tracing/config.ts";
import { type OverloadManagerConfig, parseOverloadManager } from "../server/overload.ts";

/** A socket address. */
export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

/** One network filter of a chain, with its parsed config. */
export interface NetworkFilterEntry {
  readonly name: string;
  readonly factory: NetworkFilterFactory;
  readonly config: unknown;
}

/** A filter chain: its match rules, TLS, and network filters (the last one terminal). */
export interface FilterChainConfig {
  readonly name: string;
  readonly filters: readonly NetworkFilterEntry[];
  /** `filter_chain_match` (empty for the default chain). */
  readonly match: FilterChainMatch;
  /** The chain's TLS (undefined: plain TCP). */
  readonly transportSocket: ServerTransportSocket | undefined;
  /** `gm`, `native` or undefined, for matching. */
  readonly providerKind: "gm" | "native" | undefined;
  /** `transport_socket_connect_timeout` (TLS handshake deadline), default 10 s. */
  readonly handshakeTimeoutMs: number;
  /** True for `default_filter_chain`. */
  readonly isDefault: boolean;
}

/** One listener filter with its parsed config. */
export interface ListenerFilterEntry {
  readonly name: string;
  readonly factory: ListenerFilterFactory;
  readonly config: unknown;
}

/** A validated listener. */
export interface ListenerConfig {
  readonly name: string;
  readonly address: SocketAddress;
  /** The chains, the `default_filter_chain` (if any) last. */
  readonly filterChains: readonly FilterChainConfig[];
  /** `listener_filters` (a `tls_inspector` is added when chains match on TLS facts or mix providers). */
  readonly listenerFilters: readonly ListenerFilterEntry[];
  /** `listener_filters_timeout`, default 15 s. */
  readonly listenerFiltersTimeoutMs: number;
  readonly continueOnListenerFiltersTimeout: boolean;
  readonly perConnectionBufferLimitBytes: number;
  readonly reusePort: boolean;
  /** `listener.<stat name>.` — Envoy uses the address with `:` replaced by `_` unless `stat_prefix` is set. */
  readonly statPrefix: string;
  /** Raw config as given, for `/config_dump`. */
  readonly raw: unknown;
  readonly path: string;
  /** `bypass_overload_manager`: no overload action or connection limit applies (lib/server/overload.ts). */
  readonly bypassOverloadManager?: boolean;
  /** `ignore_global_conn_limit`: connections do not count against the overload manager's connection limit. */
  readonly ignoreGlobalConnLimit?: boolean;
  /** `traffic_direction`: `OUTBOUND` makes connection managers trace egress spans (Envoy's rule). */
  readonly trafficDirection?: "UNSPECIFIED" | "INBOUND" | "OUTBOUND";
}

/** Admin interface settings. */
export interface AdminConfig {
  readonly address: SocketAddress;
  readonly raw: unknown;
}

/** The validated bootstrap. */
export interface BootstrapConfig {
  readonly node: { readonly id: string; readonly cluster: string };
  readonly admin: AdminConfig | undefined;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  /** Raw documents for `/config_dump`. */
  readonly raw: Record<string, unknown>;
  /** Warnings for fields accepted but ignored. */
  readonly warnings: readonly string[];
  /**
   * The secret provider: `static_resources.secrets` at version 1; TLS contexts that name a secret follow its
   * updates (`Server.updateSecret`).
   */
  readonly secrets: SecretManager;
  /** `dynamic_resources`: where LDS and CDS come from (and the ADS server), if anything is dynamic. */
  readonly dynamicResources?: DynamicResourcesConfig;
  /** Raw `node` as written (metadata, locality...), sent to xDS servers. */
  readonly rawNode?: unknown;
  /** `layered_runtime.layers`, if set (the server configures its runtime with them). */
  readonly runtime?: readonly RuntimeLayerConfig[];
  /** `overload_manager`, if set (lib/server/overload.ts). */
  readonly overloadManager?: OverloadManagerConfig;
}

/** Parses a YAML or JSON document (JSON is YAML). Throws ConfigError with the parser's position. */
export function parseConfigText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { strict: true, uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ConfigError("", `${source}: not valid YAML or JSON: ${msg}`);
  }
}

/** Reads a `socket_address` holder (`{socket_address: {address, port_value}}`). */
export function parseAddress(raw: unknown, path: string): SocketAddress {
  const o = new ObjReader(raw, path);
  o.unsupported("pipe", "is not supported (use socket_address)");
  o.unsupported("envoy_internal_address");
  const sa = o.obj("socket_address", { required: true })!;
  const address = sa.str("address", { required: true });
  sa.enumOf("protocol", ["TCP"] as const, { known: ["UDP"] });
  if (sa.has("named_port")) sa.unsupported("named_port", "is not supported (use port_value)");
  const port = sa.int("port_value", { min: 0, max: 65535 });
  if (port === undefined) throw new ConfigError(sa.at("port_value"), "is required");
  sa.bool("ipv4_compat");
  sa.unsupported("resolver_name");
  sa.done();
  o.done();
  return { address, port };
}

function parseFilterChain(o: ObjReader, index: number, registries: Registries, isDefault: boolean): FilterChainConfig {
  o.envoyMessage("envoy.config.listener.v3.FilterChain");
  const name = o.str("name") ?? `chain_${index}`;
  const m = o.obj("filter_chain_match");
  if (isDefault && m) throw new ConfigError(m.path, "is not allowed on the default_filter_chain");
  const match = parseFilterChainMatch(m);
  const tsRaw = o.value("transport_socket");
  const transportSocket = tsRaw === undefined ? undefined : parseServerTransportSocket(tsRaw, o.at("transport_socket"));
  const handshakeTimeoutMs = o.durationMs("transport_socket_connect_timeout") ?? 10_000;
  o.skip("metadata");
  const filters = o.objs("filters", (f, i) => {
    const fname = f.str("name", { required: true });
    const tc = f.obj("typed_config");
    const fpath = `${o.at("filters")}[${i}]`;
    f.unsupported("config_discovery");
    const factory = registries.network.resolve(fname, tc?.str("@type"), fpath);
    const config = factory.parseConfig(
      tc ? (tc.raw as Record<string, unknown>) : {},
      tc ? tc.path : `${fpath}.typed_config`,
      registries,
    );
    return { name: fname, factory, config };
  }, { nonEmpty: true });
  filters.forEach((f, i) => {
    const last = i === filters.length - 1;
    if (f.factory.terminal && !last) {
      throw new ConfigError(`${o.at("filters")}[${i}]`, `terminal filter "${f.name}" must be the last in the chain`);
    }
    if (last && !f.factory.terminal) {
      throw new ConfigError(
        `${o.at("filters")}[${i}]`,
        `the last network filter must be terminal (http_connection_manager or tcp_proxy), not "${f.name}"`,
      );
    }
  });
  return {
    name,
    filters,
    match,
    transportSocket,
    providerKind: transportSocket?.kind,
    handshakeTimeoutMs: handshakeTimeoutMs > 0 ? handshakeTimeoutMs : 10_000,
    isDefault,
  };
}

const TLS_INSPECTOR = "envoy.filters.listener.tls_inspector";

function parseListenerFilters(o: ObjReader, registries: Registries): ListenerFilterEntry[] {
  return o.objs("listener_filters", (f, i) => {
    const fname = f.str("name", { required: true });
    const tc = f.obj("typed_config");
    const fpath = `${o.at("listener_filters")}[${i}]`;
    f.unsupported("config_discovery");
    f.unsupported("filter_disabled");
    const reg = registries.listener;
    if (!reg) throw new ConfigError(fpath, "listener filters are not available in this build");
    const factory = reg.resolve(fname, tc?.str("@type"), fpath);
    const config = factory.parseConfig(
      tc ? (tc.raw as Record<string, unknown>) : {},
      tc ? tc.path : `${fpath}.typed_config`,
    );
    return { name: fname, factory, config };
  });
}

/** Parses one Envoy v3 `Listener`. */
export function parseListener(raw: unknown, path: string, registries: Registries): ListenerConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.listener.v3.Listener");
  const address = parseAddress(o.value("address", { required: true }), o.at("address"));
  const name = o.str("name") ?? `${address.address}:${address.port}`;
  // Alternatives to filter_chains: named before the missing chains are.
  o.unsupported("api_listener");
  o.unsupported("filter_chain_matcher");
  const chains = o.objs("filter_chains", (c, i) => parseFilterChain(c, i, registries, false));
  const seenMatch = new Map<string, number>();
  chains.forEach((c, i) => {
    const k = `${matchKey(c.match)}|${c.providerKind ?? "raw"}`;
    const prev = seenMatch.get(k);
    if (prev !== undefined) {
      throw new ConfigError(
        `${o.at("filter_chains")}[${i}].filter_chain_match`,
        `has the same rules as filter_chains[${prev}] (chains with equal rules must differ in their TLS provider)`,
      );
    }
    seenMatch.set(k, i);
  });
  const dfc = o.obj("default_filter_chain");
  if (dfc) {
    chains.push(parseFilterChain(dfc, chains.length, registries, true));
    dfc.done();
  }
  if (chains.length === 0) throw new ConfigError(o.at("filter_chains"), "must have at least one entry");
  const listenerFilters = parseListenerFilters(o, registries);
  // Envoy needs an explicit tls_inspector; Ferry adds one when chains cannot be told apart without it.
  const needsInspector =
    chains.some((c) =>
      c.match.serverNames.length > 0 || c.match.applicationProtocols.length > 0 || c.match.transportProtocol === "tls"
    ) || new Set(chains.map((c) => c.providerKind)).size > 1;
  const inspector = registries.listener?.byName(TLS_INSPECTOR);
  if (needsInspector && inspector && !listenerFilters.some((f) => f.name === TLS_INSPECTOR)) {
    listenerFilters.unshift({ name: TLS_INSPECTOR, factory: inspector, config: inspector.parseConfig({}, "") });
  }
  const listenerFiltersTimeoutMs = o.durationMs("listener_filters_timeout") ?? 15_000;
  const continueOnListenerFiltersTimeout = o.bool("continue_on_listener_filters_timeout") ?? false;
  const perConnectionBufferLimitBytes = o.int("per_connection_buffer_limit_bytes", { min: 1 }) ?? 1024 * 1024;
  const reusePort = o.bool("enable_reuse_port") ?? true;
  const statPrefix = o.str("stat_prefix") ?? `${address.address}_${address.port}`.replace(/:/g, "_");
  const trafficDirection = o.enumOf("traffic_direction", ["UNSPECIFIED", "INBOUND", "OUTBOUND"] as const);
  o.enumOf("drain_type", ["DEFAULT", "MODIFY_ONLY"] as const);
  o.skip("metadata");
  o.bool("use_original_dst") && o.unsupported("use_original_dst");
  o.int("tcp_backlog_size");
  o.bool("bind_to_port") === false && o.unsupported("bind_to_port", "false is not supported");
  const bypassOverloadManager = o.bool("bypass_overload_manager") ?? false;
  const ignoreGlobalConnLimit = o.bool("ignore_global_conn_limit") ?? false;
  o.done();
  return {
    name,
    address,
    filterChains: chains,
    listenerFilters,
    listenerFiltersTimeoutMs,
    continueOnListenerFiltersTimeout,
    perConnectionBufferLimitBytes,
    reusePort,
    statPrefix,
    raw,
    path,
    ...(bypassOverloadManager ? { bypassOverloadManager } : {}),
    ...(ignoreGlobalConnLimit ? { ignoreGlobalConnLimit } : {}),
    ...(trafficDirection !== undefined ? { trafficDirection } : {}),
  };
}

function parseNode(raw: unknown, path: string): { id: string; cluster: string } {
  if (raw === undefined) return { id: "ferry", cluster: "ferry" };
  const o = new ObjReader(raw, path);
  const id = o.str("id") ?? "ferry";
  const cluster = o.str("cluster") ?? "ferry";
  o.skip("metadata", "locality", "user_agent_name", "user_agent_version", "user_agent_build_version", "extensions");
  o.skip("client_features", "listening_addresses", "dynamic_parameters");
  o.done();
  return { id, cluster };
}

function parseAdmin(raw: unknown, path: string): AdminConfig | undefined {
  if (raw === undefined) return undefined;
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.bootstrap.v3.Admin");
  const addrRaw = o.value("address");
  const address = addrRaw === undefined ? { address: "127.0.0.1", port: 9901 } : parseAddress(addrRaw, o.at("address"));
  o.unsupported("access_log", "is not supported for the admin interface");
  o.str("access_log_path");
  o.str("profile_path");
  o.bool("ignore_global_conn_limit");
  o.done();
  return { address, raw };
}

/**
 * Rejects network filters that name a cluster the bootstrap does not define (a route table's `cluster` or
 * `weighted_clusters`, a tcp_proxy's cluster), as Envoy does when it loads static listeners: with static
 * resources only, such a name could never resolve.
 */
function checkClusterReferences(listeners: readonly ListenerConfig[], clusters: readonly ClusterConfig[]): void {
  const known = new Set(clusters.map((c) => c.name));
  for (const l of listeners) {
    for (const chain of l.filterChains) {
      for (const f of chain.filters) {
        for (const ref of f.factory.referencedClusters?.(f.config) ?? []) {
          if (!known.has(ref.name)) throw new ConfigError(ref.path, `unknown cluster ${describe(ref.name)}`);
        }
      }
    }
  }
}

/** Parses a bootstrap document into the validated config. */
export function parseBootstrap(raw: unknown, registries: Registries): BootstrapConfig {
  if (raw === null || raw === undefined) throw new ConfigError("", "the configuration is empty");
  const o = new ObjReader(raw, "").envoyMessage("envoy.config.bootstrap.v3.Bootstrap");
  const warnings: string[] = [];
  const node = parseNode(o.value("node"), "node");
  const admin = parseAdmin(o.value("admin"), "admin");
  // Before listeners: the ignored extensions resolve as no-op filters in them.
  const ignored = parseIgnoredExtensions(o.value("bootstrap_extensions"), "bootstrap_extensions");
  registerIgnoredExtensions(ignored, registries, "bootstrap_extensions");
  // Before listeners too: connection managers whose tracing names no provider use `tracing.http`.
  setBootstrapTracing(registries, {
    provider: o.has("tracing") ? parseBootstrapTracing(o.value("tracing"), "tracing") : undefined,
    nodeId: node.id,
    zone: nodeZone(o.raw["node"]),
    nodeCluster: node.cluster,
  });
  let listeners: ListenerConfig[] = [];
  let clusters: ClusterConfig[] = [];
  let secrets = new SecretManager();
  const sr = o.obj("static_resources");
  if (sr) {
    // Static secrets first: listeners and clusters are read with their secret references resolved through the
    // secret provider, to which their TLS contexts subscribe.
    secrets = loadStaticSecrets(sr, secrets);
    const resolved = new ObjReader({
      listeners: resolveSecretRefs(sr.value("listeners"), sr.at("listeners"), secrets),
      clusters: resolveSecretRefs(sr.value("clusters"), sr.at("clusters"), secrets),
    }, sr.path);
    const seen = new Map<string, number>();
    listeners = resolved.arr("listeners", (item, p, i) => {
      const l = parseListener(item, p, registries);
      const prev = seen.get(l.name);
      if (prev !== undefined) {
        throw new ConfigError(
          `${p}.name`,
          `listener ${describe(l.name)} is already defined at static_resources.listeners[${prev}]`,
        );
      }
      seen.set(l.name, i);
      return l;
    });
    clusters = parseClusters(resolved.value("clusters"), sr.at("clusters"));
    sr.done();
  }
  const byAddr = new Map<string, string>();
  for (const l of listeners) {
    const k = `${l.address.address}:${l.address.port}`;
    if (l.address.port !== 0 && byAddr.has(k)) {
      throw new ConfigError(
        "static_resources.listeners",
        `listeners "${byAddr.get(k)}" and "${l.name}" both bind ${k}`,
      );
    }
    byAddr.set(k, l.name);
  }
  checkClusterReferences(listeners, clusters);
  let dynamicResources: DynamicResourcesConfig | undefined;
  if (o.has("dynamic_resources")) {
    dynamicResources = parseDynamicResources(o.value("dynamic_resources"), "dynamic_resources");
    checkConfigSourceClusters(dynamicResources, new Set(clusters.map((c) => c.name)));
  }
  for (const c of clusters) {
    if (c.eds === undefined) continue;
    const p = `${c.path}.eds_cluster_config.eds_config`;
    if (dynamicResources === undefined) {
      throw new ConfigError(p, "needs dynamic_resources (an EDS cluster gets its endpoints over xDS or from a file)");
    }
    const cs = parseConfigSource(c.eds.configSource, p);
    if (cs.kind === "ads" && dynamicResources.ads === undefined) {
      throw new ConfigError(`${p}.ads`, "needs dynamic_resources.ads_config (no ADS server is configured)");
    }
  }
  const runtime = o.has("layered_runtime")
    ? parseLayeredRuntime(o.value("layered_runtime"), o.at("layered_runtime"))
    : undefined;
  const overloadManager = o.has("overload_manager")
    ? parseOverloadManager(o.value("overload_manager"), "overload_manager")
    : undefined;
  if (overloadManager) warnings.push(...overloadManager.warnings);
  o.skip("stats_flush_interval");
  o.done();
  return {
    node,
    admin,
    listeners,
    clusters,
    raw: o.raw,
    warnings,
    secrets,
    ...(dynamicResources ? { dynamicResources } : {}),
    ...(o.raw["node"] !== undefined ? { rawNode: o.raw["node"] } : {}),
    ...(runtime ? { runtime } : {}),
    ...(overloadManager ? { overloadManager } : {}),
  };
}
