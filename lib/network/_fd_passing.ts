/**
 * A control channel over a Unix domain stream socket that carries file descriptors (`SCM_RIGHTS`), through Deno's
 * FFI on libc: what hot upgrade (`lib/server/hot_restart.ts`) uses to hand listening sockets from the running Ferry
 * to the new one, as Envoy's hot restart and MOSN's listener hand-over do. Deno's own Unix sockets cannot carry
 * descriptors, so the socket, `sendmsg` and `recvmsg` are libc's.
 *
 * **Framing.** Each message is `u32 length | u32 descriptor count | payload`, sent with one `sendmsg` whose
 * ancillary data holds the descriptors. The kernel attaches them to the first byte of that send, and `recvmsg`
 * never joins bytes across an ancillary boundary, so descriptors arrive no later than their frame's bytes: the
 * receiver queues them and each complete frame takes its count from the queue, in order.
 *
 * **Waiting.** The sockets are non-blocking; a wait is `poll` with a short timeout as a non-blocking FFI call (it
 * runs on a runtime thread), so a closed channel ends its waits within {@link POLL_SLICE_MS} and leaves no
 * operation pending. This is a control channel (a few messages per upgrade), not a data path.
 *
 * Names: `@name` is an abstract socket (Linux; nothing on the file system, gone with the process), anything else a
 * file system path (a stale file whose socket no one listens on is replaced).
 *
 * Linux x86_64 and aarch64 only (the struct layouts below are LP64 Linux's); {@link fdPassingAvailable} says
 * whether it can run here (FFI permission granted).
 *
 * @module
 */

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const EINTR = 4;
const EAGAIN = 11;
const ECONNREFUSED = 111;
const ENOENT = 2;
const SUN_PATH_MAX = 108;
/** Most descriptors one frame carries (the ancillary buffer is sized for this). */
export const MAX_FDS_PER_MESSAGE = 250;
/** Largest frame payload accepted (a stats snapshot of a large config stays well below). */
const MAX_PAYLOAD = 64 * 1024 * 1024;
/** How long one wait blocks a runtime thread before the channel looks at its own state again. */
export const POLL_SLICE_MS = 100;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  close: { parameters: ["i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Uint8Array | null, len: Uint8Array | null, flags: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  sendmsg(fd: number, msg: Uint8Array, flags: number): number | bigint;
  recvmsg(fd: number, msg: Uint8Array, flags: number): number | bigint;
  close(fd: number): number;
  shutdown(fd: number, how: number): number;
  unlink(path: Uint8Array): number;
  poll_async(fds: Uint8Array, n: bigint, timeout: number): Promise<number>;
  strerror(code: number): Deno.PointerValue;
  __errno_location(): Deno.PointerValue;
}

let lib: Libc | null | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

function getLib(): Libc | undefined {
  if (lib !== undefined) return lib ?? undefined;
  lib = null;
  if (Deno.build.os !== "linux" || (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64")) return undefined;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const l = Deno.dlopen("libc.so.6", SYMBOLS).symbols as unknown as Libc;
    const p = l.__errno_location();
    if (p === null) return undefined;
    errnoView = new Deno.UnsafePointerView(p);
    lib = l;
  } catch {
    lib = null;
  }
  return lib ?? undefined;
}

/** True when descriptors can be passed here (Linux x86_64/aarch64 with FFI allowed). */
export function fdPassingAvailable(): boolean {
  return getLib() !== undefined;
}

function mustLib(): Libc {
  const l = getLib();
  if (!l) throw new Error("descriptor passing needs FFI (--allow-ffi) on Linux x86_64 or aarch64");
  return l;
}

/** The error of the last synchronous call (errno is per thread: never read it after an async call). */
function osError(what: string, code = errnoView!.getInt32()): Error & { code: number } {
  const p = lib!.strerror(code);
  const text = p === null ? `error ${code}` : Deno.UnsafePointerView.getCString(p);
  const e = new Error(`${what}: ${text} (os error ${code})`) as Error & { code: number };
  e.code = code;
  return e;
}

/** `sockaddr_un` for `name` (`@x`: abstract) and its length. */
function sockaddrUn(name: string): { addr: Uint8Array; len: number } {
  const abstract = name.startsWith("@");
  const bytes = new TextEncoder().encode(abstract ? name.slice(1) : name);
  if (bytes.length + 1 > SUN_PATH_MAX) throw new Error(`socket name ${JSON.stringify(name)} is too long`);
  const addr = new Uint8Array(2 + SUN_PATH_MAX);
  addr[0] = AF_UNIX;
  addr.set(bytes, abstract ? 3 : 2);
  // Abstract names are exactly as long as given; paths end with a NUL.
  return { addr, len: abstract ? 3 + bytes.length : 2 + bytes.length + 1 };
}

function ptr(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

/** Waits until `fd` is ready for `events` or `ms` passes; true if ready (or in error: the next call tells). */
async function waitFd(fd: number, events: number, ms: number): Promise<boolean> {
  const l = mustLib();
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, events, true);
  const n = await l.poll_async(pfd, 1n, ms);
  return n > 0;
}

/** Closes a descriptor (one received and not used). */
export function closeFd(fd: number): void {
  mustLib().close(fd);
}

/** A message: its payload and the descriptors that came with it (now open in this process, close-on-exec). */
export interface FdMessage {
  readonly payload: Uint8Array;
  readonly fds: number[];
}

/** One end of a control connection. See the module doc. */
export class FdChannel {
  readonly #fd: number;
  #closed = false;
  #in = new Uint8Array(0);
  readonly #fdQueue: number[] = [];
  #eof = false;
  readonly #readBuf = new Uint8Array(64 * 1024);
  readonly #control = new Uint8Array(16 + MAX_FDS_PER_MESSAGE * 4 + 8);
  readonly #iov = new Uint8Array(16);
  readonly #msg = new Uint8Array(56);
  #sending: Promise<void> = Promise.resolve();

  /** @internal Use {@link connectFdChannel} or {@link FdServer.accept}. */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** True once {@link FdChannel.close} was called or the peer closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one message with `fds` (duplicated into the peer; this process keeps its own). In order of calls. */
  send(payload: Uint8Array, fds: readonly number[] = []): Promise<void> {
    const p = this.#sending.then(() => this.#send(payload, fds));
    this.#sending = p.catch(() => {});
    return p;
  }

  async #send(payload: Uint8Array, fds: readonly number[]): Promise<void> {
    if (fds.length > MAX_FDS_PER_MESSAGE) throw new Error(`at most ${MAX_FDS_PER_MESSAGE} descriptors per message`);
    const l = mustLib();
    const frame = new Uint8Array(8 + payload.length);
    const fv = new DataView(frame.buffer);
    fv.setUint32(0, payload.length, true);
    fv.setUint32(4, fds.length, true);
    frame.set(payload, 8);
    let off = 0;
    let first = true;
    while (off < frame.length) {
      if (this.#closed) throw new Error("control channel closed");
      const chunk = frame.subarray(off);
      let control: Uint8Array | undefined;
      if (first && fds.length > 0) {
        // struct cmsghdr { size_t len; int level; int type; int fds[]; }, padded to 8 bytes.
        const len = 16 + fds.length * 4;
        control = new Uint8Array((len + 7) & ~7);
        const cv = new DataView(control.buffer);
        cv.setBigUint64(0, BigInt(len), true);
        cv.setInt32(8, SOL_SOCKET, true);
        cv.setInt32(12, SCM_RIGHTS, true);
        fds.forEach((fd, i) => cv.setInt32(16 + i * 4, fd, true));
      }
      const n = Number(l.sendmsg(this.#fd, this.#header(chunk, chunk.length, control), MSG_NOSIGNAL));
      if (n < 0) {
        const code = errnoView!.getInt32();
        if (code === EINTR) continue;
        if (code === EAGAIN) {
          await waitFd(this.#fd, POLLOUT, POLL_SLICE_MS);
          continue;
        }
        throw osError("sendmsg", code);
      }
      first = false;
      off += n;
    }
  }

  /** Fills the msghdr (and its iovec) for one send or receive. */
  #header(buf: Uint8Array, len: number, control: Uint8Array | undefined): Uint8Array {
    const iv = new DataView(this.#iov.buffer);
    iv.setBigUint64(0, ptr(buf), true);
    iv.setBigUint64(8, BigInt(len), true);
    const mv = new DataView(this.#msg.buffer);
    this.#msg.fill(0);
    // struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t iovlen; void *control;
    //                 size_t controllen; int flags; } (LP64)
    mv.setBigUint64(16, ptr(this.#iov), true);
    mv.setBigUint64(24, 1n, true);
    if (control !== undefined) {
      mv.setBigUint64(32, ptr(control), true);
      mv.setBigUint64(40, BigInt(control.length), true);
    }
    return this.#msg;
  }

  /**
   * The next message, or undefined when the peer closed (or {@link FdChannel.close} was called). Rejects on a
   * socket error or a malformed frame. One receive at a time.
   */
  async recv(): Promise<FdMessage | undefined> {
    const l = mustLib();
    for (;;) {
      const m = this.#takeFrame();
      if (m !== undefined) return m;
      if (this.#eof || this.#closed) {
        for (const fd of this.#fdQueue.splice(0)) l.close(fd);
        return undefined;
      }
      const rb = this.#readBuf;
      this.#control.fill(0);
      const n = Number(l.recvmsg(this.#fd, this.#header(rb, rb.length, this.#control), MSG_CMSG_CLOEXEC));
      if (n < 0) {
        const code = errnoView!.getInt32();
        if (code === EINTR) continue;
        if (code === EAGAIN) {
          await waitFd(this.#fd, POLLIN, POLL_SLICE_MS);
          continue;
        }
        throw osError("recvmsg", code);
      }
      this.#takeFds();
      if (n === 0) {
        this.#eof = true;
        continue;
      }
      const next = new Uint8Array(this.#in.length + n);
      next.set(this.#in);
      next.set(rb.subarray(0, n), this.#in.length);
      this.#in = next;
    }
  }

  /** Queues the descriptors of the last `recvmsg`'s ancillary data. */
  #takeFds(): void {
    const mv = new DataView(this.#msg.buffer);
    const controlLen = Number(mv.getBigUint64(40, true));
    const cv = new DataView(this.#control.buffer);
    let off = 0;
    while (off + 16 <= controlLen) {
      const len = Number(cv.getBigUint64(off, true));
      if (len < 16) break;
      if (cv.getInt32(off + 8, true) === SOL_SOCKET && cv.getInt32(off + 12, true) === SCM_RIGHTS) {
        for (let p = off + 16; p + 4 <= off + len; p += 4) this.#fdQueue.push(cv.getInt32(p, true));
      }
      off += (len + 7) & ~7;
    }
  }

  #takeFrame(): FdMessage | undefined {
    const b = this.#in;
    if (b.length < 8) return undefined;
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    const len = v.getUint32(0, true);
    const nfds = v.getUint32(4, true);
    if (len > MAX_PAYLOAD || nfds > MAX_FDS_PER_MESSAGE) throw new Error("control channel: malformed frame");
    if (b.length < 8 + len) return undefined;
    if (this.#fdQueue.length < nfds) throw new Error("control channel: descriptors missing from a frame");
    const payload = b.slice(8, 8 + len);
    this.#in = b.subarray(8 + len);
    return { payload, fds: this.#fdQueue.splice(0, nfds) };
  }

  /** Closes the connection; a pending {@link FdChannel.recv} resolves undefined within a poll slice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const l = mustLib();
    l.shutdown(this.#fd, 2);
    l.close(this.#fd);
    for (const fd of this.#fdQueue.splice(0)) l.close(fd);
  }
}

/** A listening control socket. */
export class FdServer {
  /** The name it listens on (`@abstract` or a path). */
  readonly name: string;
  readonly #fd: number;
  #closed = false;

  private constructor(fd: number, name: string) {
    this.#fd = fd;
    this.name = name;
  }

  /**
   * Listens on `name`. Throws `AddrInUse`-style errors (`code` 98) when another process listens there; a file
   * system path left by a process that is gone is replaced.
   */
  static listen(name: string): FdServer {
    const l = mustLib();
    const { addr, len } = sockaddrUn(name);
    const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw osError("socket");
    let r = l.bind(fd, addr, len);
    if (r < 0 && errnoView!.getInt32() === 98 && !name.startsWith("@")) {
      // A path: replace it only if no one answers on it.
      const probe = l.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const c = l.connect(probe, addr, len);
      const code = c < 0 ? errnoView!.getInt32() : 0;
      l.close(probe);
      if (code === ECONNREFUSED || code === ENOENT) {
        l.unlink(addr.subarray(2));
        r = l.bind(fd, addr, len);
      } else {
        r = -1;
      }
      if (r < 0 && code === 0) {
        l.close(fd);
        throw osError(`bind ${name}`, 98);
      }
    }
    if (r < 0 || l.listen(fd, 16) < 0) {
      const e = osError(`bind ${name}`);
      l.close(fd);
      throw e;
    }
    return new FdServer(fd, name);
  }

  /** The next connection, or undefined once closed. */
  async accept(): Promise<FdChannel | undefined> {
    const l = mustLib();
    while (!this.#closed) {
      const fd = l.accept4(this.#fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return new FdChannel(fd);
      const code = errnoView!.getInt32();
      if (code !== EAGAIN && code !== EINTR && code !== 103) throw osError("accept", code);
      await waitFd(this.#fd, POLLIN, POLL_SLICE_MS);
    }
    return undefined;
  }

  /** Stops listening (a path is removed); a pending accept resolves undefined within a poll slice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const l = mustLib();
    l.close(this.#fd);
    if (!this.name.startsWith("@")) l.unlink(sockaddrUn(this.name).addr.subarray(2));
  }
}

/** Connects to the control socket `name`; throws with the OS error (`code`: 111 refused, 2 no such path). */
export function connectFdChannel(name: string): FdChannel {
  const l = mustLib();
  const { addr, len } = sockaddrUn(name);
  const fd = l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw osError("socket");
  // A Unix stream socket connects at once, or fails (EAGAIN only with the listener's backlog full).
  if (l.connect(fd, addr, len) < 0) {
    const e = osError(`connect ${name}`);
    l.close(fd);
    throw e;
  }
  return new FdChannel(fd);
}
