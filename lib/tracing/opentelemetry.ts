/**
 * The OpenTelemetry tracer's exporter (`envoy.tracers.opentelemetry`): sampled spans are batched and sent as an
 * OTLP `ExportTraceServiceRequest`, over gRPC (`opentelemetry.proto.collector.trace.v1.TraceService/Export`, unary,
 * on an HTTP/2 pool of the collector cluster through Ferry's own HTTP/2 codec) or OTLP/HTTP (protobuf `POST` to the
 * `http_uri` path through the cluster's HTTP pool).
 *
 * As Envoy: a batch goes out once `min_flush_spans` (5) spans are waiting, and a timer flushes what is left every
 * `flush_interval_ms` (5 s); both can be changed with the runtime keys Envoy reads,
 * `tracing.opentelemetry.min_flush_spans` and `tracing.opentelemetry.flush_interval_ms`. A failed export is not retried. The queue is bounded: while exports are in flight and
 * the collector is slow or down, spans beyond {@link MAX_QUEUED_SPANS} are dropped and counted.
 *
 * Stats (root scope, shared by every exporter): `tracing.opentelemetry.spans_sent`, `timer_flushed`,
 * `http_reports_sent`, `http_reports_success`, `http_reports_failed` (Envoy's), and Ferry's `spans_dropped`,
 * `grpc_reports_failed`.
 *
 * @module
 */
import { HeaderMap } from "../api/headers.ts";
import type { Counter, StatsScope } from "../api/stats.ts";
import type { ClusterManager } from "../api/upstream.ts";
import { http2CodecFactory } from "../../codecs/http2/mod.ts";
import { getLogger } from "../observe/log.ts";
import { VERSION } from "../version.ts";
import type { OpenTelemetryProvider } from "./config.ts";
import { encodeExportTraceServiceRequest, type ExportResource } from "./otlp_encoder.ts";
import { poolRequest } from "./_pool_request.ts";
import type { SpanRecord } from "./span.ts";
import { type BatchOptions, SpanBatcher } from "./_batcher.ts";

export { type BatchOptions, MAX_QUEUED_SPANS } from "./_batcher.ts";

const log = getLogger("tracing");

/** The gRPC method OTLP/gRPC exports call. */
export const EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
interface ExporterStats {
  spans_sent: Counter;
  timer_flushed: Counter;
  http_reports_sent: Counter;
  http_reports_success: Counter;
  http_reports_failed: Counter;
  grpc_reports_failed: Counter;
  spans_dropped: Counter;
}

/** Batches and sends one provider's spans; see the module doc. */
export class OtlpExporter {
  readonly #provider: OpenTelemetryProvider;
  readonly #clusters: ClusterManager;
  readonly #stats: ExporterStats;
  readonly #resource: ExportResource;
  readonly #batcher: SpanBatcher;

  constructor(
    provider: OpenTelemetryProvider,
    context: { clusterManager: ClusterManager; stats: StatsScope },
    options: BatchOptions = {},
  ) {
    this.#provider = provider;
    this.#clusters = context.clusterManager;
    const s = context.stats.scope("tracing.opentelemetry");
    this.#stats = {
      spans_sent: s.counter("spans_sent"),
      timer_flushed: s.counter("timer_flushed"),
      http_reports_sent: s.counter("http_reports_sent"),
      http_reports_success: s.counter("http_reports_success"),
      http_reports_failed: s.counter("http_reports_failed"),
      grpc_reports_failed: s.counter("grpc_reports_failed"),
      spans_dropped: s.counter("spans_dropped"),
    };
    this.#resource = {
      attributes: [
        ["service.name", provider.serviceName],
        ["telemetry.sdk.name", "ferry"],
        ["telemetry.sdk.language", "typescript"],
        ["telemetry.sdk.version", VERSION],
      ],
      scopeName: "ferry",
      scopeVersion: VERSION,
    };
    this.#batcher = new SpanBatcher({
      runtimePrefix: "tracing.opentelemetry",
      batch: options,
      timerFlushed: this.#stats.timer_flushed,
      dropped: this.#stats.spans_dropped,
      send: (spans, done) => this.#send(spans, done),
    });
  }

  /** Queues a finished, sampled span; sends a batch when enough are waiting. */
  export(span: SpanRecord): void {
    if (this.#provider.transport !== undefined) this.#batcher.add(span);
  }

  /** Spans waiting for a flush. */
  get queued(): number {
    return this.#batcher.queued;
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#batcher.flush();
  }

  /** Sends what is left and stops the timer. */
  close(): void {
    this.#batcher.close();
  }

  #send(spans: SpanRecord[], done: () => void): void {
    const t = this.#provider.transport!;
    const cluster = this.#clusters.get(t.cluster);
    if (cluster === undefined) {
      log.warn(`tracing: cluster "${t.cluster}" is not defined; ${spans.length} spans dropped`);
      this.#stats.spans_dropped.inc(spans.length);
      done();
      return;
    }
    const body = encodeExportTraceServiceRequest(this.#resource, spans);
    const n = spans.length;
    if (t.kind === "http") {
      const headers = HeaderMap.from([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", t.path],
        [":authority", t.authority || t.cluster],
        ["content-type", "application/x-protobuf"],
        ["user-agent", `ferry/${VERSION}`],
        ...t.headers.map(({ key, value }) => [key, value] as const),
      ]);
      this.#stats.http_reports_sent.inc();
      this.#stats.spans_sent.inc(n);
      poolRequest(cluster, { headers, body, timeoutMs: t.timeoutMs }, (r) => {
        if ("error" in r || r.status < 200 || r.status >= 300) {
          this.#stats.http_reports_failed.inc();
          log.debug(`tracing: OTLP/HTTP export failed: ${"error" in r ? r.error : `HTTP ${r.status}`}`);
        } else this.#stats.http_reports_success.inc();
        done();
      });
      return;
    }
    const framed = new Uint8Array(5 + body.length);
    new DataView(framed.buffer).setUint32(1, body.length);
    framed.set(body, 5);
    const headers = HeaderMap.from([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", EXPORT_METHOD],
      [":authority", t.authority ?? t.cluster],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["grpc-timeout", `${Math.max(1, t.timeoutMs)}m`],
      ["user-agent", `ferry/${VERSION}`],
      ...t.metadata.map(({ key, value }) => [key, value] as const),
    ]);
    this.#stats.spans_sent.inc(n);
    poolRequest(cluster, { headers, body: framed, timeoutMs: t.timeoutMs, codec: http2CodecFactory }, (r) => {
      const status = "error" in r ? undefined : (r.trailers?.get("grpc-status") ?? r.headers.get("grpc-status"));
      if ("error" in r || r.status !== 200 || status !== "0") {
        this.#stats.grpc_reports_failed.inc();
        log.debug(
          `tracing: OTLP/gRPC export failed: ${"error" in r ? r.error : `HTTP ${r.status}, grpc-status ${status}`}`,
        );
      }
      done();
    });
  }
}
