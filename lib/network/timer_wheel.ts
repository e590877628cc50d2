/**
 * Cheap timers for the data path: a hashed timer wheel over one runtime timer.
 *
 * Every request arms a few timeouts (route timeout, stream idle timeout, per-try timeout) and nearly always
 * cancels them. A runtime `setTimeout` + `clearTimeout` pair measured 1.8–5.5 µs here, several per request; a
 * wheel entry is one Set insert and one Set delete (~0.1 µs). Deadlines are rounded up to {@link RESOLUTION_MS},
 * and one `setTimeout` is armed for the earliest bucket. Cancelling drops the callback at once, so a cancelled
 * timer never keeps a request's objects alive, and a bucket its last timer leaves is dropped with it: otherwise
 * every 4 ms tick that ever held a long timeout (a connection's idle timeout, cancelled when it closes a moment
 * later) kept an empty bucket and a heap entry until the tick came, an hour on for Envoy's default idle timeout
 * (measured: one retained bucket per handshake on a TLS listener, and scavenges growing from 1 to 10 ms).
 *
 * @module
 */

import { approxNow } from "./clock.ts";

/** Granularity of deadlines in milliseconds. */
export const RESOLUTION_MS = 4;

/** A scheduled callback. */
export class WheelTimer {
  fn: (() => void) | undefined;
  bucket: Bucket | undefined;

  constructor(fn: () => void, bucket: Bucket) {
    this.fn = fn;
    this.bucket = bucket;
  }

  /** Cancels the timer (idempotent). */
  cancel(): void {
    const b = this.bucket;
    if (b !== undefined) {
      b.delete(this);
      if (b.size === 0) dropBucket(b);
    }
    this.bucket = undefined;
    this.fn = undefined;
  }

  /** True until it fires or is cancelled. */
  get pending(): boolean {
    return this.fn !== undefined;
  }
}

/** A bucket: the timers due at one tick. */
type Bucket = Set<WheelTimer> & { readonly tick: number };

const buckets = new Map<number, Bucket>();
/**
 * Min-heap of ticks that have (or had) a bucket. A dropped bucket leaves its tick here, skipped when it comes up;
 * the heap is rebuilt from the live buckets when such ticks outnumber them.
 */
let heap: number[] = [];

/** Forgets an empty bucket (its heap entry goes lazily). */
function dropBucket(b: Bucket): void {
  if (buckets.get(b.tick) !== b) return; // already fired (or dropped)
  buckets.delete(b.tick);
  if (heap.length > 64 && heap.length > 2 * buckets.size) {
    heap = [...buckets.keys()].sort((x, y) => x - y); // sorted is a valid min-heap
  }
}
let armedTick = Infinity;
let handle: ReturnType<typeof setTimeout> | undefined;

function heapPush(t: number): void {
  let i = heap.push(t) - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (heap[p]! <= t) break;
    heap[i] = heap[p]!;
    i = p;
  }
  heap[i] = t;
}

function heapPop(): number {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]! < heap[l]! ? r : l;
      if (heap[c]! >= last) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
  }
  return top;
}

function arm(tick: number): void {
  if (handle !== undefined) clearTimeout(handle);
  armedTick = tick;
  handle = setTimeout(fire, Math.max(0, tick * RESOLUTION_MS - performance.now()));
  // The wheel never keeps a process alive by itself: sockets and servers do.
  Deno.unrefTimer(handle as unknown as number);
}

function fire(): void {
  handle = undefined;
  armedTick = Infinity;
  const nowTick = Math.floor(performance.now() / RESOLUTION_MS);
  while (heap.length > 0 && heap[0]! <= nowTick) {
    const tick = heapPop();
    const b = buckets.get(tick);
    if (!b) continue;
    buckets.delete(tick);
    for (const t of b) {
      const fn = t.fn;
      t.fn = undefined;
      t.bucket = undefined;
      if (fn) {
        try {
          fn();
        } catch (e) {
          console.error(`timer callback failed: ${e instanceof Error ? e.stack : String(e)}`);
        }
      }
    }
  }
  if (heap.length > 0) arm(heap[0]!);
}

/** Calls `fn` after about `ms` milliseconds (rounded up to the wheel's resolution). */
export function schedule(ms: number, fn: () => void): WheelTimer {
  const tick = Math.ceil((approxNow() + ms) / RESOLUTION_MS);
  let b = buckets.get(tick);
  if (b === undefined) {
    b = Object.assign(new Set<WheelTimer>(), { tick });
    buckets.set(tick, b);
    heapPush(tick);
  }
  const t = new WheelTimer(fn, b);
  b.add(t);
  if (tick < armedTick) arm(tick);
  return t;
}

/** Milliseconds until the wheel's runtime timer is due (Infinity when none is armed; negative when overdue). */
export function msUntilNextTimer(): number {
  return armedTick === Infinity ? Infinity : armedTick * RESOLUTION_MS - performance.now();
}

/** Number of pending timers (for tests and stats). */
export function pendingTimers(): number {
  let n = 0;
  for (const b of buckets.values()) n += b.size;
  return n;
}

/** Buckets and heap entries held (for tests: cancelled timers must not leave either behind for long). */
export function wheelFootprint(): { buckets: number; heap: number } {
  return { buckets: buckets.size, heap: heap.length };
}
