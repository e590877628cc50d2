/**
 * Config of `envoy.filters.network.http_connection_manager` (Envoy's `HttpConnectionManager`), parsed strictly.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { HttpFilterFactory } from "../api/stream_filter.ts";
import type { Http2Options } from "../api/codec.ts";
import { parseHttp2ProtocolOptions } from "../config/protocol_options.ts";
import { ObjReader } from "../config/reader.ts";
import type { Registries } from "../config/registry.ts";
import { parseAccessLogs } from "../observe/access_log.ts";
import type { AccessLogConfig } from "../observe/access_log.ts";
import { parseRouteConfiguration } from "../router/mod.ts";
import { cidrMatcher } from "../router/internal_request.ts";
import { getLogger } from "../observe/log.ts";
import { bootstrapTracing, parseTracingConfig, type TracingConfig } from "../tracing/config.ts";

const hcmLog = getLogger("config");
import type { RouteConfig } from "../router/mod.ts";

/** The `@type` of the connection manager's typed_config. */
export const HCM_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/** One configured HTTP filter: its factory and parsed config. */
export interface HttpFilterEntry {
  readonly name: string;
  readonly factory: HttpFilterFactory;
  readonly config: unknown;
}

/** Parsed HttpConnectionManager config. */
export interface HcmConfig {
  readonly statPrefix: string;
  readonly codecType: "AUTO" | "HTTP1" | "HTTP2";
  /** `http2_protocol_options` (absent fields: the codec's defaults). */
  readonly http2: Http2Options;
  readonly routeConfig: RouteConfig;
  readonly httpFilters: readonly HttpFilterEntry[];
  readonly accessLogs: readonly AccessLogConfig[];
  /** ms; 0 disables. Default 5 min. */
  readonly streamIdleTimeoutMs: number;
  /** ms; 0 disables (default). */
  readonly requestTimeoutMs: number;
  /** ms; 0 disables (default). */
  readonly requestHeadersTimeoutMs: number;
  /** Downstream connection idle timeout, ms; 0 disables. Default 1 h. */
  readonly idleTimeoutMs: number;
  /** Drain timeout for graceful shutdown notices (ms). */
  readonly drainTimeoutMs: number;
  readonly maxRequestHeadersKb: number;
  readonly maxHeadersCount: number;
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  /** `internal_address_config.cidr_ranges` as a matcher; undefined: no address is internal (Envoy ≥ 1.36). */
  readonly isInternalAddress: ((address: string) => boolean) | undefined;
  readonly skipXffAppend: boolean;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly alwaysSetRequestIdInResponse: boolean;
  readonly serverName: string;
  readonly serverHeaderTransformation: "OVERWRITE" | "APPEND_IF_ABSENT" | "PASS_THROUGH";
  /** Upgrade types enabled (lower-cased), e.g. "websocket", "connect". */
  readonly upgrades: ReadonlySet<string>;
  readonly acceptHttp10: boolean;
  readonly defaultHostForHttp10: string | undefined;
  readonly via: string | undefined;
  /** `tracing` (with the bootstrap's provider when it names none); undefined: no tracing. */
  readonly tracing: TracingConfig | undefined;
}

/** Parses the typed_config (without `@type`) of an HttpConnectionManager. */
export function parseHcmConfig(raw: Record<string, unknown>, path: string, registries: Registries): HcmConfig {
  const o = new ObjReader(raw, path).envoyMessage(
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
  o.skip("@type");
  const statPrefix = o.str("stat_prefix", { required: true });
  const codecType = o.enumOf("codec_type", ["AUTO", "HTTP1", "HTTP2"] as const, { known: ["HTTP3"] }) ?? "AUTO";
  // Alternatives to the required route_config: named before its absence is.
  if (o.has("rds")) {
    o.unsupported("rds", "is not supported here (only in listeners delivered by LDS; use an inline route_config)");
  }
  o.unsupported("scoped_routes");
  const rc = o.value("route_config", { required: true });
  const routeConfig = parseRouteConfiguration(rc, o.at("route_config"));

  const httpFilters = o.objs("http_filters", (f, i) => {
    f.envoyMessage("envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter");
    const name = f.str("name", { required: true });
    const tc = f.obj("typed_config");
    const typeUrl = tc?.str("@type");
    const fpath = `${o.at("http_filters")}[${i}]`;
    const optional = f.bool("is_optional") ?? false;
    let factory;
    try {
      factory = registries.http.resolve(name, typeUrl, fpath);
    } catch (e) {
      // Envoy's rule: an unknown filter rejects the config unless it is marked optional.
      if (!optional || !(e instanceof ConfigError)) throw e;
      hcmLog.warn(`${fpath}: HTTP filter ${JSON.stringify(name)} is not supported; skipped (is_optional)`);
      f.skip("typed_config", "disabled", "config_discovery");
      f.done();
      return undefined;
    }
    if (f.bool("disabled")) throw new ConfigError(`${fpath}.disabled`, "is not supported");
    f.unsupported("config_discovery");
    const config = factory.parseConfig(
      tc ? (tc.raw as Record<string, unknown>) : {},
      tc ? tc.path : `${fpath}.typed_config`,
    );
    return { name, factory, config } satisfies HttpFilterEntry;
  }, { nonEmpty: true }).filter((f): f is HttpFilterEntry => f !== undefined);
  httpFilters.forEach((f, i) => {
    const last = i === httpFilters.length - 1;
    if (f.factory.terminal && !last) {
      throw new ConfigError(
        `${o.at("http_filters")}[${i}]`,
        `terminal filter "${f.name}" must be the last in the chain`,
      );
    }
    if (last && !f.factory.terminal) {
      throw new ConfigError(
        `${o.at("http_filters")}[${i}]`,
        `the last HTTP filter must be a terminal filter such as envoy.filters.http.router, not "${f.name}"`,
      );
    }
  });

  const accessLogs = parseAccessLogs(o.value("access_log"), o.at("access_log"));
  const streamIdleTimeoutMs = o.durationMs("stream_idle_timeout") ?? 300_000;
  const requestTimeoutMs = o.durationMs("request_timeout") ?? 0;
  const requestHeadersTimeoutMs = o.durationMs("request_headers_timeout") ?? 0;
  const drainTimeoutMs = o.durationMs("drain_timeout") ?? 5000;
  const maxRequestHeadersKb = o.int("max_request_headers_kb", { min: 1, max: 8192 }) ?? 60;
  let idleTimeoutMs = 3_600_000;
  let maxHeadersCount = 100;
  const cpo = o.obj("common_http_protocol_options")?.envoyMessage("envoy.config.core.v3.HttpProtocolOptions");
  if (cpo) {
    idleTimeoutMs = cpo.durationMs("idle_timeout") ?? idleTimeoutMs;
    maxHeadersCount = cpo.int("max_headers_count", { min: 1 }) ?? maxHeadersCount;
    cpo.enumOf("headers_with_underscores_action", ["ALLOW"] as const, { known: ["REJECT_REQUEST", "DROP_HEADER"] });
    cpo.unsupported("max_requests_per_connection", "is not supported on downstream connections");
    cpo.done();
  }
  let acceptHttp10 = false;
  let defaultHostForHttp10: string | undefined;
  const hpo = o.obj("http_protocol_options")?.envoyMessage("envoy.config.core.v3.Http1ProtocolOptions");
  if (hpo) {
    acceptHttp10 = hpo.bool("accept_http_10") ?? false;
    defaultHostForHttp10 = hpo.str("default_host_for_http_10");
    hpo.bool("allow_absolute_url");
    hpo.unsupported("enable_trailers", "is not supported (trailers are always forwarded)");
    hpo.done();
  }
  const useRemoteAddress = o.bool("use_remote_address") ?? false;
  const xffNumTrustedHops = o.int("xff_num_trusted_hops", { min: 0 }) ?? 0;
  const skipXffAppend = o.bool("skip_xff_append") ?? false;
  const generateRequestId = o.bool("generate_request_id") ?? true;
  const preserveExternalRequestId = o.bool("preserve_external_request_id") ?? false;
  const alwaysSetRequestIdInResponse = o.bool("always_set_request_id_in_response") ?? false;
  const serverName = o.str("server_name") ?? "ferry";
  const serverHeaderTransformation = o.enumOf(
    "server_header_transformation",
    ["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"] as const,
  ) ?? "OVERWRITE";
  const upgrades = new Set<string>();
  o.objs("upgrade_configs", (u) => {
    u.envoyMessage("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig");
    const t = u.str("upgrade_type", { required: true }).toLowerCase();
    const enabled = u.bool("enabled") ?? true;
    u.unsupported("filters", "is not supported (upgrades use the connection manager's filters)");
    if (enabled) upgrades.add(t);
  });
  const via = o.str("via");
  o.skip("normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "strip_matching_host_port");
  if (o.raw["normalize_path"] === true || o.raw["normalizePath"] === true) {
    throw new ConfigError(o.at("normalize_path"), "is not supported yet");
  }
  const tr = o.obj("tracing");
  const tracing = tr ? parseTracingConfig(tr, bootstrapTracing(registries)) : undefined;
  const h2o = o.obj("http2_protocol_options");
  const http2 = h2o ? parseHttp2ProtocolOptions(h2o) : {};
  let isInternalAddress: ((address: string) => boolean) | undefined;
  const iac = o.obj("internal_address_config");
  if (iac !== undefined) {
    iac.bool("unix_sockets"); // Ferry listens on TCP only: there are no Unix-socket peers to call internal.
    const cidrs = iac.objs("cidr_ranges", (c) => {
      const prefix = c.str("address_prefix", { required: true });
      const len = c.int("prefix_len", { min: 0, max: 128 });
      const cidr = len === undefined ? prefix : `${prefix}/${len}`;
      try {
        cidrMatcher([cidr]);
      } catch (e) {
        throw new ConfigError(c.path, e instanceof Error ? e.message : String(e));
      }
      return cidr;
    });
    iac.done();
    isInternalAddress = cidrMatcher(cidrs);
  }
  o.durationMs("delayed_close_timeout");
  o.done();
  return {
    statPrefix,
    codecType,
    http2,
    routeConfig,
    httpFilters,
    accessLogs,
    streamIdleTimeoutMs,
    requestTimeoutMs,
    requestHeadersTimeoutMs,
    idleTimeoutMs,
    drainTimeoutMs,
    maxRequestHeadersKb,
    maxHeadersCount,
    useRemoteAddress,
    xffNumTrustedHops,
    isInternalAddress,
    skipXffAppend,
    generateRequestId,
    preserveExternalRequestId,
    alwaysSetRequestIdInResponse,
    serverName,
    serverHeaderTransformation,
    upgrades,
    acceptHttp10,
    defaultHostForHttp10,
    via,
    tracing,
  };
}
