/**
 * {@link WriteBuffer}: the output side of a connection that both socket engines share — the epoll engine
 * (`epoll.ts`) and {@link DenoConnection} (`connection.ts`). It holds what is engine-independent:
 *
 * - the bytes not yet handed to the socket, in one buffer from the pool (`buffer_pool.ts`), taken on the first
 *   write after the queue emptied and returned once it is sent, so idle connections hold none;
 * - `bufferedAmount` (bytes accepted and not yet written, wherever they wait: here, in a write op in flight, or as a
 *   view the engine sends without copying) and `bytesWritten`;
 * - the high/low watermark state: past the high watermark the listener's `onWriteBlocked` is called once; when
 *   the amount falls below half of it, `onWriteDrained` (the {@link ConnectionHandler} contract);
 * - flush-on-close: `closeWrite` and `close({flush: true})` wait for the queue to empty, a flushing close bounded
 *   by a timeout.
 *
 * How and when bytes reach the socket stays with each engine (epoll: a `send` per event batch, zero-copy from the
 * shared read buffer; Deno: one `write` op at a time, read pacing, zero-copy of the chunk being handled).
 *
 * @module
 */
import type { ConnectionHandler } from "../api/network.ts";
import { releaseBuffer, takeBuffer } from "./buffer_pool.ts";
import { schedule, type WheelTimer } from "./timer_wheel.ts";

/** Above this many queued bytes the handler is told to stop producing (Envoy's per-connection buffer limit). */
export const DEFAULT_HIGH_WATERMARK = 1024 * 1024;
/** How long `close({flush: true})` waits for queued bytes before closing anyway. */
export const FLUSH_CLOSE_TIMEOUT_MS = 5000;

/** Who hears about the watermarks: the connection's handler. */
export type WatermarkListener = Pick<ConnectionHandler, "onWriteBlocked" | "onWriteDrained">;

const noListener: WatermarkListener = {};

/** What an engine does once its output is empty (see {@link WriteBuffer.afterDrain}). */
export type AfterDrain = "close" | "shutdown" | undefined;

/**
 * A connection's write queue, counters, watermarks and flush-on-close state (see the module doc). The engine owns
 * the socket: it asks for the unsent bytes, tells what was taken (`consume`, `sent`), and says whether anything is
 * pending outside this buffer (a borrowed view, a write op in flight, a full socket) when closing.
 */
export class WriteBuffer {
  /** Pooled bytes not yet handed to the socket: `[#start, #end)` of `#buf`. */
  #buf: Uint8Array | undefined;
  #start = 0;
  #end = 0;
  #queued = 0;
  #written = 0;
  readonly #high: number;
  #blocked = false;
  #listener: WatermarkListener = noListener;
  #writeClosed = false;
  #closeAfterFlush = false;
  #shutdownAfterFlush = false;
  #flushTimer: WheelTimer | undefined;

  constructor(highWatermark = DEFAULT_HIGH_WATERMARK) {
    this.#high = highWatermark;
  }

  /** Sets who is told about the watermarks (the connection's handler; a no-op listener once closed). */
  set listener(l: WatermarkListener) {
    this.#listener = l;
  }

  /** Bytes accepted and not yet written (`NetConnection.bufferedAmount`). */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Bytes written to the socket (`NetConnection.bytesWritten`). */
  get bytesWritten(): number {
    return this.#written;
  }

  /** True once `closeWrite` or a flushing `close` was asked for: `write` must drop its bytes. */
  get writeClosed(): boolean {
    return this.#writeClosed;
  }

  /** Pooled bytes waiting here (not counting what the engine holds as a view or has in flight). */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Queues a copy of `data` behind the unsent bytes; may call `onWriteBlocked`. */
  write(data: Uint8Array): void {
    this.#queued += data.length;
    this.append(data);
    this.checkHigh();
  }

  /**
   * Counts `n` bytes the engine keeps as a view instead of copying them here (zero-copy); may call
   * `onWriteBlocked`.
   */
  countBorrowed(n: number): void {
    this.#queued += n;
    this.checkHigh();
  }

  /**
   * Copies bytes behind the unsent ones without counting them (bytes already counted by `countBorrowed` that the
   * engine can no longer keep as a view), compacting or growing the pooled buffer as needed.
   */
  append(data: Uint8Array): void {
    const n = data.length;
    let buf = this.#buf;
    if (buf === undefined) {
      buf = this.#buf = takeBuffer(n);
      this.#start = this.#end = 0;
    } else if (this.#end + n > buf.length) {
      const live = this.#end - this.#start;
      if (live + n <= buf.length) buf.copyWithin(0, this.#start, this.#end);
      else {
        const bigger = takeBuffer(live + n);
        bigger.set(buf.subarray(this.#start, this.#end));
        releaseBuffer(buf);
        buf = this.#buf = bigger;
      }
      this.#start = 0;
      this.#end = live;
    }
    buf.set(data, this.#end);
    this.#end += n;
  }

  /** Calls `onWriteBlocked` if the queue just passed the high watermark. */
  checkHigh(): void {
    if (!this.#blocked && this.#queued > this.#high) {
      this.#blocked = true;
      this.#listener.onWriteBlocked?.();
    }
  }

  /** The unsent pooled bytes, as a view (valid until the next `write`, `append`, `consume` or `detach`). */
  unsent(): Uint8Array {
    return this.#buf!.subarray(this.#start, this.#end);
  }

  /** Drops `n` bytes the socket took from the front of `unsent()`; returns the buffer to the pool when empty. */
  consume(n: number): void {
    const start = this.#start + n;
    if (start < this.#end) {
      this.#start = start;
      return;
    }
    releaseBuffer(this.#buf!);
    this.#buf = undefined;
    this.#start = this.#end = 0;
  }

  /**
   * Hands the whole pooled buffer to the engine (for a write op that outlives this call): its bytes are
   * `[0, length)` as read before the call (the queue is compacted at its front first). The engine returns it with
   * `releaseBuffer` when the op is done; the next `write` starts a new one.
   */
  detach(): Uint8Array {
    const buf = this.#buf!;
    if (this.#start > 0) buf.copyWithin(0, this.#start, this.#end);
    this.#buf = undefined;
    this.#start = this.#end = 0;
    return buf;
  }

  /** `n` bytes reached the socket: counts them and calls `onWriteDrained` below the low watermark. */
  sent(n: number): void {
    this.#written += n;
    this.#queued -= n;
    if (this.#blocked && this.#queued < this.#high / 2) {
      this.#blocked = false;
      this.#listener.onWriteDrained?.();
    }
  }

  /**
   * Half-close asked for: returns true when the engine should shut its write side now (`pending` false: nothing
   * waits anywhere), false when it must wait until {@link afterDrain} says `"shutdown"`.
   */
  closeWrite(pending: boolean): boolean {
    this.#writeClosed = true;
    if (pending) this.#shutdownAfterFlush = true;
    return !pending;
  }

  /**
   * `close({flush: true})` with bytes pending: no more writes; {@link afterDrain} says `"close"` once they are out,
   * and `onTimeout` is called if that takes longer than {@link FLUSH_CLOSE_TIMEOUT_MS} (until `reset`).
   */
  closeAfterFlush(onTimeout: () => void): void {
    this.#closeAfterFlush = true;
    this.#writeClosed = true;
    // On the timer wheel: nearly every TLS connection closes this way and cancels it a moment later, and a runtime
    // timer pair cost ~14 us of each handshake (a Node-compat Timeout object per close).
    if (this.#flushTimer === undefined) this.#flushTimer = schedule(FLUSH_CLOSE_TIMEOUT_MS, onTimeout);
  }

  /**
   * Everything is written: what a pending close asks for. `"shutdown"` is answered once (the engine shuts its
   * write side); `"close"` until the engine closes.
   */
  afterDrain(): AfterDrain {
    if (this.#closeAfterFlush) return "close";
    if (this.#shutdownAfterFlush) {
      this.#shutdownAfterFlush = false;
      return "shutdown";
    }
    return undefined;
  }

  /** The connection closed: returns the pooled buffer, forgets the queue, stops the flush timer and the listener. */
  reset(): void {
    if (this.#buf !== undefined) releaseBuffer(this.#buf);
    this.#buf = undefined;
    this.#start = this.#end = this.#queued = 0;
    this.#listener = noListener;
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
  }
}
