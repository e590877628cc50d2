/**
 * Envoy's `ConfigSource` and the bootstrap's `dynamic_resources`: where listeners, clusters, routes, endpoints and
 * secrets come from when they are not static — the aggregated stream (`ads: {}`), a stream of their own
 * (`api_config_source` with `GRPC` or `DELTA_GRPC`), or a watched file (`path_config_source`).
 *
 * Only what Ferry serves is accepted; the rest is an error naming the field (`REST` polling, `self`, xDS-TP
 * locators, the deprecated v2 transport).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { describe, ObjReader } from "./reader.ts";

/** A gRPC xDS server: the static cluster that reaches it, and the stream's options. */
export interface ApiConfigSource {
  /** `GRPC` is state-of-the-world, `DELTA_GRPC` incremental. */
  readonly apiType: "GRPC" | "DELTA_GRPC";
  /** `grpc_services[0].envoy_grpc.cluster_name`: a static cluster (its transport socket gives TLS). */
  readonly clusterName: string;
  /** `envoy_grpc.authority` (default: the cluster name, as Envoy). */
  readonly authority: string | undefined;
  /** Send `node` on the first request of a stream only. */
  readonly setNodeOnFirstMessageOnly: boolean;
  /** `grpc_services[0].initial_metadata`, sent with the stream. */
  readonly initialMetadata: readonly { key: string; value: string }[];
  /** Where it was configured (for messages). */
  readonly path: string;
}

/** Where one resource type comes from. */
export type ConfigSource =
  & { readonly initialFetchTimeoutMs: number; readonly path: string }
  & (
    | { readonly kind: "ads" }
    | { readonly kind: "api"; readonly api: ApiConfigSource }
    | { readonly kind: "file"; readonly file: string; readonly watchedDirectory: string | undefined }
  );

/** The bootstrap's `dynamic_resources`. */
export interface DynamicResourcesConfig {
  readonly ads: ApiConfigSource | undefined;
  readonly lds: ConfigSource | undefined;
  readonly cds: ConfigSource | undefined;
  readonly raw: unknown;
}

/** Envoy's default `initial_fetch_timeout`. */
export const DEFAULT_INITIAL_FETCH_TIMEOUT_MS = 15_000;

/** Parses an `ApiConfigSource` (gRPC only). */
export function parseApiConfigSource(o: ObjReader): ApiConfigSource {
  o.envoyMessage("envoy.config.core.v3.ApiConfigSource");
  const apiType = o.enumOf("api_type", ["GRPC", "DELTA_GRPC"] as const, {
    required: true,
    known: ["REST", "AGGREGATED_GRPC", "AGGREGATED_DELTA_GRPC", "DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE"],
  })!;
  const tv = o.enumOf("transport_api_version", ["V3"] as const, { known: ["AUTO", "V2"] });
  if (tv === undefined && o.has("transport_api_version")) o.value("transport_api_version");
  o.unsupported("cluster_names", "is not supported (it is for REST; name the cluster in grpc_services)");
  const services = o.objs("grpc_services", (g) => {
    g.envoyMessage("envoy.config.core.v3.GrpcService");
    g.unsupported("google_grpc", "is not supported (use envoy_grpc with a static cluster)");
    const eg = g.obj("envoy_grpc", { required: true })!.envoyMessage("envoy.config.core.v3.GrpcService.EnvoyGrpc");
    const clusterName = eg.str("cluster_name", { required: true });
    if (clusterName === "") throw new ConfigError(eg.at("cluster_name"), "must not be empty");
    const authority = eg.str("authority");
    eg.skip("retry_policy", "max_receive_message_length");
    eg.done();
    g.durationMs("timeout");
    const initialMetadata = g.objs("initial_metadata", (h) => {
      const key = h.str("key", { required: true }).toLowerCase();
      const value = h.str("value") ?? "";
      h.skip("raw_value");
      h.done();
      return { key, value };
    });
    g.skip("retry_policy");
    g.done();
    return { clusterName, authority, initialMetadata };
  }, { required: true, nonEmpty: true });
  if (services.length > 1) {
    throw new ConfigError(o.at("grpc_services"), "must have exactly one entry (as Envoy: only the first is used)");
  }
  const { clusterName, authority, initialMetadata } = services[0]!;
  o.durationMs("refresh_delay");
  o.durationMs("request_timeout");
  o.skip("rate_limit_settings");
  const setNodeOnFirstMessageOnly = o.bool("set_node_on_first_message_only") ?? false;
  o.unsupported("config_validators");
  o.done();
  return { apiType, clusterName, authority, setNodeOnFirstMessageOnly, initialMetadata, path: o.path };
}

/**
 * Parses a `ConfigSource`. `allowAds` is false where there is no ADS stream to point at (the ADS config itself).
 */
export function parseConfigSource(raw: unknown, path: string): ConfigSource {
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.core.v3.ConfigSource");
  o.unsupported("authorities", "is not supported (xDS-TP federation)");
  o.unsupported("self", "is not supported (name the ADS or API source explicitly)");
  const which = o.oneOf(["path", "path_config_source", "api_config_source", "ads"] as const, {
    required: true,
  })!;
  const initialFetchTimeoutMs = o.durationMs("initial_fetch_timeout") ?? DEFAULT_INITIAL_FETCH_TIMEOUT_MS;
  o.enumOf("resource_api_version", ["V3"] as const, { known: ["AUTO", "V2"] });
  const base = { initialFetchTimeoutMs, path };
  let out: ConfigSource;
  if (which === "ads") {
    const a = o.obj("ads")!;
    a.done();
    out = { ...base, kind: "ads" };
  } else if (which === "api_config_source") {
    out = { ...base, kind: "api", api: parseApiConfigSource(o.obj("api_config_source")!) };
  } else if (which === "path") {
    const file = o.str("path", { required: true });
    if (file === "") throw new ConfigError(o.at("path"), "must not be empty");
    out = { ...base, kind: "file", file, watchedDirectory: undefined };
  } else {
    const p = o.obj("path_config_source")!.envoyMessage("envoy.config.core.v3.PathConfigSource");
    const file = p.str("path", { required: true });
    if (file === "") throw new ConfigError(p.at("path"), "must not be empty");
    let watchedDirectory: string | undefined;
    const wd = p.obj("watched_directory");
    if (wd) {
      watchedDirectory = wd.str("path", { required: true });
      wd.done();
    }
    p.done();
    out = { ...base, kind: "file", file, watchedDirectory };
  }
  o.done();
  return out;
}

/** Parses the bootstrap's `dynamic_resources`. */
export function parseDynamicResources(raw: unknown, path: string): DynamicResourcesConfig {
  const o = new ObjReader(raw, path).envoyMessage("envoy.config.bootstrap.v3.Bootstrap.DynamicResources");
  o.unsupported("lds_resources_locator", "is not supported (xDS-TP: use lds_config)");
  o.unsupported("cds_resources_locator", "is not supported (xDS-TP: use cds_config)");
  const adsObj = o.obj("ads_config");
  const ads = adsObj ? parseApiConfigSource(adsObj) : undefined;
  const lds = o.has("lds_config") ? parseConfigSource(o.value("lds_config"), o.at("lds_config")) : undefined;
  const cds = o.has("cds_config") ? parseConfigSource(o.value("cds_config"), o.at("cds_config")) : undefined;
  o.done();
  for (const s of [lds, cds]) {
    if (s?.kind === "ads" && ads === undefined) {
      throw new ConfigError(`${s.path}.ads`, "needs dynamic_resources.ads_config (no ADS server is configured)");
    }
  }
  return { ads, lds, cds, raw };
}

/** Checks that every cluster a config source names is one of `staticClusters`. */
export function checkConfigSourceClusters(d: DynamicResourcesConfig, staticClusters: ReadonlySet<string>): void {
  const apis: ApiConfigSource[] = [];
  if (d.ads) apis.push(d.ads);
  for (const s of [d.lds, d.cds]) if (s?.kind === "api") apis.push(s.api);
  for (const a of apis) {
    if (!staticClusters.has(a.clusterName)) {
      throw new ConfigError(
        `${a.path}.grpc_services[0].envoy_grpc.cluster_name`,
        `unknown cluster ${describe(a.clusterName)} (an xDS server must be reached through a static cluster)`,
      );
    }
  }
}
