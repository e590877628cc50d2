/**
 * Tracing config as Envoy users write it: the connection manager's `tracing` (`HttpConnectionManager.Tracing`)
 * and its `provider` (`envoy.config.trace.v3.Tracing.Http`), or the bootstrap's deprecated `tracing.http`, which
 * serves every connection manager whose `tracing` names no provider.
 *
 * Providers: `envoy.tracers.opentelemetry` (`OpenTelemetryConfig`: OTLP over gRPC through `grpc_service.envoy_grpc`,
 * or OTLP/HTTP protobuf through `http_service`).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { ObjReader } from "../config/reader.ts";
import { getLogger } from "../observe/log.ts";
import type { SamplingRates } from "./sampler.ts";

const log = getLogger("config");

/** The typed_config `@type` of the OpenTelemetry tracer. */
export const OPENTELEMETRY_CONFIG_TYPE = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig";

/** One `custom_tags` entry. */
export type CustomTag =
  | { readonly tag: string; readonly kind: "literal"; readonly value: string }
  | { readonly tag: string; readonly kind: "request_header"; readonly name: string; readonly defaultValue: string };

/** Where OTLP goes. */
export type OtlpTransport =
  | {
    readonly kind: "grpc";
    /** `grpc_service.envoy_grpc.cluster_name`. */
    readonly cluster: string;
    readonly authority: string | undefined;
    readonly timeoutMs: number;
    readonly metadata: readonly { key: string; value: string }[];
    /** Field path of the cluster name (for an unknown cluster). */
    readonly clusterPath: string;
  }
  | {
    readonly kind: "http";
    readonly cluster: string;
    /** Path of `http_uri.uri` (default `/v1/traces`). */
    readonly path: string;
    /** Host of `http_uri.uri`, sent as `:authority`. */
    readonly authority: string;
    readonly timeoutMs: number;
    readonly headers: readonly { key: string; value: string }[];
    readonly clusterPath: string;
  };

/** A parsed `envoy.tracers.opentelemetry` provider. */
export interface OpenTelemetryProvider {
  readonly name: "envoy.tracers.opentelemetry";
  /** `service_name`, the resource's `service.name` (Envoy's default `unknown_service:envoy`). */
  readonly serviceName: string;
  /** Undefined: spans are made and propagated but not exported. */
  readonly transport: OtlpTransport | undefined;
}

/** The typed_config `@type` of the Zipkin tracer. */
export const ZIPKIN_CONFIG_TYPE = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";

/** Where Zipkin spans go: JSON v2 `POST`s through a cluster. */
export interface ZipkinTransport {
  readonly kind: "zipkin";
  /** `collector_cluster`. */
  readonly cluster: string;
  /** `collector_endpoint`, e.g. `/api/v2/spans`. */
  readonly path: string;
  /** `collector_hostname` (default: the cluster's name), sent as `:authority`. */
  readonly authority: string;
  readonly timeoutMs: number;
  readonly clusterPath: string;
}

/** A parsed `envoy.tracers.zipkin` provider (B3 propagation). */
export interface ZipkinProvider {
  readonly name: "envoy.tracers.zipkin";
  readonly transport: ZipkinTransport;
  /** `trace_id_128bit` (default false): new traces get 128-bit ids. */
  readonly traceId128: boolean;
  /** `shared_span_context` (default true): the server span shares the caller's span id. */
  readonly sharedSpanContext: boolean;
  /** `trace_context_option: USE_B3_WITH_W3C_PROPAGATION`: W3C read when B3 is absent, and written beside B3. */
  readonly w3c: boolean;
}

/** A parsed tracing provider. */
export type TracingProvider = OpenTelemetryProvider | ZipkinProvider;

function parseZipkin(o: ObjReader): ZipkinProvider {
  const cluster = o.str("collector_cluster", { required: true });
  const clusterPath = o.at("collector_cluster");
  const path = o.str("collector_endpoint", { required: true });
  if (!path.startsWith("/")) throw new ConfigError(o.at("collector_endpoint"), "must be a path starting with /");
  o.enumOf("collector_endpoint_version", ["HTTP_JSON"] as const, {
    known: ["HTTP_PROTO", "GRPC", "DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE"],
  });
  const traceId128 = o.bool("trace_id_128bit") ?? false;
  const sharedSpanContext = o.bool("shared_span_context") ?? true;
  const authority = o.str("collector_hostname") || cluster;
  const opt = o.enumOf("trace_context_option", ["USE_B3", "USE_B3_WITH_W3C_PROPAGATION"] as const) ?? "USE_B3";
  o.bool("split_spans_for_request") && o.unsupported("split_spans_for_request");
  o.unsupported("collector_service", "is not supported (use collector_cluster and collector_endpoint)");
  o.done();
  return {
    name: "envoy.tracers.zipkin",
    transport: { kind: "zipkin", cluster, path, authority, timeoutMs: 5000, clusterPath },
    traceId128,
    sharedSpanContext,
    w3c: opt === "USE_B3_WITH_W3C_PROPAGATION",
  };
}

/** Parsed `HttpConnectionManager.tracing`. */
export interface TracingConfig {
  readonly rates: SamplingRates;
  readonly customTags: readonly CustomTag[];
  /** `max_path_tag_length` (default 256): `http.url` keeps this many characters of the path. */
  readonly maxPathTagLength: number;
  readonly verbose: boolean;
  readonly spawnUpstreamSpan: boolean;
  /** The HCM's own provider, else the bootstrap's `tracing.http`; undefined: spans propagate but are not exported. */
  readonly provider: TracingProvider | undefined;
  /** The bootstrap's `node.id` (tag `node_id`). */
  readonly nodeId: string;
  /** The bootstrap's `node.locality.zone` (tag `zone`). */
  readonly zone: string;
  /** The bootstrap's `node.cluster` (Zipkin's `localEndpoint.serviceName`). */
  readonly nodeCluster: string;
}

/** What the bootstrap contributes to every connection manager's tracing. */
export interface BootstrapTracing {
  /** `tracing.http` (deprecated in Envoy, still common). */
  readonly provider: TracingProvider | undefined;
  readonly nodeId: string;
  readonly zone: string;
  readonly nodeCluster?: string;
}

/**
 * The bootstrap's tracing facts by the registries object its listeners are parsed with: connection managers are
 * parsed deep inside listener parsing (and again for LDS updates), which takes the registries and nothing of the
 * bootstrap. A WeakMap, so nothing outlives the server's registries.
 */
const bootstrapFacts = new WeakMap<object, BootstrapTracing>();

/** Records the bootstrap's tracing facts for the connection managers parsed with `registries`. */
export function setBootstrapTracing(registries: object, facts: BootstrapTracing): void {
  bootstrapFacts.set(registries, facts);
}

/** The bootstrap's tracing facts recorded for `registries`, if any. */
export function bootstrapTracing(registries: object): BootstrapTracing | undefined {
  return bootstrapFacts.get(registries);
}

/** Envoy's `type.v3.Percent` (0..100) as hundredths of a percent. */
function percent(o: ObjReader, key: string): number {
  const p = o.obj(key);
  if (p === undefined) return 10000;
  const v = p.num("value", { min: 0, max: 100 }) ?? 0;
  p.done();
  return Math.round(v * 100);
}

function headerValues(o: ObjReader, key: string): { key: string; value: string }[] {
  return o.objs(key, (h) => {
    const k = h.str("key", { required: true });
    const value = h.str("value") ?? "";
    return { key: k.toLowerCase(), value };
  });
}

function parseOpenTelemetry(o: ObjReader): OpenTelemetryProvider {
  const which = o.oneOf(["grpc_service", "http_service"] as const);
  let transport: OtlpTransport | undefined;
  if (which === "grpc_service") {
    const g = o.obj("grpc_service")!;
    g.unsupported("google_grpc", "is not supported (use envoy_grpc with a cluster)");
    const e = g.obj("envoy_grpc", { required: true })!;
    const cluster = e.str("cluster_name", { required: true });
    const authority = e.str("authority");
    e.skip("max_receive_message_length", "skip_envoy_headers");
    e.unsupported("retry_policy");
    e.done();
    const timeoutMs = g.durationMs("timeout") ?? 5000;
    const metadata = headerValues(g, "initial_metadata");
    g.unsupported("retry_policy");
    g.done();
    transport = { kind: "grpc", cluster, authority, timeoutMs, metadata, clusterPath: e.at("cluster_name") };
  } else if (which === "http_service") {
    const h = o.obj("http_service")!;
    const u = h.obj("http_uri", { required: true })!;
    const uri = u.str("uri", { required: true });
    const cluster = u.str("cluster", { required: true });
    const timeoutMs = u.durationMs("timeout", { required: true })!;
    u.done();
    let url: URL;
    try {
      url = new URL(uri.includes("://") ? uri : `http://${uri}`);
    } catch {
      throw new ConfigError(u.at("uri"), `${JSON.stringify(uri)} is not a URL`);
    }
    const headers = h.objs("request_headers_to_add", (a) => {
      const hv = a.obj("header", { required: true })!;
      const key = hv.str("key", { required: true }).toLowerCase();
      const value = hv.str("value") ?? "";
      hv.done();
      a.skip("append", "append_action", "keep_empty_value");
      return { key, value };
    });
    h.skip("retry_policy");
    h.done();
    transport = {
      kind: "http",
      cluster,
      path: url.pathname === "/" && !uri.endsWith("/") ? "/v1/traces" : url.pathname + url.search,
      authority: url.host,
      timeoutMs,
      headers,
      clusterPath: u.at("cluster"),
    };
  }
  const serviceName = o.str("service_name") || "unknown_service:envoy";
  const detectors = o.value("resource_detectors");
  if (Array.isArray(detectors) && detectors.length > 0) {
    log.warn(`${o.at("resource_detectors")}: resource detectors are not supported; ignored`);
  }
  const sampler = o.obj("sampler");
  if (sampler !== undefined) {
    const name = sampler.str("name") ?? "";
    const tc = sampler.obj("typed_config");
    const t = tc?.str("@type") ?? "";
    if (!t.endsWith("AlwaysOnSamplerConfig") && name !== "envoy.tracers.opentelemetry.samplers.always_on") {
      throw new ConfigError(sampler.path, `sampler ${JSON.stringify(name || t)} is not supported (only always_on)`);
    }
    sampler.skip("typed_config");
    sampler.done();
  }
  o.skip("max_cache_size");
  o.done();
  return { name: "envoy.tracers.opentelemetry", serviceName, transport };
}

/** Parses a provider (`envoy.config.trace.v3.Tracing.Http`: `name` and `typed_config`). */
export function parseTracingProvider(raw: unknown, path: string): TracingProvider {
  const o = new ObjReader(raw, path);
  const name = o.str("name", { required: true });
  const tc = o.obj("typed_config");
  o.done();
  const type = tc?.str("@type");
  if (name === "envoy.tracers.opentelemetry" || type === OPENTELEMETRY_CONFIG_TYPE) {
    if (type !== undefined && type !== OPENTELEMETRY_CONFIG_TYPE) {
      throw new ConfigError(
        `${path}.typed_config.@type`,
        `${JSON.stringify(type)} is not ${OPENTELEMETRY_CONFIG_TYPE}`,
      );
    }
    return parseOpenTelemetry(tc ?? new ObjReader({}, `${path}.typed_config`));
  }
  if (name === "envoy.tracers.zipkin" || name === "envoy.zipkin" || type === ZIPKIN_CONFIG_TYPE) {
    if (tc === undefined) throw new ConfigError(`${path}.typed_config`, "is required");
    if (type !== ZIPKIN_CONFIG_TYPE) {
      throw new ConfigError(`${path}.typed_config.@type`, `${JSON.stringify(type)} is not ${ZIPKIN_CONFIG_TYPE}`);
    }
    return parseZipkin(tc);
  }
  throw new ConfigError(
    `${path}.name`,
    `tracer ${JSON.stringify(name)} is not supported (Ferry has envoy.tracers.opentelemetry and envoy.tracers.zipkin)`,
  );
}

/**
 * Parses `HttpConnectionManager.tracing` (the reader is consumed and checked); `bootstrap` supplies the provider
 * when the HCM names none, and the node's id and zone.
 */
export function parseTracingConfig(o: ObjReader, bootstrap?: BootstrapTracing): TracingConfig {
  const client = percent(o, "client_sampling");
  const random = percent(o, "random_sampling");
  const overall = percent(o, "overall_sampling");
  const customTags = o.objs("custom_tags", (t) => {
    const tag = t.str("tag", { required: true });
    const which = t.oneOf(["literal", "environment", "request_header", "metadata", "value"] as const, {
      required: true,
    });
    if (which === "literal") {
      const l = t.obj("literal")!;
      const value = l.str("value", { required: true });
      l.done();
      return { tag, kind: "literal", value } satisfies CustomTag;
    }
    if (which === "environment") {
      const e = t.obj("environment")!;
      const name = e.str("name", { required: true });
      const def = e.str("default_value") ?? "";
      e.done();
      // As Envoy: read once, when the config is loaded.
      let value = def;
      try {
        value = Deno.env.get(name) ?? def;
      } catch {
        // no env permission: the default
      }
      return { tag, kind: "literal", value } satisfies CustomTag;
    }
    if (which === "request_header") {
      const r = t.obj("request_header")!;
      const name = r.str("name", { required: true }).toLowerCase();
      const defaultValue = r.str("default_value") ?? "";
      r.done();
      return { tag, kind: "request_header", name, defaultValue } satisfies CustomTag;
    }
    throw new ConfigError(t.at(which!), "is not supported (Ferry has no dynamic metadata)");
  });
  const maxPathTagLength = o.int("max_path_tag_length", { min: 1 }) ?? 256;
  const verbose = o.bool("verbose") ?? false;
  const spawnUpstreamSpan = o.bool("spawn_upstream_span") ?? false;
  const provider = o.has("provider") ? parseTracingProvider(o.value("provider"), o.at("provider")) : undefined;
  o.unsupported("operation_name", "is not supported (v2 field; v3 derives it from the listener's traffic_direction)");
  o.unsupported("request_headers_for_tags", "is not supported (v2 field; use custom_tags)");
  o.done();
  return {
    rates: { client, random, overall },
    customTags,
    maxPathTagLength,
    verbose,
    spawnUpstreamSpan,
    provider: provider ?? bootstrap?.provider,
    nodeId: bootstrap?.nodeId ?? "",
    zone: bootstrap?.zone ?? "",
    nodeCluster: bootstrap?.nodeCluster ?? "",
  };
}

/** Parses the bootstrap's `tracing` (`envoy.config.trace.v3.Tracing`): its `http` provider, if any. */
export function parseBootstrapTracing(raw: unknown, path: string): TracingProvider | undefined {
  const o = new ObjReader(raw, path);
  const http = o.has("http") ? parseTracingProvider(o.value("http"), o.at("http")) : undefined;
  o.done();
  if (http) log.warn(`${path}.http: deprecated; configure the provider in the connection manager's tracing`);
  return http;
}

/** `node.locality.zone` of a raw bootstrap `node` ("" if unset). */
export function nodeZone(rawNode: unknown): string {
  if (rawNode === null || typeof rawNode !== "object") return "";
  const loc = (rawNode as Record<string, unknown>)["locality"];
  if (loc === null || typeof loc !== "object") return "";
  const z = (loc as Record<string, unknown>)["zone"];
  return typeof z === "string" ? z : "";
}
