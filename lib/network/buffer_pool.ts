/**
 * The write-buffer pool shared by the socket engines ({@link takeBuffer}, {@link releaseBuffer}).
 *
 * @module
 */

/**
 * Write buffers are pooled by size class (16, 64 and 256 KiB): a connection takes one for the bytes of one event
 * loop turn and returns it when the write syscall completes, so idle connections hold none and busy ones allocate
 * nothing. Per-write `slice()` copies cost malloc/free and V8 external-memory accounting (7% of CPU in a profile
 * of the HTTP/1 benchmark, mostly `malloc_consolidate`/`_int_malloc`).
 */
const SMALL = 16 * 1024;
const LARGE = 64 * 1024;
/** Bulk TLS: 64 KiB of plaintext read from an upstream becomes a little over 64 KiB of records. */
const HUGE = 256 * 1024;
const POOL_LIMIT = 512;
const HUGE_POOL_LIMIT = 32;
const smallPool: Uint8Array[] = [];
const largePool: Uint8Array[] = [];
const hugePool: Uint8Array[] = [];

/**
 * An engine whose read buffer a writer may take over (the epoll engine: one shared 64 KiB buffer per isolate).
 *
 * A chunk handed to `onData` is a view of that buffer, valid only during the call. A writer whose send outlives
 * the call (a `Deno.Conn` write op) would otherwise copy the chunk; instead it takes the whole buffer with
 * {@link ReadLender.lendReadBuffer} (the engine reads into a fresh pooled one from then on) and returns it with
 * {@link releaseBuffer} when the op is done.
 */
export interface ReadLender {
  /** The buffer chunks being handled are views of. */
  readonly readArrayBuffer: ArrayBufferLike;
  /** True while a chunk of it is being handled. */
  readonly dispatching: boolean;
  /** Gives the current read buffer (whole, pooled size) to the caller and switches to another. */
  lendReadBuffer(): Uint8Array;
}

let lender: ReadLender | undefined;

/** Registers this isolate's {@link ReadLender} (the epoll engine, once it exists). */
export function setReadLender(l: ReadLender): void {
  lender = l;
}

/**
 * If `data` is a view of the chunk the lender is handling, takes the lender's buffer and returns it (the caller
 * owns it and returns it with {@link releaseBuffer}); otherwise undefined.
 */
export function borrowChunkBuffer(data: Uint8Array): Uint8Array | undefined {
  const l = lender;
  if (l === undefined || !l.dispatching || data.buffer !== l.readArrayBuffer) return undefined;
  return l.lendReadBuffer();
}

export function takeBuffer(min: number): Uint8Array {
  if (min <= SMALL) return smallPool.pop() ?? new Uint8Array(SMALL);
  if (min <= LARGE) return largePool.pop() ?? new Uint8Array(LARGE);
  if (min <= HUGE) return hugePool.pop() ?? new Uint8Array(HUGE);
  let cap = HUGE * 2;
  while (cap < min) cap *= 2;
  return new Uint8Array(cap);
}

export function releaseBuffer(b: Uint8Array): void {
  if (b.length === SMALL) {
    if (smallPool.length < POOL_LIMIT) smallPool.push(b);
  } else if (b.length === LARGE) {
    if (largePool.length < POOL_LIMIT) largePool.push(b);
  } else if (b.length === HUGE) {
    if (hugePool.length < HUGE_POOL_LIMIT) hugePool.push(b);
  }
}
