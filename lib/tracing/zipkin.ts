/**
 * The Zipkin tracer's exporter (`envoy.tracers.zipkin`, `collector_endpoint_version: HTTP_JSON`): sampled spans are
 * batched (as every exporter, `_batcher.ts`; runtime keys `tracing.zipkin.min_flush_spans` / `flush_interval_ms`)
 * and `POST`ed as a Zipkin v2 JSON list to `collector_endpoint` through the collector cluster's HTTP pool.
 *
 * Stats (Envoy's): `tracing.zipkin.{spans_sent, timer_flushed, reports_sent, reports_dropped, reports_failed,
 * reports_skipped_no_cluster}`, and Ferry's `spans_dropped` (queue full).
 *
 * @module
 */
import { HeaderMap } from "../api/headers.ts";
import type { Counter, StatsScope } from "../api/stats.ts";
import type { ClusterManager } from "../api/upstream.ts";
import { getLogger } from "../observe/log.ts";
import { VERSION } from "../version.ts";
import type { ZipkinProvider } from "./config.ts";
import { type BatchOptions, SpanBatcher } from "./_batcher.ts";
import { poolRequest } from "./_pool_request.ts";
import type { SpanRecord } from "./span.ts";

const log = getLogger("tracing");
const te = new TextEncoder();

/** A trace id with zero upper 64 bits is written in 64 (Zipkin accepts both widths). */
function zipkinTraceId(id: string): string {
  return id.startsWith("0000000000000000") ? id.slice(16) : id;
}

/** One span as Zipkin's v2 JSON (`timestamp` / `duration` in microseconds). */
export function zipkinSpanJson(s: SpanRecord, serviceName: string): Record<string, unknown> {
  const tags: Record<string, string> = {};
  for (const [k, v] of s.attributes) tags[k] = v;
  const out: Record<string, unknown> = {
    traceId: zipkinTraceId(s.traceId),
    id: s.spanId,
    name: s.name,
    kind: s.kind,
    timestamp: Number(s.startNs / 1000n),
    duration: Math.max(1, Number((s.endNs - s.startNs) / 1000n)),
    localEndpoint: { serviceName },
    tags,
  };
  if (s.parentSpanId !== "") out["parentId"] = s.parentSpanId;
  if (s.shared) out["shared"] = true;
  if (s.events !== undefined && s.events.length > 0) {
    out["annotations"] = s.events.map((e) => ({ timestamp: Number(e.timeNs / 1000n), value: e.name }));
  }
  return out;
}

interface ZipkinStats {
  spans_sent: Counter;
  timer_flushed: Counter;
  reports_sent: Counter;
  reports_dropped: Counter;
  reports_failed: Counter;
  reports_skipped_no_cluster: Counter;
  spans_dropped: Counter;
}

/** Batches and sends one Zipkin provider's spans; see the module doc. */
export class ZipkinExporter {
  readonly #provider: ZipkinProvider;
  readonly #clusters: ClusterManager;
  readonly #stats: ZipkinStats;
  readonly #serviceName: string;
  readonly #batcher: SpanBatcher;

  constructor(
    provider: ZipkinProvider,
    context: { clusterManager: ClusterManager; stats: StatsScope; serviceName: string },
    options: BatchOptions = {},
  ) {
    this.#provider = provider;
    this.#clusters = context.clusterManager;
    this.#serviceName = context.serviceName;
    const s = context.stats.scope("tracing.zipkin");
    this.#stats = {
      spans_sent: s.counter("spans_sent"),
      timer_flushed: s.counter("timer_flushed"),
      reports_sent: s.counter("reports_sent"),
      reports_dropped: s.counter("reports_dropped"),
      reports_failed: s.counter("reports_failed"),
      reports_skipped_no_cluster: s.counter("reports_skipped_no_cluster"),
      spans_dropped: s.counter("spans_dropped"),
    };
    this.#batcher = new SpanBatcher({
      runtimePrefix: "tracing.zipkin",
      batch: options,
      timerFlushed: this.#stats.timer_flushed,
      dropped: this.#stats.spans_dropped,
      send: (spans, done) => this.#send(spans, done),
    });
  }

  /** Queues a finished, sampled span. */
  export(span: SpanRecord): void {
    this.#batcher.add(span);
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
    const t = this.#provider.transport;
    const cluster = this.#clusters.get(t.cluster);
    if (cluster === undefined) {
      this.#stats.reports_skipped_no_cluster.inc();
      done();
      return;
    }
    const body = te.encode(JSON.stringify(spans.map((s) => zipkinSpanJson(s, this.#serviceName))));
    const headers = HeaderMap.from([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", t.path],
      [":authority", t.authority],
      ["content-type", "application/json"],
      ["user-agent", `ferry/${VERSION}`],
    ]);
    this.#stats.spans_sent.inc(spans.length);
    poolRequest(cluster, { headers, body, timeoutMs: t.timeoutMs }, (r) => {
      if ("error" in r) {
        this.#stats.reports_failed.inc();
        log.debug(`tracing: Zipkin report failed: ${r.error}`);
      } else if (r.status !== 202 && r.status !== 200) {
        // Envoy counts a collector that answered with anything but 202 Accepted as a dropped report.
        this.#stats.reports_dropped.inc();
        log.debug(`tracing: Zipkin collector answered HTTP ${r.status}`);
      } else this.#stats.reports_sent.inc();
      done();
    });
  }
}
