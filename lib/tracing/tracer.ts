/**
 * The connection manager's tracer (Envoy's `Tracing::TracerImpl` with the HCM's tracing config): per request it
 * makes the sampling decision (`x-request-id`, see `sampler.ts`), counts it in `http.<prefix>.tracing.*`, starts
 * the server span as a child of the context the request carries (W3C or B3, see `propagation.ts`), writes the new
 * context into the request that goes upstream, and when the stream ends sets Envoy's tags and hands sampled spans
 * to the provider's exporter: OTLP (`opentelemetry.ts`; W3C first, B3 answered where it came in) or Zipkin
 * (`zipkin.ts`; B3 first and always written, shared span context).
 *
 * Cost: an unsampled request (tracing on, sampled out) takes about 1 µs more than with tracing off (ids, decision,
 * `traceparent`); a sampled one about 10 µs more, export included (`/tmp` microbenchmark on the shared 2-core VM).
 *
 * The span is named `ingress` (Envoy's name for an ingress span), or by the route's `decorator.operation`, or by an
 * `x-envoy-decorator-operation` request header (which is removed), as Envoy does. On a listener with
 * `traffic_direction: OUTBOUND` the span is a CLIENT span named `egress <host>` (or by the decorator).
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import type { Counter, StatsScope } from "../api/stats.ts";
import type { StreamInfo } from "../api/stream_info.ts";
import type { ClusterManager } from "../api/upstream.ts";
import type { TracingConfig, ZipkinProvider } from "./config.ts";
import { type BatchOptions, OtlpExporter } from "./opentelemetry.ts";
import { extractContext, injectContext, type InjectMode, OTEL_INJECT, randomHexId } from "./propagation.ts";
import { ZipkinExporter } from "./zipkin.ts";
import { decideTrace } from "./sampler.ts";
import { nowNs, type SpanEvent, type SpanRecord } from "./span.ts";

/** The HCM's `tracing.*` counters (Envoy's names). */
export interface TracingStats {
  random_sampling: Counter;
  service_forced: Counter;
  client_enabled: Counter;
  not_traceable: Counter;
  health_check: Counter;
}

/** What a tracer needs from its connection manager and server. */
export interface TracerContext {
  readonly clusterManager: ClusterManager;
  /** Root stats scope (the exporters' `tracing.opentelemetry.*` / `tracing.zipkin.*`). */
  readonly stats: StatsScope;
  /** The connection manager's scope (`http.<stat_prefix>`). */
  readonly scope: StatsScope;
  /** Batching knobs for tests. */
  readonly batch?: BatchOptions;
  /** The listener's `traffic_direction` is `OUTBOUND`: spans are CLIENT spans named `egress <host>`. */
  readonly egress?: boolean;
}

/** What the tracer hands finished spans to (one per provider kind). */
interface SpanExporter {
  export(span: SpanRecord): void;
  flush(): void;
  close(): void;
}

/** A span in progress, held by its stream. */
export interface ActiveSpan {
  readonly record: SpanRecord;
  /** With `spawn_upstream_span`: the CLIENT span of the upstream request, the parent the next hop sees. */
  readonly upstream: SpanRecord | undefined;
  /** From `x-envoy-decorator-operation`: wins over the route's decorator. */
  readonly operationOverride: string | undefined;
  /** The route's decorator goes back in an `x-envoy-decorator-operation` response header (ingress, no override). */
  readonly decoratorInResponse: boolean;
}

/**
 * `verbose`: Envoy's timing logs that Ferry's stream info knows, as events at their times. The stream info's times
 * come from the connection layer's coarse clock, so they are kept within the span's own (precise) start and end.
 */
function timingEvents(startNs: bigint, endNs: bigint, info: StreamInfo): SpanEvent[] {
  const at = (ms: number) => {
    const t = startNs + BigInt(Math.round(ms * 1e6));
    return t > endNs ? endNs : t < startNs ? startNs : t;
  };
  const ev: SpanEvent[] = [];
  if (info.requestCompleteMs !== undefined) {
    ev.push({ timeNs: at(info.requestCompleteMs), name: "last_downstream_rx_byte_received" });
  }
  if (info.firstUpstreamRxMs !== undefined) {
    ev.push({ timeNs: at(info.firstUpstreamRxMs), name: "first_upstream_rx_byte_received" });
  }
  if (info.durationMs !== undefined) ev.push({ timeNs: at(info.durationMs), name: "last_downstream_tx_byte_sent" });
  return ev;
}

/** One connection manager config's tracer; see the module doc. */
export class Tracer {
  readonly config: TracingConfig;
  readonly stats: TracingStats;
  readonly #exporter: SpanExporter | undefined;
  readonly #zipkin: ZipkinProvider | undefined;
  readonly #inject: InjectMode;
  readonly #egress: boolean;

  constructor(config: TracingConfig, context: TracerContext) {
    this.config = config;
    this.#egress = context.egress ?? false;
    const t = context.scope.scope("tracing");
    this.stats = {
      random_sampling: t.counter("random_sampling"),
      service_forced: t.counter("service_forced"),
      client_enabled: t.counter("client_enabled"),
      not_traceable: t.counter("not_traceable"),
      health_check: t.counter("health_check"),
    };
    const p = config.provider;
    if (p?.name === "envoy.tracers.zipkin") {
      this.#zipkin = p;
      this.#inject = { w3c: p.w3c, b3: true };
      const serviceName = config.nodeCluster || "ferry";
      this.#exporter = new ZipkinExporter(p, { ...context, serviceName }, context.batch);
    } else {
      this.#inject = OTEL_INJECT;
      this.#exporter = p ? new OtlpExporter(p, context, context.batch) : undefined;
    }
  }

  /**
   * Starts the span of a request whose headers the connection manager has finished mutating (so `x-request-id` is
   * final): decides, extracts the parent, injects our context into `h` (which goes upstream) and updates
   * `info.requestId` to the id with the decision packed in.
   */
  startSpan(h: HeaderMap, info: StreamInfo): ActiveSpan {
    const d = decideTrace(h, this.config.rates);
    switch (d.reason) {
      case "Sampling":
        this.stats.random_sampling.inc();
        break;
      case "ServiceForced":
        this.stats.service_forced.inc();
        break;
      case "ClientForced":
        this.stats.client_enabled.inc();
        break;
      case "NotTraceable":
        this.stats.not_traceable.inc();
        break;
      default:
        break;
    }
    const rid = h.get("x-request-id");
    if (rid !== undefined) info.requestId = rid;
    const z = this.#zipkin;
    const parent = z === undefined ? extractContext(h) : extractContext(h, "b3", z.w3c);
    const sampled = parent?.sampled ?? d.traced;
    const traceId = parent?.traceId ??
      (z !== undefined && !z.traceId128 ? `0000000000000000${randomHexId(8)}` : randomHexId(16));
    // Zipkin's shared span context: the server span is the caller's client span, under the caller's parent.
    const shared = z !== undefined && z.sharedSpanContext && parent !== undefined;
    const spanId = shared ? parent.spanId : randomHexId(8);
    const parentSpanId = shared ? parent.parentSpanId : parent?.spanId ?? "";
    const traceState = parent?.traceState ?? "";
    const mode = this.#inject;
    // Ingress: a decorator operation from the caller names our span (and is not passed on). Egress: it is the
    // caller's own business and goes on to the next hop.
    const op = this.#egress ? undefined : h.get("x-envoy-decorator-operation");
    if (op !== undefined) h.remove("x-envoy-decorator-operation");
    // An unsampled span only propagates: no clock read, no attributes.
    const attributes = new Map<string, string>();
    if (sampled) {
      attributes.set("node_id", this.config.nodeId);
      attributes.set("zone", this.config.zone);
    }
    const startNs = sampled ? nowNs() : 0n;
    const record: SpanRecord = {
      traceId,
      spanId,
      parentSpanId,
      traceState,
      name: this.#egress ? `egress ${h.get(":authority") ?? ""}` : "ingress",
      kind: this.#egress ? "CLIENT" : "SERVER",
      startNs,
      endNs: 0n,
      attributes,
      status: "UNSET",
      sampled,
      shared,
    };
    let upstream: SpanRecord | undefined;
    if (this.config.spawnUpstreamSpan) {
      // The upstream request's own span, a child of ours: its context is what goes upstream. It starts with ours
      // (the connection manager does not see when the router sends) and ends with the stream.
      upstream = {
        traceId,
        spanId: randomHexId(8),
        parentSpanId: spanId,
        traceState,
        name: "router egress",
        kind: "CLIENT",
        startNs,
        endNs: 0n,
        attributes: new Map(),
        status: "UNSET",
        sampled,
      };
      injectContext(h, { traceId, spanId: upstream.spanId, parentSpanId: spanId, sampled, traceState }, mode);
    } else {
      injectContext(h, { traceId, spanId, parentSpanId, sampled, traceState }, mode);
    }
    const operationOverride = op !== undefined && op !== "" ? op : undefined;
    return {
      record,
      upstream,
      operationOverride,
      decoratorInResponse: !this.#egress && operationOverride === undefined,
    };
  }

  /** Ends the span with Envoy's tags; exports it when sampled. `decorator` is the route's `decorator.operation`. */
  finishSpan(span: ActiveSpan, info: StreamInfo, decorator: string | undefined): void {
    const r = span.record;
    if (!r.sampled) return;
    r.endNs = nowNs();
    r.name = span.operationOverride ?? decorator ?? r.name;
    const a = r.attributes;
    const h = info.requestHeaders;
    if (h !== undefined) {
      const rid = h.get("x-request-id");
      if (rid !== undefined) a.set("guid:x-request-id", rid);
      const path = h.get("x-envoy-original-path") ?? h.get(":path") ?? "";
      const scheme = h.get(":scheme") ?? "http";
      const host = h.get(":authority") ?? "";
      a.set("http.url", `${scheme}://${host}${path.slice(0, this.config.maxPathTagLength)}`);
      a.set("http.method", h.get(":method") ?? "");
      a.set("downstream_cluster", h.get("x-envoy-downstream-service-cluster") ?? "-");
      a.set("user_agent", h.get("user-agent") ?? "-");
      a.set("http.protocol", info.protocol ?? "-");
      a.set("peer.address", info.downstreamDirectRemoteAddress);
      const ctid = h.get("x-client-trace-id");
      if (ctid !== undefined) a.set("guid:x-client-trace-id", ctid);
      if (h.get("content-type")?.startsWith("application/grpc")) {
        a.set("grpc.path", h.get(":path") ?? "");
        a.set("grpc.authority", host);
        a.set("grpc.content_type", h.get("content-type") ?? "");
        const to = h.get("grpc-timeout");
        if (to !== undefined) a.set("grpc.timeout", to);
      }
    }
    a.set("request_size", String(info.bytesReceived));
    a.set("component", "proxy");
    if (info.upstreamCluster !== undefined) {
      a.set("upstream_cluster", info.upstreamCluster);
      a.set("upstream_cluster.name", info.upstreamCluster);
    }
    if (info.upstreamHost !== undefined) a.set("upstream_address", info.upstreamHost);
    const code = info.responseCode;
    a.set("http.status_code", String(code ?? 0));
    a.set("response_size", String(info.bytesSent));
    a.set("response_flags", info.responseFlags.length > 0 ? info.responseFlags.join(",") : "-");
    const gs = info.responseTrailers?.get("grpc-status") ?? info.responseHeaders?.get("grpc-status");
    if (gs !== undefined) a.set("grpc.status_code", gs);
    if (code === undefined || code === 0 || code >= 500) {
      a.set("error", "true");
      r.status = "ERROR";
    }
    if (this.config.verbose) r.events = timingEvents(r.startNs, r.endNs, info);
    this.#customTags(a, h);
    const u = span.upstream;
    if (u !== undefined && info.upstreamCluster !== undefined) {
      // Envoy's upstream span: `router <cluster> egress`, with the upstream side's tags.
      u.endNs = r.endNs;
      u.name = `router ${info.upstreamCluster} egress`;
      const ua = u.attributes;
      ua.set("component", "proxy");
      ua.set("http.method", a.get("http.method") ?? "");
      ua.set("http.url", a.get("http.url") ?? "");
      ua.set("upstream_cluster", info.upstreamCluster);
      ua.set("upstream_cluster.name", info.upstreamCluster);
      if (info.upstreamHost !== undefined) {
        ua.set("upstream_address", info.upstreamHost);
        ua.set("peer.address", info.upstreamHost);
      }
      ua.set("http.status_code", String(code ?? 0));
      ua.set("response_flags", a.get("response_flags") ?? "-");
      if (r.status === "ERROR") {
        ua.set("error", "true");
        u.status = "ERROR";
      }
      this.#customTags(ua, h);
      this.#exporter?.export(u);
    }
    this.#exporter?.export(r);
  }

  #customTags(a: Map<string, string>, h: HeaderMap | undefined): void {
    for (const t of this.config.customTags) {
      if (t.kind === "literal") a.set(t.tag, t.value);
      else {
        const v = h?.getJoined(t.name) ?? t.defaultValue;
        if (v !== "") a.set(t.tag, v);
      }
    }
  }

  /** Flushes and stops the exporter (the config is being replaced or the server stops). */
  close(): void {
    this.#exporter?.close();
  }

  /** Sends queued spans now (tests, admin). */
  flush(): void {
    this.#exporter?.flush();
  }
}
