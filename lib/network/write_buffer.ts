/**
 * {@link WriteBuffer}: the output side of a connection that both socket engines share — the epoll engine
 * (`epoll.ts`) and {@link DenoConnection} (`connection.ts`). It holds what is engine-independent:
 *
 * - the bytes not yet handed to the socket, in a chain of buffers from the pool (`buffer_pool.ts`): the first is
 *   taken on the first write after the queue emptied, more (each sized for what is queued, up to 256 KiB) while a
 *   slow reader lets bytes pile up, and each goes back once it is sent, so idle connections hold none. A chain, not one buffer grown by doubling:
 *   buffers past the pool's largest class were fresh allocations, copied into on every growth, page-faulted in and
 *   freed by the collector (~10% of Ferry's CPU in a bulk TLS download to a client that reads slower than Ferry
 *   seals: page faults, zeroing and copies in `append`);
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

/** The largest buffer of a connection's chain: the pool's largest class. */
const CHAIN_SEGMENT = 256 * 1024;

/** What an engine does once its output is empty (see {@link WriteBuffer.afterDrain}). */
export type AfterDrain = "close" | "shutdown" | undefined;

/**
 * A connection's write queue, counters, watermarks and flush-on-close state (see the module doc). The engine owns
 * the socket: it asks for the unsent bytes, tells what was taken (`consume`, `sent`), and says whether anything is
 * pending outside this buffer (a borrowed view, a write op in flight, a full socket) when closing.
 */
export class WriteBuffer {
  /** Pooled buffers holding the unsent bytes: `[#start, …)` of the first, every one but the last full. */
  #segs: Uint8Array[] = [];
  #start = 0;
  /** End of the bytes in the last buffer. */
  #end = 0;
  /** Pooled bytes waiting (the sum over the chain). */
  #length = 0;
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
    return this.#length;
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
   * engine can no longer keep as a view): into the room left in the last buffer, then into buffers taken from the
   * pool (the first sized for `data`, later ones for everything queued, at most the pool's largest class).
   */
  append(data: Uint8Array): void {
    let n = data.length;
    if (n === 0) return;
    const segs = this.#segs;
    this.#length += n;
    let from = 0;
    if (segs.length > 0) {
      const last = segs[segs.length - 1]!;
      const room = last.length - this.#end;
      if (n <= room) {
        last.set(data, this.#end);
        this.#end += n;
        return;
      }
      if (room > 0) {
        last.set(data.subarray(0, room), this.#end);
        from = room;
        n -= room;
      }
    }
    while (n > 0) {
      // Sized for what is queued (so a chain holds at most about twice its bytes, as doubling did), up to the
      // largest pooled class: a connection with a little over 16 KiB waiting does not hold 256 KiB.
      const seg = takeBuffer(Math.min(segs.length === 0 ? n : this.#length, CHAIN_SEGMENT));
      segs.push(seg);
      const k = n < seg.length ? n : seg.length;
      seg.set(from === 0 && k === data.length ? data : data.subarray(from, from + k), 0);
      this.#end = k;
      from += k;
      n -= k;
    }
  }

  /** Calls `onWriteBlocked` if the queue just passed the high watermark. */
  checkHigh(): void {
    if (!this.#blocked && this.#queued > this.#high) {
      this.#blocked = true;
      this.#listener.onWriteBlocked?.();
    }
  }

  /**
   * The first run of unsent pooled bytes, as a view (valid until the next `write`, `append`, `consume` or
   * `detach`); `length` may be larger when a chain of buffers waits: send this, `consume` it, and ask again.
   */
  unsent(): Uint8Array {
    return this.#segs[0]!.subarray(this.#start, this.#headEnd());
  }

  /** Where the bytes of the chain's first buffer end (it is full unless it is also the last). */
  #headEnd(): number {
    const segs = this.#segs;
    return segs.length === 1 ? this.#end : segs[0]!.length;
  }

  /** Drops `n` bytes the socket took from the front of `unsent()`; returns a buffer to the pool once it is sent. */
  consume(n: number): void {
    const segs = this.#segs;
    const start = this.#start + n;
    this.#length -= n;
    if (start < this.#headEnd()) {
      this.#start = start;
      return;
    }
    releaseBuffer(segs.shift()!);
    this.#start = 0;
    if (segs.length === 0) this.#end = 0;
  }

  /** Bytes the next {@link detach} hands over (those of the first buffer of the chain). */
  get headLength(): number {
    return this.#segs.length === 0 ? 0 : this.#headEnd() - this.#start;
  }

  /**
   * Hands the first pooled buffer of the chain to the engine (for a write op that outlives this call): its bytes are
   * `[0, headLength)` as read before the call (compacted to its front first). The engine returns it with
   * `releaseBuffer` when the op is done; the rest of the chain stays queued, and the next `write` goes behind it.
   */
  detach(): Uint8Array {
    const segs = this.#segs;
    const n = this.headLength;
    const buf = segs.shift()!;
    if (this.#start > 0) buf.copyWithin(0, this.#start, this.#start + n);
    this.#start = 0;
    this.#length -= n;
    if (segs.length === 0) this.#end = 0;
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
    for (const seg of this.#segs) releaseBuffer(seg);
    this.#segs = [];
    this.#start = this.#end = 0;
    this.#length = this.#queued = 0;
    this.#listener = noListener;
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
  }
}
