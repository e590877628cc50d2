/**
 * {@link DenoConnection}: a {@link NetConnection} over a `Deno.Conn` (TCP or TLS).
 *
 * One read loop per connection reads into a per-connection buffer and hands each chunk to the handler
 * synchronously. The buffer starts small (4 KiB) so that thousands of idle keep-alive connections stay cheap, and
 * doubles (up to 64 KiB) when a read fills it, so bulk transfers get large reads. Writes are copied into a queue
 * and flushed with one `write` per microtask turn (coalescing a response head and body into one syscall).
 *
 * **Read pacing.** When handling a chunk wrote to a connection (the other side of a proxy, or this one), the next
 * read is issued only once those bytes have gone to the OS, one event-loop turn later, instead of at once. The
 * relay then runs like a plain `read → await write → read` loop: a read issued while the write is still pending
 * costs Deno 8–14% more CPU per proxied exchange (measured side by side with two bare relays on one core), and it
 * buys nothing, because a write to a socket with room completes in the same turn. Large or slow writes are
 * bounded by the watermark as before; a peer that stops reading still stops this side, a little sooner.
 *
 * **Zero-copy relay.** Because of that pacing, the first write of a turn to an idle connection that passes a view
 * of the chunk being handled (tcp_proxy's case) is sent at once from that view, without a copy: the reading connection does not reuse
 * its buffer until that write is done. Copying ~100 bytes into a pooled buffer cost 3–5% of the CPU of a proxied
 * exchange in the same side-by-side measurement. Any later write of the turn copies as before. A view of the epoll
 * engine's read buffer (a plain upstream's response body on its way to a native TLS client) is not copied either:
 * the write takes that whole buffer over, the engine reads into another pooled one, and the buffer goes back to
 * the pool when the op is done. Not copying those 64 KiB chunks saved ~8% of the CPU per MiB of a native TLS
 * download (side by side, 4 rounds of 128 MiB: 1144 against 1231 µs/MiB).
 *
 * The write queue, the counts, the watermarks and flush-on-close are the {@link WriteBuffer} both engines share.
 *
 * @module
 */
import type { ConnectionHandler, IoEngine, NetConnection } from "../api/network.ts";
import { borrowChunkBuffer, releaseBuffer } from "./buffer_pool.ts";
import { WriteBuffer } from "./write_buffer.ts";
import { runtimeOpStarted } from "./_runtime_ops.ts";

const MIN_READ = 4 * 1024;
const MAX_READ = 64 * 1024;

let nextId = 1;

/**
 * The connection the current handler call last wrote to (see "Read pacing" in the module doc). Reset before each
 * chunk is handed to a handler and read right after: a write from elsewhere (a timer) is never mistaken for it.
 */
let lastWriter: DenoConnection | undefined;
/**
 * The buffer of the chunk being handed to a handler, and the connection that queued a view of it without copying
 * (see "Zero-copy relay" in the module doc): at most one per chunk.
 */
let readingBuffer: ArrayBufferLike | undefined;
let borrower: DenoConnection | undefined;
/** What the read loop paces on after a chunk: the borrower if any (it must), else the last writer. */
function takePacer(): DenoConnection | undefined {
  const w = borrower ?? lastWriter;
  lastWriter = borrower = readingBuffer = undefined;
  return w;
}

/** Allocates a process-unique connection id. */
export function nextConnectionId(): number {
  return nextId++;
}

const noopHandler: ConnectionHandler = {
  onData() {},
  onEof() {},
  onClose() {},
};

function addrOf(a: Deno.Addr): { host: string; port: number } {
  if (a.transport === "tcp" || a.transport === "udp") return { host: a.hostname, port: a.port };
  return { host: "path" in a ? String(a.path) : "", port: 0 };
}

/** Options for a {@link DenoConnection}. */
export interface ConnectionOptions {
  secure?: boolean;
  tls?: { version?: string; cipher?: string; sni?: string; alpn?: string };
  /** Queued-output limit that triggers `onWriteBlocked` (default 1 MiB). */
  highWatermark?: number;
}

/** A connection over a Deno conn. See the module doc. */
export class DenoConnection implements NetConnection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly tls?: { version?: string; cipher?: string; sni?: string; alpn?: string };
  readonly ioEngine: IoEngine = "runtime";
  readonly done: Promise<void>;

  #conn: Deno.Conn;
  #handler: ConnectionHandler = noopHandler;
  #started = false;
  #closed = false;
  #readDisabled = 0;
  #resumeRead: (() => void) | undefined;
  /** The read buffer: 4 KiB at first, doubled (up to 64 KiB) each time a read fills it. */
  #readBuf: Uint8Array | undefined;
  /**
   * Bytes written but not yet handed to the OS (accumulating for the next write op), the counts (in flight
   * included), watermarks and flush-on-close state.
   */
  readonly #out: WriteBuffer;
  /** A write op is in flight (`#inFlight`), or the loop in `#writeNext` runs. */
  #flushing = false;
  #flushScheduled = false;
  /** The socket belongs to another wrapper, which closes it (see {@link DenoConnection.closeHandedOff}). */
  #handedOff = false;
  #bytesRead = 0;
  #resolveDone!: () => void;
  #flushFn = () => this.#flush();
  /** The pooled buffer a `write` op is sending, and how far it got. */
  #inFlight: Uint8Array | undefined;
  #inFlightLen = 0;
  #inFlightOff = 0;
  /**
   * The pooled buffer to return when the op in flight is done: the detached write buffer, or the epoll engine's
   * read buffer taken over; undefined for a view of a reading connection's chunk.
   */
  #inFlightOwner: Uint8Array | undefined;
  /**
   * Chunks of the epoll engine's read buffers waiting behind the op in flight, each followed by the buffer it
   * views (taken over, returned to the pool once sent). Sent before the accumulated bytes, which came later.
   */
  #lent: Uint8Array[] | undefined;
  /** Reads paced on bytes now accumulating (`#acc`), and on the bytes of the write op in flight. */
  #accWaiters: (() => void)[] | undefined;
  #inFlightWaiters: (() => void)[] | undefined;

  constructor(conn: Deno.Conn, options: ConnectionOptions = {}) {
    this.#conn = conn;
    this.id = nextConnectionId();
    const r = addrOf(conn.remoteAddr);
    const l = addrOf(conn.localAddr);
    this.remoteAddress = r.host;
    this.remotePort = r.port;
    this.localAddress = l.host;
    this.localPort = l.port;
    this.secure = options.secure ?? false;
    if (options.tls) this.tls = options.tls;
    this.#out = new WriteBuffer(options.highWatermark);
    this.done = new Promise((res) => this.#resolveDone = res);
  }

  /** The underlying Deno conn (for TCP options such as nodelay). */
  get raw(): Deno.Conn {
    return this.#conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  get bytesWritten(): number {
    return this.#out.bytesWritten;
  }

  get bufferedAmount(): number {
    return this.#out.bufferedAmount;
  }

  setHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
    if (!this.#closed) this.#out.listener = handler;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#readBuf = new Uint8Array(MIN_READ);
    this.#readNext();
  }

  /**
   * The read loop, as bound callbacks rather than an async function (one promise per read: the op's). Each chunk
   * goes to the handler synchronously; a handler exception ends the connection like a read error.
   */
  #readNext(): void {
    if (this.#closed) return;
    if (this.#readDisabled > 0) {
      this.#resumeRead = this.#resume;
      return;
    }
    this.#conn.read(this.#readBuf!).then(this.#onRead, this.#onReadError);
    runtimeOpStarted();
  }

  #resume = (): void => {
    this.#resumeRead = undefined;
    this.#readNext();
  };

  #onRead = (n: number | null): void => {
    if (this.#closed) return;
    try {
      if (n === null) {
        this.#handler.onEof();
        // The handler may keep writing (half-close); the connection ends when it closes.
        return;
      }
      this.#bytesRead += n;
      const buf = this.#readBuf!;
      lastWriter = borrower = undefined;
      readingBuffer = buf.buffer;
      this.#handler.onData(buf.subarray(0, n));
      if (n === buf.length && buf.length < MAX_READ) this.#readBuf = new Uint8Array(buf.length * 2);
    } catch (e) {
      // A connection may hold a view of the buffer; the loop ends here, so nothing overwrites it.
      takePacer();
      this.#onReadError(e);
      return;
    }
    const w = takePacer();
    if (w !== undefined && w.#waitForFlush(this.#paced)) return;
    this.#readNext();
  };

  /** Resumes a read loop paced on another connection's flush (see "Read pacing"). */
  #paced = (): void => this.#readNext();

  /**
   * Keeps `fn` until the bytes accumulated so far have been written (or the connection closed) and returns true;
   * false when nothing is pending.
   */
  #waitForFlush(fn: () => void): boolean {
    if (this.#closed) return false;
    if (this.#out.length > 0) (this.#accWaiters ??= []).push(fn);
    else if (this.#inFlight !== undefined) (this.#inFlightWaiters ??= []).push(fn);
    else return false;
    return true;
  }

  static #callAll(list: (() => void)[]): void {
    for (const fn of list) {
      try {
        fn();
      } catch { /* a resumed read loop handles its own errors */ }
    }
  }

  #onReadError = (e: unknown): void => {
    const reason = this.#closed ? "local close" : `read error: ${e instanceof Error ? e.message : String(e)}`;
    if (!this.#closed) {
      try {
        // A reset can surface here; tell the handler the peer is gone before closing.
        this.#handler.onEof();
      } catch { /* handler errors must not escape */ }
    }
    this.#finish(reason);
  };

  write(data: Uint8Array): void {
    const n = data.length;
    const out = this.#out;
    if (this.#closed || out.writeClosed || n === 0) return;
    lastWriter = this;
    if (out.length === 0) {
      if (!this.#flushing && data.buffer === readingBuffer && borrower === undefined) {
        // A view of the chunk being handled, on an idle connection: send it now from the view, no copy, nothing to
        // coalesce it with (see "Zero-copy relay"). Later writes of the turn accumulate behind it.
        borrower = this;
        out.countBorrowed(n);
        this.#flushing = true;
        this.#send(data, n, undefined);
        return;
      }
      // A view of the epoll engine's read buffer (an upstream's response body): take the buffer over instead of
      // copying the chunk, and return it to the pool when its op is done (see "Zero-copy relay"). Behind an op in
      // flight it waits in `#lent`, ahead of anything accumulated later.
      const owner = borrowChunkBuffer(data);
      if (owner !== undefined) {
        out.countBorrowed(n);
        if (this.#flushing) (this.#lent ??= []).push(data, owner);
        else {
          this.#flushing = true;
          this.#send(data, n, owner);
        }
        return;
      }
    }
    // Append to the accumulation buffer (taken from the pool on the first write of a turn): one copy, no allocation
    // in steady state, one write syscall per flush.
    out.write(data);
    if (!this.#flushScheduled && !this.#flushing) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushFn);
    }
  }

  /**
   * Writes what accumulated, one `write` op at a time, without an async function: the continuation is a bound
   * callback, so a flush costs one promise (the op's) rather than two.
   */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#flushing) return;
    this.#writeNext();
  }

  #writeNext(): void {
    const lent = this.#lent;
    if (lent !== undefined && lent.length > 0) {
      if (this.#closed) this.#dropLent();
      else {
        const view = lent.shift()!, owner = lent.shift()!;
        this.#flushing = true;
        this.#send(view, view.length, owner);
        return;
      }
    }
    const out = this.#out;
    if (out.length === 0 || this.#closed) {
      this.#flushing = false;
      if (this.#closed) return;
      const then = out.afterDrain();
      if (then === "close") this.#finish("local close");
      else if (then === "shutdown") this.#doCloseWrite();
      return;
    }
    this.#flushing = true;
    // One pooled buffer of the chain per op; writes arriving while it is in flight queue behind the rest.
    const total = out.headLength;
    const buf = out.detach();
    this.#send(buf, total, buf);
  }

  /** Returns the read buffers queued behind the op in flight to the pool, unsent (the connection closed). */
  #dropLent(): void {
    const lent = this.#lent;
    if (lent === undefined) return;
    this.#lent = undefined;
    for (let i = 1; i < lent.length; i += 2) releaseBuffer(lent[i]!);
  }

  /**
   * Starts the write op for `buf[0, total)`; the bytes' paced readers now wait on it. `owner` is the pooled buffer
   * to return when the op is done (undefined for a view of a reading connection's chunk).
   */
  #send(buf: Uint8Array, total: number, owner: Uint8Array | undefined): void {
    this.#inFlightOwner = owner;
    this.#inFlight = buf;
    this.#inFlightLen = total;
    this.#inFlightOff = 0;
    this.#inFlightWaiters = this.#accWaiters;
    this.#accWaiters = undefined;
    this.#conn.write(buf.subarray(0, total)).then(this.#onWritten, this.#onWriteError);
    runtimeOpStarted();
  }

  #onWritten = (n: number): void => {
    const buf = this.#inFlight!;
    this.#inFlightOff += n;
    if (this.#inFlightOff < this.#inFlightLen && !this.#closed) {
      this.#conn.write(buf.subarray(this.#inFlightOff, this.#inFlightLen)).then(this.#onWritten, this.#onWriteError);
      runtimeOpStarted();
      return;
    }
    const total = this.#inFlightLen;
    this.#inFlight = undefined;
    const owner = this.#inFlightOwner;
    this.#inFlightOwner = undefined;
    if (owner !== undefined) releaseBuffer(owner);
    if (this.#closed) {
      this.#flushing = false;
      this.#dropLent();
      return;
    }
    this.#out.sent(total);
    const waiters = this.#inFlightWaiters;
    if (waiters !== undefined) {
      this.#inFlightWaiters = undefined;
      DenoConnection.#callAll(waiters);
    }
    this.#writeNext();
  };

  #onWriteError = (e: unknown): void => {
    this.#flushing = false;
    this.#inFlight = undefined;
    this.#inFlightOwner = undefined;
    this.#dropLent();
    this.#finish(this.#closed ? "local close" : `write error: ${e instanceof Error ? e.message : String(e)}`);
  };

  #doCloseWrite(): void {
    try {
      (this.#conn as Deno.TcpConn).closeWrite();
    } catch {
      // TLS conns or already-closed sockets: nothing more to do.
    }
  }

  closeWrite(): void {
    if (this.#closed || this.#out.writeClosed) return;
    if (this.#out.closeWrite(this.#out.length > 0 || this.#flushing)) this.#doCloseWrite();
  }

  close(options: { flush?: boolean; reason?: string } = {}): void {
    if (this.#closed) return;
    if (options.flush && (this.#out.length > 0 || this.#flushing)) {
      this.#out.closeAfterFlush(() => this.#finish("flush timeout"));
      return;
    }
    this.#finish(options.reason ?? "local close");
  }

  /**
   * Ends this wrapper without closing the socket, which another wrapper over the same `Deno.Conn` owns and has
   * closed (the native TLS fast path: the accounting wrapper follows the secure one). Closing it again would throw
   * inside Deno and build an error with a stack trace on every connection.
   */
  closeHandedOff(reason: string): void {
    if (this.#closed) return;
    this.#handedOff = true;
    this.#finish(reason);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    // The write buffer never holds the buffer a pending write op sends (#writeNext detaches that one first), so
    // its pooled buffer can go back now.
    this.#out.reset();
    if (!this.#handedOff) {
      try {
        this.#conn.close();
        runtimeOpStarted();
      } catch {
        // already closed
      }
    }
    this.#resumeRead?.();
    // Read loops paced on this connection's output go on (they will see their own state).
    const a = this.#accWaiters, f = this.#inFlightWaiters;
    this.#accWaiters = this.#inFlightWaiters = undefined;
    if (f !== undefined) DenoConnection.#callAll(f);
    if (a !== undefined) DenoConnection.#callAll(a);
    const h = this.#handler;
    this.#handler = noopHandler;
    try {
      h.onClose(reason);
    } finally {
      this.#resolveDone();
    }
  }

  readDisable(disable: boolean): void {
    if (disable) this.#readDisabled++;
    else if (this.#readDisabled > 0) {
      this.#readDisabled--;
      if (this.#readDisabled === 0) this.#resumeRead?.();
    }
  }
}

/** Connects over TCP with a timeout; rejects with the Deno error or a timeout error. */
export async function connectTcp(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<DenoConnection> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = Deno.connect({ hostname, port, transport: "tcp" });
  runtimeOpStarted();
  try {
    const conn = await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(
          () => rej(new ConnectTimeoutError(`connect to ${hostname}:${port} timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    conn.setNoDelay(true);
    return new DenoConnection(conn);
  } catch (e) {
    // If the timeout won, close the late connection when it arrives.
    p.then((c) => c.close(), () => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Thrown by {@link connectTcp} when the connect timeout expires. */
export class ConnectTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectTimeoutError";
  }
}
