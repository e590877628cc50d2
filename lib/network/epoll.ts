/**
 * The epoll engine: plain TCP listeners and connections driven by Linux epoll through Deno's FFI, the way nginx
 * and Envoy's libevent loop drive theirs, instead of one promise-returning runtime op per read and per write.
 *
 * **Why.** A proxied request costs four socket operations (read downstream, write upstream, read upstream, write
 * downstream). Through `Deno.Conn` each is an async op: a promise, a future polled by the runtime, a wake-up, a
 * resolution. Measured side by side on one core (two bare relays, no Ferry code, same load), a relay calling
 * `recv`/`send` directly on non-blocking sockets after `epoll_wait` spends about 25% less CPU per exchange than the
 * tightest `read → await write → read` loop over `Deno.Conn`, and about 20% more than nginx's `stream` proxy.
 *
 * **The loop.** One epoll instance per isolate (the main thread, or each `SO_REUSEPORT` worker). While traffic flows,
 * the loop takes each batch with a synchronous `epoll_wait` and runs in immediate callbacks (`setImmediate`), not
 * in an async function: after every batch it drains the microtasks and `process.nextTick`s the batch caused, to the
 * end (a promise chain several hops long included), through Deno's core. Deno's own event loop turns (the loop
 * returns and comes back in an immediate) only when it has work: its own epoll instance was ready, other immediates
 * wait, a timer of the wheel is due, or, while Deno's reactor has work alongside the loop's, 20 ms passed since the
 * last turn. The loop used to turn after every batch more than 0.25 ms after the last turn, and to drain microtasks
 * by awaiting: with connections a few milliseconds apart that was a turn per batch, ~3.4 per TLCP handshake, each a
 * cold pass through Deno's event loop (~60 µs apiece measured in light traffic on a 2-core VM).
 *
 * **Runtime timers.** Deno keeps its timer queue in JavaScript (Node's design: one list per duration in a priority
 * queue, one native timer for the earliest), and its core exposes the function its native timer calls. The loop
 * asks it for the next expiry (with a time before every expiry it runs nothing), waits no longer than that, and
 * when a timer is due runs the due ones itself, as Deno's loop would; the native timer then finds nothing due and
 * re-arms. So `setTimeout` fires on time while the loop waits on its own thread, and an idle loop wakes only for
 * events and timers. It used to turn every 20 ms in case a runtime timer was due: with connections ~85 ms apart
 * (the TLS benchmark's `s_client`s) that was 3-4 cold turns per connection, ~520 µs of a TLCP resumed handshake's
 * ~1500 (A/B, alternating rounds of 100), and a silent TCP connect and close 40 ms apart went from 690 to 420 µs.
 * Timers inside the runtime's native code cannot be seen: it still turns at least every
 * {@link RUNTIME_TURN_MAX_MS}. Without that function (another Deno version) it turns every 20 ms as before.
 *
 * Between batches the loop waits on the isolate's own thread, as nginx's does, until the next event, the wheel's
 * next timer, the runtime's, or the next turn due: the runtime's own epoll instance (Deno's reactor, found at start
 * through a probe socket in `/proc/self/fdinfo`) is in the set meanwhile, so that its sockets and wake-ups end the
 * wait. When it alone is ready the wait is handed off (below), which lets the runtime run at once; after a hand-off
 * one turn runs the tasks its reactor woke before the thread may wait again. Only after a second without events for its own
 * descriptors (or where the runtime's instance is not found) does the loop hand the wait off, so that an idle process
 * sleeps: `epoll_wait` as a non-blocking FFI call, which blocks on a runtime thread and resolves a promise, with the
 * runtime's instance out of the set. The hand-off costs two extra thread wake-ups each way; measured on TLS
 * handshakes, waiting on the isolate's thread took the context switches per connection from 8 to 2 and the runtime
 * threads' CPU (about 30 µs per connection) out. Where the gaps of light traffic are long (40 ms per `s_client` on a
 * slower machine), turning between waits for up to a second instead of handing off took ~40 µs of the runtime
 * threads' CPU per TLCP resumed handshake to ~1 µs. Timers whose lateness a client would see (fault delays,
 * connection-limit delays, the TCP proxy's idle timeout, HTTP/2 drain and keep-alive timeouts) are on the wheel;
 * those left on `setTimeout` are intervals and control-plane timers (health checks, outlier detection, pool idle
 * timeouts, stats flushes).
 *
 * Sockets are level-triggered; every decision rests on a syscall's result (`recv`, `send`, `SO_ERROR`), and each
 * registration carries a token, so an event for a socket closed earlier in the same batch is dropped even when a new
 * socket has its number. The loop runs only while descriptors are registered and wakes itself (an `eventfd`) to end
 * when the last one goes, so no operation is left pending.
 *
 * **Reads.** One 64 KiB read buffer serves every connection of the isolate: a chunk handed to `onData` is valid
 * only during the call (the {@link NetConnection} contract), and nothing reads again until the call and the
 * writes it caused are done. Idle connections hold no buffer at all. A `Deno.Conn` writer, whose write op outlives
 * the call, takes the buffer over instead of copying the chunk (`ReadLender` in `buffer_pool.ts`), and the engine
 * goes on with another pooled one.
 *
 * **Writes.** Bytes written while an event is handled are sent with one `send` once the handler returns
 * (coalescing a response head and body); bytes written from elsewhere (a timer, a promise) are sent at the end of
 * the microtask turn. The first write of the turn to an idle connection that passes a view of the chunk being
 * handled (tcp_proxy's case) is sent from that view, without a copy. What the socket does not take is copied into
 * a pooled buffer and sent on `EPOLLOUT`; past the high watermark the handler is told to stop producing. The queue,
 * the counts, the watermarks and flush-on-close are the {@link WriteBuffer} both engines share.
 *
 * Used for plain TCP on Linux (x86_64, aarch64) when the process may use FFI; `Deno.listenTls` listeners,
 * host names that are not IP literals, and upstream connections opened for a `Deno.Conn` downstream (its
 * `ioEngine`: a request relayed between the two loops hands this loop's wait to a runtime thread about once per
 * request, ~23% of a proxied native TLS connection's CPU) keep the `Deno.Conn` engine ({@link DenoConnection}).
 * `FERRY_IO=deno` forces that engine everywhere.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { ConnectionHandler, IoEngine, NetConnection } from "../api/network.ts";
import { ConnectTimeoutError, nextConnectionId } from "./connection.ts";
import { formatIpv6, parseIpv4, parseIpv6 } from "./ip.ts";
import { getLogger } from "../observe/log.ts";
import { WriteBuffer } from "./write_buffer.ts";
import { setReadLender, takeBuffer } from "./buffer_pool.ts";
import { msUntilNextTimer, schedule } from "./timer_wheel.ts";
import { setRuntimeOpHook } from "./_runtime_ops.ts";

const log = getLogger("listener");

// Linux constants (the same on x86_64 and aarch64).
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ERROR = 4;
const SO_REUSEPORT = 15;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const TCP_NODELAY = 1;
const IPV6_V6ONLY = 26;
const MSG_NOSIGNAL = 0x4000;
const SHUT_WR = 1;
const SHUT_RDWR = 2;
const EINTR = 4;
const EAGAIN = 11;
const EMFILE = 24;
const ENFILE = 23;
const ENOBUFS = 105;
const ENOMEM = 12;
const EINPROGRESS = 115;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

const READ_SIZE = 64 * 1024;
/** {@link READ_SIZE} as the `size_t` argument of `recv` (see {@link Libc}). */
const READ_SIZE_ARG = BigInt(READ_SIZE);
/** The 8 bytes of an `eventfd` read or write, as a `size_t` argument. */
const EVENTFD_BYTES = 8n;
const MAX_EVENTS = 256;
/**
 * While Deno's reactor has work alongside the loop's, Deno's event loop turns at least this often (see "The loop");
 * always, where the loop cannot see the runtime's timers (then the bound on how late one may fire).
 */
const TURN_EVERY_MS = 20;
/**
 * Where the loop sees the runtime's timer queue (`runtimeTimers`), it waits for the next timer instead, and turns at
 * least this often only for what it cannot see: timers inside the runtime's native code.
 */
const RUNTIME_TURN_MAX_MS = 250;
/**
 * Batches since the last turn from which the loop counts as busy and turns every {@link TURN_EVERY_MS} again: more
 * than a few connections' worth (a TLS handshake takes 4), fewer than 20 ms of steady traffic brings.
 */
const BUSY_BATCHES = 16;
/**
 * After this long without an event for its own descriptors the loop hands the wait to a runtime thread, so that an
 * idle process sleeps (see "The loop").
 */
const IDLE_HANDOFF_MS = 1000;
/** Accepts per readiness event, so one busy listener cannot starve established connections. */
const MAX_ACCEPTS = 64;
const LISTEN_BACKLOG = 511;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // ssize_t results read as i32: every length here is below 2^31, and -1 stays -1.
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait_async: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/**
 * The symbols as called here. `size_t` lengths are passed as BigInts: Deno's fast call takes a 64-bit parameter
 * only as a BigInt, and optimized code that passed a number deoptimized ("not a BigInt") on every call it made
 * after each re-optimization: measured, the engine's `#dispatch`, `#readOnce`, `flush` and `onEvent` went
 * through 60 compile/deoptimize cycles per 1,000 TLS handshakes in steady state, the background compiler thread
 * used ~10% of the process's CPU, and the loop ran in unoptimized code. A BigInt argument of a fast call costs
 * no more than a number (0.13 µs per `write` call either way, against 0.23 µs for a number that deoptimizes).
 */
interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint32Array): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Uint8Array, len: Uint32Array, flags: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  getpeername(fd: number, addr: Uint8Array, len: Uint32Array): number;
  recv(fd: number, buf: Uint8Array, len: bigint, flags: number): number;
  send(fd: number, buf: Uint8Array, len: bigint, flags: number): number;
  read(fd: number, buf: BufferSource, len: bigint): number;
  write(fd: number, buf: BufferSource, len: bigint): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(ep: number, op: number, fd: number, event: Uint8Array): number;
  epoll_wait(ep: number, events: Uint8Array, max: number, timeout: number): number;
  epoll_wait_async(ep: number, events: Uint8Array, max: number, timeout: number): Promise<number>;
  eventfd(initval: number, flags: number): number;
  strerror(code: number): Deno.PointerValue;
  __errno_location(): Deno.PointerValue;
}

/** errno → the `Deno.errors` class the `Deno.Conn` engine would have thrown, so callers see one vocabulary. */
const ERROR_CLASSES: Record<number, string> = {
  1: "PermissionDenied",
  13: "PermissionDenied",
  32: "BrokenPipe",
  98: "AddrInUse",
  99: "AddrNotAvailable",
  103: "ConnectionAborted",
  104: "ConnectionReset",
  110: "TimedOut",
  111: "ConnectionRefused",
  113: "NetworkUnreachable",
  101: "NetworkUnreachable",
  107: "NotConnected",
};

let engine: Engine | null | undefined;

/**
 * The engine, or undefined where it cannot run (not Linux x86_64/aarch64, no FFI permission, `FERRY_IO=deno`).
 * Decided once per isolate.
 */
function getEngine(): Engine | undefined {
  if (engine !== undefined) return engine ?? undefined;
  engine = null;
  if (Deno.build.os !== "linux" || (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64")) return undefined;
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "FERRY_IO" }).state === "granted") {
      const v = Deno.env.get("FERRY_IO");
      if (v === "deno") return undefined;
    }
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    if (!denoCore) return undefined;
    engine = new Engine(Deno.dlopen("libc.so.6", SYMBOLS).symbols as unknown as Libc);
  } catch {
    engine = null;
  }
  return engine ?? undefined;
}

/**
 * How this isolate's loop waits (undefined without the engine): whether the runtime's epoll instance was found, so
 * that the loop may wait on the isolate's own thread while traffic flows, how many batches it woke, how many waits
 * went to a runtime thread, and how many turns of Deno's loop the running loop asked for.
 */
export function epollLoopCounts():
  | { runtimeFound: boolean; runtimeWakes: number; handOffs: number; turns: number }
  | undefined {
  const e = getEngine();
  return e && { runtimeFound: e.runtimeFound, runtimeWakes: e.runtimeWakes, handOffs: e.handOffs, turns: e.turns };
}

/** True when plain TCP sockets use the epoll engine in this isolate. */
export function epollAvailable(): boolean {
  return getEngine() !== undefined;
}

/** Something registered with the epoll instance. */
interface Pollable {
  onEvent(events: number): void;
}

/** The per-isolate epoll instance, its loop, the shared read buffer and the write batch (see the module doc). */
class Engine {
  readonly lib: Libc;
  readonly #ep: number;
  readonly #wakeFd: number;
  /** The runtime's own epoll instance, registered in ours (see "The loop"); -1 when it was not found. */
  readonly #runtimeEp: number;
  /** Whether {@link #runtimeEp} is in the set: only while the loop waits on this thread. */
  #runtimeWatched = false;
  /** Set by a batch in which the runtime's epoll instance was ready: Deno's loop must turn before the next wait. */
  #runtimeReady = false;
  /** Batches in which the runtime's instance was ready (for tests and diagnostics). */
  runtimeWakes = 0;
  /** Waits handed to a runtime thread (for tests and diagnostics). */
  handOffs = 0;
  /** Turns of Deno's loop the running loop asked for (for tests and diagnostics). */
  turns = 0;
  /** Batches of events dispatched so far (a listener tells from it whether it was ready in the previous one). */
  batches = 0;
  readonly #events = new Uint8Array(MAX_EVENTS * 16);
  readonly #eventView: DataView;
  readonly #evSize: number;
  readonly #dataOff: number;
  readonly #ctlBuf: Uint8Array;
  readonly #ctlView: DataView;
  readonly #errno: Deno.UnsafePointerView;
  readonly #table: (Pollable | undefined)[] = [];
  /**
   * The registration token of each descriptor, carried in the event's data next to it: an event reported for a
   * socket closed earlier in the same batch, whose number a new socket already reuses, is recognised and dropped.
   */
  readonly #tokens: number[] = [];
  #nextToken = 1;
  /** Registered descriptors (the wake eventfd aside); the loop runs while there are any. */
  #registered = 0;
  #running = false;
  #waiting = false;
  /** Events a hand-off's wait returned, for the next {@link #spin} to dispatch. */
  #pendingEvents = 0;
  /** False from a hand-off (or a batch the runtime's instance was in) until Deno's loop turned once. */
  #settled = false;
  /** When Deno's loop last turned for this loop, and when the last batch for our own descriptors came (ms). */
  #lastTurn = 0;
  #lastOwn = 0;
  /** When a batch last found the runtime's instance ready along with its own descriptors. */
  #lastRuntime = 0;
  /** {@link batches} at the last turn. */
  #batchesAtTurn = 0;
  /**
   * When Ferry last started a runtime op (`_runtime_ops.ts`: a `Deno.Conn` read, write or close, a connect, a native
   * TLS handshake). Such an op goes on in turns of Deno's loop, often several in a row (a write, then a close), and
   * its completion need not make Deno's epoll instance ready: for a second after one the loop turns every
   * TURN_EVERY_MS as it used to. Without this, native TLS requests proxied to an epoll upstream took ~0.3 s (the
   * 250 ms backstop) and sometimes until the client gave up.
   */
  #lastRuntimeOp = -Infinity;
  /** Set by the hook (no clock read per op); the loop stamps {@link #lastRuntimeOp} with its own `now`. */
  #runtimeOpSeen = false;
  readonly #spinFn = () => this.#spin();
  /** True while an event is being handled: writes then join the batch sent when its handler returns. */
  dispatching = false;
  /** The shared read buffer (see "Reads"); replaced when a writer takes it over ({@link lendReadBuffer}). */
  readBuf: Uint8Array = takeBuffer(READ_SIZE);
  readArrayBuffer: ArrayBufferLike;
  /** Connections with bytes to send at the end of the current event or microtask turn. */
  readonly #dirty: EpollConnection[] = [];
  #flushQueued = false;
  readonly #flushFn = () => {
    this.#flushQueued = false;
    this.flushDirty();
  };
  /** Scratch buffers for socket addresses and option values. */
  readonly addrBuf = new Uint8Array(128);
  readonly lenBuf = new Uint32Array(1);
  readonly intBuf = new Int32Array(1);
  readonly #wakeBuf = new BigUint64Array([1n]);

  constructor(lib: Libc) {
    this.lib = lib;
    this.readArrayBuffer = this.readBuf.buffer;
    setReadLender(this);
    // A Deno.Conn op started while the loop runs needs turns of Deno's loop to go on: one before the next wait.
    setRuntimeOpHook(() => {
      this.#settled = false;
      this.#runtimeOpSeen = true;
    });
    // struct epoll_event is packed on x86_64 (12 bytes), naturally aligned elsewhere (16).
    this.#evSize = Deno.build.arch === "x86_64" ? 12 : 16;
    this.#dataOff = Deno.build.arch === "x86_64" ? 4 : 8;
    this.#eventView = new DataView(this.#events.buffer);
    this.#ctlBuf = new Uint8Array(16);
    this.#ctlView = new DataView(this.#ctlBuf.buffer);
    const p = lib.__errno_location();
    if (p === null) throw new Error("no errno location");
    this.#errno = new Deno.UnsafePointerView(p);
    this.#ep = lib.epoll_create1(EPOLL_CLOEXEC);
    if (this.#ep < 0) throw this.error("epoll_create1");
    this.#wakeFd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakeFd < 0) throw this.error("eventfd");
    if (this.#ctl(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN) < 0) throw this.error("epoll_ctl");
    this.#runtimeEp = findRuntimeEpoll() ?? -1;
  }

  /** Whether the runtime's epoll instance was found (see "The loop"). */
  get runtimeFound(): boolean {
    return this.#runtimeEp >= 0;
  }

  errno(): number {
    return this.#errno.getInt32();
  }

  /** An Error for the current errno, of the class `Deno.Conn` would have used, with Rust's message format. */
  error(what?: string, code = this.errno()): Error {
    const p = this.lib.strerror(code);
    const text = p === null ? `error ${code}` : Deno.UnsafePointerView.getCString(p);
    const message = `${what ? `${what}: ` : ""}${text} (os error ${code})`;
    const name = ERROR_CLASSES[code];
    const Ctor = name ? (Deno.errors as unknown as Record<string, ErrorConstructor | undefined>)[name] : undefined;
    return Ctor ? new Ctor(message) : new Error(message);
  }

  #ctl(op: number, fd: number, events: number, token = 0): number {
    const v = this.#ctlView;
    v.setUint32(0, events, true);
    v.setInt32(this.#dataOff, fd, true);
    v.setInt32(this.#dataOff + 4, token, true);
    return this.lib.epoll_ctl(this.#ep, op, fd, this.#ctlBuf);
  }

  /**
   * Gives the read buffer to a writer whose send outlives the handler call (see `ReadLender`): later reads go
   * into another pooled buffer. The chunk being handled stays valid, and the writer returns the buffer to the pool.
   */
  lendReadBuffer(): Uint8Array {
    const lent = this.readBuf;
    this.readBuf = takeBuffer(READ_SIZE);
    this.readArrayBuffer = this.readBuf.buffer;
    return lent;
  }

  /** Registers `fd` (mask 0 → `mask` ≠ 0). Throws on failure. */
  add(fd: number, p: Pollable, mask: number): void {
    const token = this.#nextToken;
    this.#nextToken = token === 0x7fffffff ? 1 : token + 1;
    if (this.#ctl(EPOLL_CTL_ADD, fd, mask, token) < 0) throw this.error("epoll_ctl");
    this.#table[fd] = p;
    this.#tokens[fd] = token;
    this.#registered++;
    if (!this.#running) {
      this.#running = true;
      this.#lastOwn = performance.now();
      this.#handOff();
    }
  }

  modify(fd: number, mask: number): void {
    if (this.#ctl(EPOLL_CTL_MOD, fd, mask, this.#tokens[fd]) < 0) throw this.error("epoll_ctl");
  }

  /** Unregisters `fd` (it stays open). */
  remove(fd: number): void {
    this.#ctl(EPOLL_CTL_DEL, fd, 0);
    this.#forget(fd);
  }

  /** Closes a registered descriptor (the kernel drops it from the epoll set). */
  closeRegistered(fd: number): void {
    this.#ctl(EPOLL_CTL_DEL, fd, 0);
    this.lib.close(fd);
    this.#forget(fd);
  }

  #forget(fd: number): void {
    if (this.#table[fd] === undefined) return;
    this.#table[fd] = undefined;
    this.#registered--;
    // Let a waiting loop return so that it can end (no operation outlives the last socket).
    if (this.#registered === 0 && this.#waiting) this.lib.write(this.#wakeFd, this.#wakeBuf, EVENTFD_BYTES);
  }

  /**
   * The loop (see "The loop"). It runs in immediate callbacks, not in an async function's continuations, so that it
   * can drain the microtasks (and `process.nextTick`s) that the events caused to the end itself: a promise chain
   * several hops long (a handshake resolving into the filter chain's setup) finishes before the thread waits again,
   * without handing control back to Deno's loop for it. It hands control back (an immediate: one turn of Deno's
   * loop) only when Deno's loop has work: its own epoll instance was ready, other immediates are queued, a timer of
   * the wheel is due, or {@link TURN_EVERY_MS} passed since the last turn (runtime timers). An earlier loop turned
   * after every batch more than 0.25 ms after the last turn: with connections a few milliseconds apart that was
   * every batch, ~3.4 turns per TLCP handshake (measured), each a cold pass through Deno's event loop.
   */
  #spin(): void {
    const lib = this.lib, ep = this.#ep, events = this.#events;
    let n = this.#pendingEvents;
    this.#pendingEvents = 0;
    this.#watchRuntime(true);
    for (;;) {
      if (n > 0) {
        const own = this.#dispatch(n);
        const runtime = this.#runtimeReady;
        this.#runtimeReady = false;
        drainTicks();
        if (runtime) {
          this.runtimeWakes++;
          if (own === 0) {
            // Only the runtime's instance was ready (a socket of the admin API or a native TLS listener, a
            // wake-up). Its reactor is polled only every few dozen turns of a loop that keeps waking itself, so
            // turns would spin until then: hand the wait off instead, which lets it run at once.
            this.#handOff();
            return;
          }
          // The tasks its reactor woke run in a turn of Deno's loop, before this thread may wait again.
          this.#settled = false;
          this.#lastRuntime = performance.now();
        }
        if (own > 0) this.#lastOwn = performance.now();
      }
      if (this.#registered === 0) {
        this.#running = false;
        return;
      }
      const now = performance.now();
      if (this.#runtimeOpSeen) {
        this.#runtimeOpSeen = false;
        this.#lastRuntimeOp = now;
      }
      // While Deno's reactor has work alongside the loop's, or the loop is busy, it turns at least every
      // TURN_EVERY_MS: turning only on the batches that found the reactor ready, Deno sockets next to a busy loop
      // made no progress for seconds (the busy-loop test), and native TLS clients beside wrk got a third of their
      // requests through (the hot-restart test). Otherwise, where it sees the runtime's timers, it waits for them.
      const turnEvery = runtimeTimers === undefined || now - this.#lastRuntime < 2 * TURN_EVERY_MS ||
          this.batches - this.#batchesAtTurn >= BUSY_BATCHES || now - this.#lastRuntimeOp < IDLE_HANDOFF_MS
        ? TURN_EVERY_MS
        : RUNTIME_TURN_MAX_MS;
      if (!this.#settled || msUntilNextTimer() <= 0 || immediatesQueued() || now - this.#lastTurn >= turnEvery) {
        // One turn of Deno's own event loop (its timers, native TLS, the admin API), without a thread hand-off.
        this.#settled = true;
        this.#lastTurn = now;
        this.#batchesAtTurn = this.batches;
        this.turns++;
        setImmediate(this.#spinFn);
        return;
      }
      if (!this.#runtimeWatched || now - this.#lastOwn >= IDLE_HANDOFF_MS) {
        // Idle for a second (or the runtime's instance cannot be watched): wait on a runtime thread.
        this.#handOff();
        return;
      }
      let runtimeWait = this.#lastTurn + turnEvery - now;
      if (runtimeTimers !== undefined) {
        const timer = msUntilRuntimeTimer();
        if (timer <= 0) {
          // Run them here rather than in a turn: Deno's native timer may be a millisecond behind the clock they
          // are due by, and turns until it fires would spin.
          runDueRuntimeTimers();
          drainTicks();
          n = 0;
          continue;
        }
        runtimeWait = Math.min(runtimeWait, timer);
      }
      // Wait on this thread until an event, the wheel's next timer, the runtime's or the next turn due.
      const wait = Math.max(0, Math.ceil(Math.min(msUntilNextTimer(), runtimeWait)));
      n = lib.epoll_wait(ep, events, MAX_EVENTS, wait);
    }
  }

  /**
   * Waits on a runtime thread (about 10 µs of hand-off on one core), with the runtime's instance out of the set: its
   * work must not wake that thread too. The events are dispatched in the next turn, by {@link #spin}.
   */
  async #handOff(): Promise<void> {
    this.#watchRuntime(false);
    this.#waiting = true;
    this.handOffs++;
    let n = 0;
    try {
      n = await this.lib.epoll_wait_async(this.#ep, this.#events, MAX_EVENTS, -1);
    } finally {
      this.#waiting = false;
    }
    if (n < 0) n = 0;
    // The tasks the runtime's reactor woke meanwhile are queued behind this loop: one turn runs them before the
    // thread may wait on its own again.
    this.#settled = false;
    if (n > 0) this.#lastOwn = performance.now();
    this.#pendingEvents = n;
    if (this.#registered === 0) {
      this.#running = false;
      return;
    }
    setImmediate(this.#spinFn);
  }

  /** Adds the runtime's epoll instance to the set (`on`) or takes it out, when it was found. */
  #watchRuntime(on: boolean): void {
    if (this.#runtimeEp < 0 || this.#runtimeWatched === on) return;
    if (this.#ctl(on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, this.#runtimeEp, on ? EPOLLIN : 0) === 0) {
      this.#runtimeWatched = on;
    }
  }

  /** Handles a batch of `n` events; returns how many were for registered descriptors. */
  #dispatch(n: number): number {
    this.batches++;
    let own = 0;
    const v = this.#eventView;
    const size = this.#evSize, off = this.#dataOff;
    for (let i = 0; i < n; i++) {
      const events = v.getUint32(i * size, true);
      const fd = v.getInt32(i * size + off, true);
      const p = this.#table[fd];
      if (p === undefined || this.#tokens[fd] !== v.getInt32(i * size + off + 4, true)) {
        if (fd === this.#wakeFd) this.lib.read(this.#wakeFd, this.#wakeBuf, EVENTFD_BYTES);
        else if (fd === this.#runtimeEp) this.#runtimeReady = true;
        continue;
      }
      own++;
      this.dispatching = true;
      try {
        p.onEvent(events);
      } catch (e) {
        reportUncaught(e);
      } finally {
        this.dispatching = false;
      }
      if (this.#dirty.length > 0) this.flushDirty();
    }
    return own;
  }

  /** Queues a connection's send for the end of the current event (or microtask turn). */
  markDirty(c: EpollConnection): void {
    this.#dirty.push(c);
    if (!this.dispatching && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushFn);
    }
  }

  flushDirty(): void {
    const d = this.#dirty;
    // A flush can mark more connections (a handler writing from onWriteDrained); take them in this pass.
    for (let i = 0; i < d.length; i++) {
      try {
        d[i]!.flush();
      } catch (e) {
        reportUncaught(e);
      }
    }
    d.length = 0;
  }

  /** Parses the sockaddr in `addrBuf`. */
  parseAddr(): { host: string; port: number } {
    const b = this.addrBuf;
    const family = b[0]! | (b[1]! << 8);
    const port = (b[2]! << 8) | b[3]!;
    if (family === AF_INET) return { host: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port };
    if (family === AF_INET6) return { host: formatIpv6(b.subarray(8, 24)), port };
    return { host: "", port: 0 };
  }
}

function reportUncaught(e: unknown): void {
  // Handlers catch their own errors; one escaping here is a bug, and must not stop the loop.
  log.error(`epoll engine: uncaught handler error: ${e instanceof Error ? e.stack : String(e)}`);
}

/** Writes `host:port` into a sockaddr; undefined when `host` is not an IPv4 or IPv6 literal. */
function sockaddr(host: string, port: number): { addr: Uint8Array; family: number } | undefined {
  const v4 = parseIpv4(host);
  if (v4) return { addr: sockaddrOf(AF_INET, 16, port, v4, 4), family: AF_INET };
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  // A zone index (fe80::1%eth0) needs a scope id in the sockaddr: such a host goes to Deno.
  const v6 = h.includes("%") ? undefined : parseIpv6(h);
  if (!v6) return undefined;
  return { addr: sockaddrOf(AF_INET6, 28, port, v6, 8), family: AF_INET6 };
}

/** `sockaddr_in` / `sockaddr_in6`: family (host order), port (network order), the address bytes at `at`. */
function sockaddrOf(family: number, size: number, port: number, ip: Uint8Array, at: number): Uint8Array {
  const a = new Uint8Array(size);
  a[0] = family;
  a[2] = port >> 8;
  a[3] = port & 0xff;
  a.set(ip, at);
  return a;
}

/** Options for {@link EpollConnection}. */
export interface EpollConnectionOptions {
  /** Queued-output limit that triggers `onWriteBlocked` (default 1 MiB). */
  highWatermark?: number;
  /** The local address when it is known (accepted on a listener bound to one address); else looked up on demand. */
  local?: { host: string; port: number };
}

const noopHandler: ConnectionHandler = {
  onData() {},
  onEof() {},
  onClose() {},
};

/** A plain TCP connection on the epoll engine. See the module doc. */
export class EpollConnection implements NetConnection, Pollable {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly secure = false;
  readonly ioEngine: IoEngine = "epoll";
  readonly done: Promise<void>;

  readonly #e: Engine;
  readonly #fd: number;
  #local: { host: string; port: number } | undefined;
  #handler: ConnectionHandler = noopHandler;
  #started = false;
  #closed = false;
  #eof = false;
  #readDisabled = 0;
  /** The epoll interest currently registered (0: not registered). */
  #mask = 0;
  /** A connect in progress (waiting for `EPOLLOUT`), with its completion. */
  #connecting: ((err: Error | undefined) => void) | undefined;
  /** Output not yet taken by the socket: a borrowed view of the read buffer, or the write buffer's pooled bytes. */
  #borrow: Uint8Array | undefined;
  /** The queue, counts, watermarks and flush-on-close state. */
  readonly #out: WriteBuffer;
  /** In the engine's flush batch. */
  #dirty = false;
  /** The socket was full: the rest goes on `EPOLLOUT`. */
  #waitOut = false;
  #bytesRead = 0;
  #resolveDone!: () => void;

  /** @internal Use {@link EpollListener} or {@link connectEpoll}. */
  constructor(e: Engine, fd: number, remote: { host: string; port: number }, options: EpollConnectionOptions = {}) {
    this.#e = e;
    this.#fd = fd;
    this.id = nextConnectionId();
    this.remoteAddress = remote.host;
    this.remotePort = remote.port;
    this.#out = new WriteBuffer(options.highWatermark);
    this.#local = options.local;
    this.done = new Promise((res) => this.#resolveDone = res);
  }

  /**
   * @experimental Takes over a connected TCP socket this process holds (one a previous Ferry handed over at a hot
   * upgrade, `lib/server/hot_restart.ts`). Undefined when the engine is not in use here; throws if `fd` is not a
   * connected socket. Returned unstarted, without a handler, as an accepted connection.
   */
  static adopt(fd: number, options: EpollConnectionOptions = {}): EpollConnection | undefined {
    const e = getEngine();
    if (!e) return undefined;
    e.lenBuf[0] = e.addrBuf.length;
    if (e.lib.getpeername(fd, e.addrBuf, e.lenBuf) < 0) throw e.error("getpeername");
    return new EpollConnection(e, fd, e.parseAddr(), options);
  }

  /**
   * @experimental Lets go of the socket without closing it, for another process to take (a hot upgrade sends the
   * descriptor, then closes this process's copy: the peer sees nothing). Only when nothing is queued to send, no
   * connect is pending and the peer has not ended its side; then the handler gets `onClose("migrated")` and the
   * descriptor is returned, else undefined and nothing changes. Bytes the peer sent and this process did not read
   * stay in the socket for the new owner.
   */
  detach(): number | undefined {
    if (this.#closed || this.#connecting !== undefined || this.#pending() || this.#out.writeClosed || this.#eof) {
      return undefined;
    }
    this.#closed = true;
    this.#out.reset();
    if (this.#local === undefined) this.#localAddr();
    if (this.#mask !== 0) this.#e.remove(this.#fd);
    this.#mask = 0;
    const h = this.#handler;
    this.#handler = noopHandler;
    try {
      h.onClose("migrated");
    } finally {
      this.#resolveDone();
    }
    return this.#fd;
  }

  #localAddr(): { host: string; port: number } {
    if (this.#local === undefined) {
      const e = this.#e;
      e.lenBuf[0] = e.addrBuf.length;
      this.#local = e.lib.getsockname(this.#fd, e.addrBuf, e.lenBuf) === 0 ? e.parseAddr() : { host: "", port: 0 };
    }
    return this.#local;
  }

  get localAddress(): string {
    return this.#localAddr().host;
  }

  get localPort(): number {
    return this.#localAddr().port;
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
    this.#updateInterest();
  }

  /** Registers the wanted interest: reading (started, not paused, no EOF yet), and output or a connect pending. */
  #updateInterest(): void {
    if (this.#closed) return;
    const want = (this.#started && !this.#eof && this.#readDisabled === 0 ? EPOLLIN : 0) |
      (this.#waitOut || this.#connecting !== undefined ? EPOLLOUT : 0);
    const had = this.#mask;
    if (want === had) return;
    this.#mask = want;
    // Not registered at all when nothing is wanted: a hung-up socket would otherwise report EPOLLHUP forever.
    if (had === 0) this.#e.add(this.#fd, this, want);
    else if (want === 0) this.#e.remove(this.#fd);
    else this.#e.modify(this.#fd, want);
  }

  /** @internal */
  onEvent(events: number): void {
    if (this.#connecting !== undefined) {
      this.#finishConnect();
      return;
    }
    // Error and hang-up flags come with either interest; the syscalls below tell what happened.
    if (this.#waitOut && (events & ~EPOLLIN) !== 0) {
      this.#waitOut = false;
      this.flush();
      if (!this.#waitOut) this.#updateInterest();
      if (this.#closed) return;
    }
    if ((this.#mask & EPOLLIN) !== 0 && (events & ~EPOLLOUT) !== 0) this.#readOnce();
  }

  #readOnce(): void {
    const e = this.#e;
    const n = e.lib.recv(this.#fd, e.readBuf, READ_SIZE_ARG, 0);
    if (n > 0) {
      this.#bytesRead += n;
      try {
        this.#handler.onData(e.readBuf.subarray(0, n));
      } catch (err) {
        this.#readError(err);
      }
      return;
    }
    if (n === 0) {
      this.#eof = true;
      this.#updateInterest();
      try {
        // The handler may keep writing (half-close); the connection ends when it closes.
        this.#handler.onEof();
      } catch (err) {
        this.#readError(err);
      }
      return;
    }
    const code = e.errno();
    if (code === EAGAIN || code === EINTR) return;
    this.#readError(e.error(undefined, code));
  }

  #readError(err: unknown): void {
    if (this.#closed) return;
    const reason = `read error: ${err instanceof Error ? err.message : String(err)}`;
    if (!this.#eof) {
      this.#eof = true;
      try {
        // A reset surfaces here; tell the handler the peer is gone before closing.
        this.#handler.onEof();
      } catch { /* handler errors must not escape */ }
    }
    this.#finish(reason);
  }

  write(data: Uint8Array): void {
    const n = data.length;
    const out = this.#out;
    if (this.#closed || out.writeClosed || n === 0) return;
    const e = this.#e;
    if (
      e.dispatching && data.buffer === e.readArrayBuffer && out.length === 0 && this.#borrow === undefined &&
      !this.#waitOut
    ) {
      // A view of the chunk being handled, to an idle connection: sent from the view when the handler returns,
      // before the next read.
      this.#borrow = data;
      out.countBorrowed(n);
      this.#markDirty();
      return;
    }
    if (this.#borrow !== undefined) {
      // Coalesce: the borrowed view goes into the buffer first, this write behind it.
      const b = this.#borrow;
      this.#borrow = undefined;
      out.append(b);
    }
    out.write(data);
    if (!this.#waitOut) this.#markDirty();
  }

  #markDirty(): void {
    if (this.#dirty) return;
    this.#dirty = true;
    this.#e.markDirty(this);
  }

  /** @internal Sends what is queued, as far as the socket takes it (called by the engine's flush batch). */
  flush(): void {
    this.#dirty = false;
    if (this.#closed || this.#waitOut) return;
    const borrowed = this.#borrow;
    const out = this.#out;
    let data: Uint8Array;
    if (borrowed !== undefined) data = borrowed;
    else if (out.length > 0) data = out.unsent();
    else return this.#drained();
    const e = this.#e;
    let len = data.length;
    let n = e.lib.send(this.#fd, data, BigInt(len), MSG_NOSIGNAL);
    while (n === len) {
      if (borrowed === undefined) out.consume(n);
      else this.#borrow = undefined;
      out.sent(n);
      // A chain of pooled buffers (a backlog): send the next while the socket takes it whole.
      if (borrowed !== undefined || out.length === 0 || this.#closed) {
        this.#drained();
        return;
      }
      data = out.unsent();
      len = data.length;
      n = e.lib.send(this.#fd, data, BigInt(len), MSG_NOSIGNAL);
    }
    if (n < 0) {
      const code = e.errno();
      if (code !== EAGAIN && code !== EINTR) {
        this.#finish(`write error: ${e.error(undefined, code).message}`);
        return;
      }
    }
    const took = n > 0 ? n : 0;
    if (borrowed !== undefined) {
      // The read buffer is about to be reused: keep the rest in a buffer of our own.
      this.#borrow = undefined;
      out.append(borrowed.subarray(took));
    } else if (took > 0) out.consume(took);
    if (took > 0) out.sent(took);
    this.#waitOut = true;
    this.#updateInterest();
  }

  /** Everything queued is written: a pending close or half-close goes ahead. */
  #drained(): void {
    // A handler called from the flush (onWriteDrained) may have queued more: the close waits for those too.
    if (this.#closed || this.#pending()) return;
    const then = this.#out.afterDrain();
    if (then === "close") this.#finish("local close");
    else if (then === "shutdown") this.#doCloseWrite();
  }

  #pending(): boolean {
    return this.#borrow !== undefined || this.#out.length > 0 || this.#waitOut;
  }

  #doCloseWrite(): void {
    this.#e.lib.shutdown(this.#fd, SHUT_WR);
  }

  closeWrite(): void {
    if (this.#closed || this.#out.writeClosed) return;
    if (this.#out.closeWrite(this.#pending())) this.#doCloseWrite();
  }

  close(options: { flush?: boolean; reason?: string } = {}): void {
    if (this.#closed) return;
    if (options.flush && this.#pending()) {
      this.#out.closeAfterFlush(() => this.#finish("flush timeout"));
      return;
    }
    this.#finish(options.reason ?? "local close");
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.reset();
    this.#borrow = undefined;
    // Access logs may ask for the local address after the close; the descriptor number is then someone else's.
    if (this.#local === undefined) this.#localAddr();
    if (this.#mask !== 0) this.#e.closeRegistered(this.#fd);
    else this.#e.lib.close(this.#fd);
    this.#mask = 0;
    const c = this.#connecting;
    if (c !== undefined) {
      this.#connecting = undefined;
      c(new Deno.errors.ConnectionAborted(reason));
    }
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
    else if (this.#readDisabled > 0) this.#readDisabled--;
    else return;
    this.#updateInterest();
  }

  /** @internal Waits for a non-blocking connect (see {@link connectEpoll}). */
  awaitConnect(done: (err: Error | undefined) => void): void {
    this.#connecting = done;
    this.#updateInterest();
  }

  #finishConnect(): void {
    const e = this.#e;
    e.intBuf[0] = 0;
    e.lenBuf[0] = 4;
    const r = e.lib.getsockopt(this.#fd, SOL_SOCKET, SO_ERROR, new Uint8Array(e.intBuf.buffer), e.lenBuf);
    const code = r < 0 ? e.errno() : e.intBuf[0]!;
    if (code === EINPROGRESS || code === EINTR) return;
    const done = this.#connecting!;
    this.#connecting = undefined;
    if (code !== 0) {
      const err = e.error(undefined, code);
      this.#finish(`connect error: ${err.message}`);
      done(err);
      return;
    }
    this.#updateInterest();
    done(undefined);
  }
}

/** A listening socket on the epoll engine. */
export class EpollListener implements Pollable {
  readonly hostname: string;
  readonly port: number;
  readonly #e: Engine;
  readonly #fd: number;
  #onAccept: ((c: EpollConnection) => void) | undefined;
  #onError: ((e: Error) => void) | undefined;
  #registered = false;
  #closed = false;
  /** Accepting paused ({@link EpollListener.pause}): connections wait in the kernel backlog. */
  #paused = false;
  #backoff: ReturnType<typeof setTimeout> | undefined;
  readonly #one = new Uint8Array(new Int32Array([1]).buffer);
  readonly #inheritsNoDelay: boolean;
  readonly #connOptions: EpollConnectionOptions;
  /** The engine's batch in which this listener last accepted (see {@link EpollListener.onEvent}). */
  #acceptBatch = -2;
  #resolveClosed!: () => void;
  /** Resolves once the listener is closed. */
  readonly closed: Promise<void>;

  private constructor(e: Engine, fd: number, hostname: string, port: number, highWatermark?: number) {
    this.#e = e;
    this.#fd = fd;
    // Accepted sockets inherit TCP_NODELAY from the listening one (Linux copies it at the handshake): one syscall
    // here instead of one per connection. Where it does not take, each accepted socket gets it.
    this.#inheritsNoDelay = e.lib.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, this.#one, 4) === 0;
    this.hostname = hostname;
    this.port = port;
    // A socket accepted on a listener bound to one address has that address: no getsockname per connection. A
    // wildcard listener's connections look theirs up when asked.
    const wildcard = hostname === "0.0.0.0" || hostname === "::";
    this.#connOptions = {
      ...(highWatermark !== undefined ? { highWatermark } : {}),
      ...(wildcard ? {} : { local: { host: hostname, port } }),
    };
    this.closed = new Promise((r) => this.#resolveClosed = r);
  }

  /**
   * Binds and listens. Undefined when the engine is not in use here or `hostname` is not an IP literal (use
   * `Deno.listen`); throws the OS error (e.g. `Deno.errors.AddrInUse`) when the address cannot be bound.
   */
  static listen(
    options: { hostname: string; port: number; reusePort?: boolean; highWatermark?: number },
  ): EpollListener | undefined {
    const e = getEngine();
    if (!e) return undefined;
    const sa = sockaddr(options.hostname, options.port);
    if (!sa) return undefined;
    const lib = e.lib;
    const fd = lib.socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw e.error();
    const one = new Uint8Array(new Int32Array([1]).buffer);
    const zero = new Uint8Array(4);
    try {
      // As Rust's std and Deno do: reuse TIME_WAIT addresses; IPv6 listeners stay dual-stack per the system default.
      if (lib.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) throw e.error();
      if (options.reusePort && lib.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) < 0) throw e.error();
      if (sa.family === AF_INET6 && options.hostname !== "::" && options.hostname !== "[::]") {
        lib.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
      } else if (sa.family === AF_INET6) lib.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, zero, 4);
      if (lib.bind(fd, sa.addr, sa.addr.length) < 0) throw e.error();
      if (lib.listen(fd, LISTEN_BACKLOG) < 0) throw e.error();
      e.lenBuf[0] = e.addrBuf.length;
      if (lib.getsockname(fd, e.addrBuf, e.lenBuf) < 0) throw e.error();
    } catch (err) {
      lib.close(fd);
      throw err;
    }
    const a = e.parseAddr();
    return new EpollListener(e, fd, a.host, a.port, options.highWatermark);
  }

  /**
   * Takes over a listening TCP socket this process already holds (one received from the running Ferry at a hot
   * upgrade, `lib/server/hot_restart.ts`) instead of binding one. Undefined when the engine is not in use here;
   * throws if `fd` is not a listening IPv4/IPv6 stream socket. The socket must be non-blocking (those of this
   * engine are: the flag belongs to the socket, so every process holding it sees it).
   */
  static adopt(fd: number, options: { highWatermark?: number } = {}): EpollListener | undefined {
    const e = getEngine();
    if (!e) return undefined;
    const lib = e.lib;
    const opt = (name: number): number => {
      e.intBuf[0] = 0;
      e.lenBuf[0] = 4;
      if (lib.getsockopt(fd, SOL_SOCKET, name, new Uint8Array(e.intBuf.buffer), e.lenBuf) < 0) throw e.error();
      return e.intBuf[0]!;
    };
    if (opt(SO_ACCEPTCONN) !== 1) throw new Error(`descriptor ${fd} is not a listening socket`);
    const domain = opt(SO_DOMAIN);
    if ((domain !== AF_INET && domain !== AF_INET6) || opt(SO_TYPE) !== SOCK_STREAM) {
      throw new Error(`descriptor ${fd} is not a TCP socket`);
    }
    e.lenBuf[0] = e.addrBuf.length;
    if (lib.getsockname(fd, e.addrBuf, e.lenBuf) < 0) throw e.error();
    const a = e.parseAddr();
    return new EpollListener(e, fd, a.host, a.port, options.highWatermark);
  }

  /** The listening socket's descriptor (to hand it to a new process at a hot upgrade). */
  get fd(): number {
    return this.#fd;
  }

  /** Starts accepting: `onAccept` gets each connection (unstarted, no handler), `onError` accept failures. */
  start(onAccept: (c: EpollConnection) => void, onError: (e: Error) => void): void {
    this.#onAccept = onAccept;
    this.#onError = onError;
    this.#register();
  }

  /** Stops taking connections (they wait in the kernel backlog) until {@link EpollListener.resume}. */
  pause(): void {
    this.#paused = true;
    if (!this.#registered) return;
    this.#registered = false;
    this.#e.remove(this.#fd);
  }

  /** Takes connections again after {@link EpollListener.pause}. */
  resume(): void {
    this.#paused = false;
    if (this.#onAccept) this.#register();
  }

  #register(): void {
    if (this.#closed || this.#registered || this.#paused) return;
    this.#registered = true;
    this.#e.add(this.#fd, this, EPOLLIN);
  }

  /** @internal */
  onEvent(): void {
    const e = this.#e, lib = e.lib;
    // One accept per readiness while connections come one at a time: the socket is level-triggered, so one still
    // queued reports it again in the next batch, and only then (ready in two batches in a row: they queue up) does
    // it accept until EAGAIN (at most MAX_ACCEPTS). Accepting until EAGAIN every time cost a failing accept4 per
    // connection in light traffic, ~19 µs of a cold kernel path per TLS handshake measured here.
    const batch = e.batches;
    const max = batch - this.#acceptBatch === 1 ? MAX_ACCEPTS : 1;
    this.#acceptBatch = batch;
    for (let i = 0; i < max && !this.#closed && !this.#paused; i++) {
      e.lenBuf[0] = e.addrBuf.length;
      const fd = lib.accept4(this.#fd, e.addrBuf, e.lenBuf, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const code = e.errno();
        if (code === EAGAIN) return;
        if (code === EINTR || code === 103 /* ECONNABORTED */) continue;
        this.#onError?.(e.error("accept", code));
        if (code === EMFILE || code === ENFILE || code === ENOBUFS || code === ENOMEM) {
          // Out of descriptors or memory: stop polling the socket briefly instead of spinning on it.
          this.#registered = false;
          e.remove(this.#fd);
          this.#backoff = setTimeout(() => {
            this.#backoff = undefined;
            this.#register();
          }, 100);
        }
        return;
      }
      if (!this.#inheritsNoDelay) lib.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, this.#one, 4);
      const conn = new EpollConnection(e, fd, e.parseAddr(), this.#connOptions);
      try {
        this.#onAccept!(conn);
      } catch (err) {
        conn.close({ reason: "setup failed" });
        this.#onError?.(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#backoff);
    if (this.#registered) this.#e.closeRegistered(this.#fd);
    else this.#e.lib.close(this.#fd);
    this.#registered = false;
    this.#resolveClosed();
  }
}

/** A TCP connection's two ends, as `Deno.Conn` reports them. */
export interface SocketEnds {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
}

/**
 * Deno's own JS core (`Deno[Deno.internal].core`): the loop drains microtasks and `process.nextTick`s through it
 * ({@link drainTicks}) and sees whether immediates wait ({@link immediatesQueued}). Without it (another runtime
 * version) the engine is not used: plain TCP goes to `Deno.Conn`.
 */
interface DenoCore {
  runNextTicks(): void;
  immediateQueue: { head: unknown };
  /**
   * Runs the runtime's timers due at `now` (its timer clock) and returns the next expiry: positive while a
   * referenced timer remains, negated when only unreferenced ones do, 0 for none. Deno's own loop calls it when its
   * native timer fires; with a `now` before every expiry it runs nothing.
   */
  __processTimers?(now: number): number;
  /** Arms a timer (`setTimeout`'s core): the returned object records its start on the timer clock. */
  createTimer?(
    callback: () => void,
    after: number,
    args: undefined,
    repeat: boolean,
    refed: boolean,
    system: boolean,
  ): { _idleStart?: unknown };
  cancelTimer?(timer: unknown): void;
}
const denoCore: DenoCore | undefined = (() => {
  const d = Deno as unknown as { internal?: symbol } & Record<symbol, { core?: Partial<DenoCore> } | undefined>;
  const core = d.internal === undefined ? undefined : d[d.internal]?.core;
  return typeof core?.runNextTicks === "function" && typeof core.immediateQueue === "object" &&
      core.immediateQueue !== null
    ? core as DenoCore
    : undefined;
})();

/**
 * Deno's timer queue, when this runtime keeps it in JavaScript (Node's design: lists per duration in a priority
 * queue, one native timer for the earliest): then the loop can wait for the runtime's next timer instead of turning
 * every {@link TURN_EVERY_MS} in case one is due.
 */
const runtimeTimers: { process(now: number): number; now(): number } | undefined = (() => {
  const core = denoCore;
  const processTimers = core?.__processTimers, createTimer = core?.createTimer, cancelTimer = core?.cancelTimer;
  if (typeof processTimers !== "function" || typeof createTimer !== "function" || typeof cancelTimer !== "function") {
    return undefined;
  }
  try {
    // The timer clock is performance.now() plus a constant: read it off a probe timer's start (an unreferenced
    // system timer, cancelled at once; its empty list goes at the next expiry).
    const probe = createTimer.call(core, () => {}, 1, undefined, false, false, true);
    const start = probe._idleStart, offset = typeof start === "number" ? start - performance.now() : NaN;
    cancelTimer.call(core, probe);
    if (!Number.isFinite(offset) || typeof processTimers.call(core, -1) !== "number") return undefined;
    return { process: (now) => processTimers.call(core, now), now: () => performance.now() + offset };
  } catch {
    return undefined;
  }
})();

/**
 * Milliseconds until the runtime's next timer (`setTimeout`, `setInterval`, referenced or not; a cancelled one may
 * still count until its time comes): 0 when one is due, Infinity when there is none.
 */
function msUntilRuntimeTimer(): number {
  const next = Math.abs(runtimeTimers!.process(-1));
  if (next === 0) return Infinity;
  return Math.max(0, next - runtimeTimers!.now());
}

/**
 * Runs the runtime's due timers, as Deno's loop does when its native timer fires (same function, same order); that
 * native timer then finds nothing due and re-arms for the next one.
 */
function runDueRuntimeTimers(): void {
  runtimeTimers!.process(runtimeTimers!.now());
}

/** Runs the microtasks and `process.nextTick` callbacks queued so far, and those they queue, to the end. */
function drainTicks(): void {
  denoCore!.runNextTicks();
}

/** True when immediates other than the loop's own wait for Deno's loop. */
function immediatesQueued(): boolean {
  return denoCore!.immediateQueue.head !== null;
}

/**
 * The descriptor of this isolate's runtime epoll instance (Deno's tokio reactor), or undefined when it cannot be
 * found. A probe listener, which the runtime registers with its reactor, is looked up by its socket inode
 * (`/proc/net/tcp`) among the targets that `/proc/self/fdinfo` lists for each epoll descriptor.
 */
export function findRuntimeEpoll(): number | undefined {
  let probe: Deno.Listener | undefined;
  try {
    probe = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    const local = `0100007F:${(probe.addr as Deno.NetAddr).port.toString(16).toUpperCase().padStart(4, "0")}`;
    let ino: string | undefined;
    for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f[1] === local && f[3] === "0A") {
        ino = Number(f[9]).toString(16);
        break;
      }
    }
    if (ino === undefined) return undefined;
    const target = new RegExp(`\\bino:${ino}\\b`);
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      try {
        if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) !== "anon_inode:[eventpoll]") continue;
        if (target.test(Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`))) return Number(e.name);
      } catch { /* closed meanwhile */ }
    }
  } catch {
    /* no /proc, no permission to listen: the loop hands every wait off */
  } finally {
    probe?.close();
  }
  return undefined;
}

const stalled: SocketEnds[] = [];

/**
 * Shuts down, both ways, the socket of a `Deno.TlsConn` that was closed while its server handshake was pending.
 *
 * Why: Deno cancels the handshake op on `close()` but keeps the descriptor open until the peer sends or hangs up
 * (measured: 50 connections that sent half a ClientHello and were closed 100 ms later held 50 descriptors until
 * their clients left), so a client that stalls its handshake would hold a socket past the listener's
 * `transport_socket_connect_timeout`, for ever. Deno does not expose the descriptor: the process's descriptors are
 * scanned for the socket with both ends' addresses (`getsockname` / `getpeername`), and `shutdown` ends the pending
 * read, so Deno closes it. The scan runs once per 50 ms for every connection queued in that time, so many stalled
 * handshakes cost one pass over the descriptors, not one each. Nothing happens without the epoll engine (no FFI).
 *
 * @param conn the closed connection
 */
export function shutdownStalledSocket(conn: SocketEnds): void {
  if (getEngine() === undefined) return;
  if (stalled.push(conn) === 1) schedule(50, reapStalled);
}

/** One end of a TCP connection as a map key. */
const endKey = (host: string, port: number): string => `${host}|${port}`;

function reapStalled(): void {
  const e = getEngine();
  /** Remote end → local end, as `host|port`. */
  const want = new Map<string, string>();
  for (const c of stalled.splice(0)) {
    if (c.localAddr.transport !== "tcp" || c.remoteAddr.transport !== "tcp") continue;
    want.set(endKey(c.remoteAddr.hostname, c.remoteAddr.port), endKey(c.localAddr.hostname, c.localAddr.port));
  }
  if (e === undefined || want.size === 0) return;
  let fds: number[];
  try {
    fds = [...Deno.readDirSync("/proc/self/fd")].map((d) => Number(d.name));
  } catch {
    return; // no /proc: nothing to do
  }
  const lib = e.lib;
  for (const fd of fds) {
    e.lenBuf[0] = e.addrBuf.length;
    if (!Number.isInteger(fd) || lib.getpeername(fd, e.addrBuf, e.lenBuf) !== 0) continue;
    const peer = e.parseAddr();
    const peerKey = endKey(peer.host, peer.port);
    const local = want.get(peerKey);
    if (local === undefined) continue;
    e.lenBuf[0] = e.addrBuf.length;
    if (lib.getsockname(fd, e.addrBuf, e.lenBuf) !== 0) continue;
    const mine = e.parseAddr();
    if (endKey(mine.host, mine.port) !== local) continue;
    lib.shutdown(fd, SHUT_RDWR);
    want.delete(peerKey);
    if (want.size === 0) return;
  }
}

/**
 * Connects to `host:port` with a timeout. Undefined when the engine is not in use or `host` is not an IP literal
 * (use `Deno.connect`); rejects with the OS error (`Deno.errors.ConnectionRefused`, ...) or
 * {@link ConnectTimeoutError}. The connection is returned unstarted, without a handler.
 */
export function connectEpoll(
  host: string,
  port: number,
  timeoutMs: number,
  options: EpollConnectionOptions & { timeoutMessage?: string } = {},
): Promise<EpollConnection> | undefined {
  const e = getEngine();
  if (!e) return undefined;
  const sa = sockaddr(host, port);
  if (!sa) return undefined;
  const lib = e.lib;
  const fd = lib.socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Promise.reject(e.error());
  const one = new Uint8Array(new Int32Array([1]).buffer);
  lib.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4);
  const remote = { host: sa.family === AF_INET6 ? formatIpv6(sa.addr.subarray(8, 24)) : host, port };
  const conn = new EpollConnection(e, fd, remote, options);
  if (lib.connect(fd, sa.addr, sa.addr.length) === 0) return Promise.resolve(conn);
  const code = e.errno();
  if (code !== EINPROGRESS && code !== EINTR) {
    const err = e.error(undefined, code);
    conn.close({ reason: `connect error: ${err.message}` });
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.close({ reason: "connect timeout" });
    }, timeoutMs);
    conn.awaitConnect((err) => {
      clearTimeout(timer);
      if (err === undefined) resolve(conn);
      else if (err instanceof Deno.errors.ConnectionAborted && err.message === "connect timeout") {
        reject(
          new ConnectTimeoutError(
            options.timeoutMessage ?? `connect to ${host}:${port} timed out after ${timeoutMs} ms`,
          ),
        );
      } else reject(err);
    });
  });
}
