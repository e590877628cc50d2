/**
 * The batching every span exporter shares (Envoy's tracers flush the same way): a batch is sent once
 * `min_flush_spans` spans wait, and a timer sends what is left every `flush_interval_ms`; both are read from the
 * runtime keys `<prefix>.min_flush_spans` / `<prefix>.flush_interval_ms` (Envoy's), unless given. At most
 * {@link MAX_IN_FLIGHT} sends are outstanding; while they are, spans wait, up to {@link MAX_QUEUED_SPANS}, and more
 * are dropped and counted, so a slow or dead collector costs bounded memory.
 *
 * @module
 */
import type { Counter } from "../api/stats.ts";
import { serverRuntime } from "../runtime/runtime.ts";
import type { SpanRecord } from "./span.ts";

/** Spans held at most (waiting for a flush); more are dropped. */
export const MAX_QUEUED_SPANS = 4096;
/** Sends in flight at most; while that many are, spans wait in the queue. */
export const MAX_IN_FLIGHT = 4;

/** Batching knobs (else the runtime's, else Envoy's defaults: 5 spans, 5 s). */
export interface BatchOptions {
  readonly minFlushSpans?: number;
  readonly flushIntervalMs?: number;
}

/** What a batcher needs from its exporter. */
export interface BatcherOptions {
  /** Runtime key prefix, e.g. `tracing.opentelemetry`. */
  readonly runtimePrefix: string;
  readonly batch: BatchOptions;
  readonly timerFlushed: Counter;
  readonly dropped: Counter;
  /** Sends one batch; calls `done` once when the send finished (either way). */
  readonly send: (spans: SpanRecord[], done: () => void) => void;
}

/** See the module doc. */
export class SpanBatcher {
  readonly #o: BatcherOptions;
  #queue: SpanRecord[] = [];
  #inFlight = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: BatcherOptions) {
    this.#o = options;
  }

  get #minFlush(): number {
    return this.#o.batch.minFlushSpans ?? serverRuntime.getInteger(`${this.#o.runtimePrefix}.min_flush_spans`, 5);
  }

  /** Arms the flush timer (on the first span, so that the runtime is configured by then; re-read every time). */
  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const ms = this.#o.batch.flushIntervalMs ??
      serverRuntime.getInteger(`${this.#o.runtimePrefix}.flush_interval_ms`, 5000);
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#o.timerFlushed.inc();
      this.flush();
      if (this.#queue.length > 0 || this.#inFlight > 0) this.#arm();
    }, Math.max(1, ms));
    // The flush timer never keeps the process alive on its own.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Queues a finished, sampled span; sends a batch when enough are waiting. */
  add(span: SpanRecord): void {
    if (this.#closed) return;
    if (this.#queue.length >= MAX_QUEUED_SPANS) {
      this.#o.dropped.inc();
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#minFlush) this.flush();
    if (this.#queue.length > 0) this.#arm();
  }

  /** Spans waiting for a flush. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Sends what is queued (nothing when the queue is empty or too many sends are in flight). */
  flush(): void {
    if (this.#queue.length === 0 || this.#inFlight >= MAX_IN_FLIGHT) return;
    const spans = this.#queue;
    this.#queue = [];
    this.#inFlight++;
    let settled = false;
    this.#o.send(spans, () => {
      if (settled) return;
      settled = true;
      this.#inFlight--;
      if (this.#queue.length >= this.#minFlush) this.flush();
    });
  }

  /** Sends what is left and stops the timer. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
