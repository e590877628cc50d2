/**
 * {@link EngineConnection}: any sans-I/O {@link TlsEngine} over a ciphertext {@link NetConnection}, exposed as a
 * plaintext {@link SecureConnection}, so the connection manager and tcp_proxy cannot tell it from a native one.
 *
 * - Handshake: {@link runEngineHandshake} starts the engine, replays peeked bytes, and resolves once
 *   `onHandshake` fired (rejects with a {@link TlsHandshakeError} on an alert, a close or the deadline).
 *   Plaintext that arrives with the peer's Finished is held until the owner calls `start`.
 * - Writes are coalesced: everything written in one microtask turn goes to the engine as one `send`, so a
 *   response head and body become one record where they fit.
 * - Backpressure is the transport's: its watermark events are forwarded, and `readDisable` pauses the transport.
 * - Half-close: `closeWrite` sends close_notify then FIN; the peer's close_notify is `onEof`.
 *
 * @module
 */
import type { ConnectionHandler, IoEngine, NetConnection } from "../api/network.ts";
import type { TlsAlertError, TlsEngine, TlsEngineCallbacks, TlsHandshakeInfo } from "../api/tls.ts";
import { nextConnectionId } from "../network/connection.ts";
import { schedule } from "../network/timer_wheel.ts";
import type { SecureConnection } from "./provider.ts";
import { tlsFacts, TlsHandshakeError } from "./provider.ts";

const noopHandler: ConnectionHandler = { onData() {}, onEof() {}, onClose() {} };
const DEFAULT_HIGH_WATERMARK = 1024 * 1024;

/** Builds an engine bound to the given callbacks (a factory of `lib/tls/engine/*`, adapted). */
export type EngineBuilder = (callbacks: TlsEngineCallbacks) => TlsEngine;

/** Options of {@link runEngineHandshake}. */
export interface EngineHandshakeOptions {
  readonly timeoutMs: number;
  readonly initial?: Uint8Array | undefined;
  readonly highWatermark?: number | undefined;
  /** SNI to report when the engine's info has none (client side). */
  readonly sni?: string | undefined;
  /** Called with the handshake facts before the promise resolves; throwing fails the handshake. */
  readonly verify?: ((info: TlsHandshakeInfo) => void) | undefined;
}

function kindOf(err: TlsAlertError): TlsHandshakeError {
  const kind = err.alert === "certificate_required"
    ? "no_certificate"
    : ["bad_certificate", "unknown_ca", "certificate_expired", "certificate_unknown", "unsupported_certificate"]
        .includes(err.alert)
    ? "verify"
    : "handshake";
  return new TlsHandshakeError(kind, err.message, { alert: err.alert, cause: err });
}

/**
 * Writes at least this large (one full TLS record of plaintext) are sealed at once rather than copied and sealed at
 * the end of the turn: coalescing only pays for small writes (a response head and a short body in one record).
 */
const DIRECT_SEND_MIN = 16 * 1024;

/** A plaintext connection over an engine (see the module doc). */
export class EngineConnection implements SecureConnection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly secure = true;
  readonly done: Promise<void>;

  #engine!: TlsEngine;
  #transport: NetConnection;
  #handler: ConnectionHandler = noopHandler;
  #info: TlsHandshakeInfo | undefined;
  #tls: { version?: string; cipher?: string; sni?: string; alpn?: string } | undefined;
  #started = false;
  #closed = false;
  #writeClosed = false;
  #peerClosed = false;
  /** Plaintext received before `start`. */
  #early: Uint8Array[] = [];
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #high: number;
  #blocked = false;
  #bytesRead = 0;
  #bytesWritten = 0;
  #resolveDone!: () => void;
  #onHandshake: ((info: TlsHandshakeInfo) => void) | undefined;
  #onFail: ((err: TlsHandshakeError) => void) | undefined;
  #flushFn = () => this.#flush();

  // The transport's, asked for when needed: the epoll engine looks its local address up (getsockname) on demand.
  get localAddress(): string {
    return this.#transport.localAddress;
  }

  get localPort(): number {
    return this.#transport.localPort;
  }

  get ioEngine(): IoEngine | undefined {
    return this.#transport.ioEngine;
  }

  /** @internal Use {@link runEngineHandshake}. */
  constructor(transport: NetConnection, build: EngineBuilder, highWatermark?: number) {
    this.#transport = transport;
    this.id = nextConnectionId();
    this.remoteAddress = transport.remoteAddress;
    this.remotePort = transport.remotePort;
    this.#high = highWatermark ?? DEFAULT_HIGH_WATERMARK;
    this.done = new Promise((r) => this.#resolveDone = r);
    this.#engine = build({
      write: (d) => this.#transport.write(d),
      writeCopies: true, // NetConnection.write copies (the connection contract)
      onData: (d) => {
        this.#bytesRead += d.length;
        if (!this.#started) this.#early.push(d.slice());
        else this.#handler.onData(d);
      },
      onHandshake: (info) => {
        this.#info = info;
        this.#tls = tlsFacts(info);
        this.#onHandshake?.(info);
      },
      onClose: () => {
        this.#peerClosed = true;
        if (this.#onFail) this.#onFail(new TlsHandshakeError("closed", "tls: peer closed during the handshake"));
        else if (this.#started) this.#handler.onEof();
      },
      onError: (err) => {
        if (this.#onFail) this.#onFail(kindOf(err));
        else this.#finish(`tls: ${err.alert}: ${err.message}`, true);
      },
    });
  }

  get handshake(): TlsHandshakeInfo {
    if (!this.#info) throw new Error("tls: handshake not complete");
    return this.#info;
  }
  get tls(): { version?: string; cipher?: string; sni?: string; alpn?: string } {
    return this.#tls ?? {};
  }
  get closed(): boolean {
    return this.#closed;
  }
  get bytesRead(): number {
    return this.#bytesRead;
  }
  get bytesWritten(): number {
    return this.#bytesWritten;
  }
  get bufferedAmount(): number {
    return this.#outBytes + this.#transport.bufferedAmount;
  }

  /** @internal Drives the handshake; see {@link runEngineHandshake}. */
  handshakeWith(options: EngineHandshakeOptions, isClient: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // On the timer wheel: every connection arms this and nearly every one cancels it (a runtime timer pair cost
      // a few µs and two objects per handshake).
      const timer = schedule(options.timeoutMs, () => {
        fail(new TlsHandshakeError("timeout", `tls: handshake timed out after ${options.timeoutMs} ms`));
      });
      const fail = (err: TlsHandshakeError) => {
        if (!this.#onFail) return;
        this.#onFail = undefined;
        this.#onHandshake = undefined;
        timer.cancel();
        this.#finish(`tls handshake failed: ${err.message}`, true);
        reject(err);
      };
      this.#onFail = fail;
      // Through a local: a literal assigned to a property is allocated old (tests/gc_hygiene_test.ts).
      const onHandshake = (info: TlsHandshakeInfo) => {
        try {
          options.verify?.(info);
        } catch (e) {
          fail(e instanceof TlsHandshakeError ? e : new TlsHandshakeError("verify", String(e)));
          return;
        }
        if (options.sni !== undefined && info.sni === undefined) {
          this.#tls = { ...this.#tls, sni: options.sni };
        }
        this.#onFail = undefined;
        this.#onHandshake = undefined;
        timer.cancel();
        resolve();
      };
      this.#onHandshake = onHandshake;
      this.#transport.setHandler({
        onData: (d) => this.#engine.receive(d),
        onEof: () => {
          if (this.#onFail) this.#onFail(new TlsHandshakeError("closed", "tls: peer closed during the handshake"));
          else if (!this.#peerClosed) {
            // FIN without close_notify: a truncation; pass it on as EOF (HTTP/1 framing detects short bodies).
            this.#peerClosed = true;
            if (this.#started) this.#handler.onEof();
          }
        },
        onClose: (reason) => {
          if (this.#onFail) this.#onFail(new TlsHandshakeError("closed", `tls: transport closed: ${reason}`));
          this.#finish(reason, false);
        },
        onWriteBlocked: () => {
          if (!this.#blocked) {
            this.#blocked = true;
            this.#handler.onWriteBlocked?.();
          }
        },
        onWriteDrained: () => {
          if (this.#blocked) {
            this.#blocked = false;
            this.#handler.onWriteDrained?.();
          }
        },
      });
      try {
        this.#engine.start();
        if (options.initial && options.initial.length > 0) this.#engine.receive(options.initial);
      } catch (e) {
        fail(new TlsHandshakeError("handshake", `tls: engine failed: ${e instanceof Error ? e.message : String(e)}`));
        return;
      }
      if (this.#onFail !== undefined) this.#transport.start();
      void isClient;
    });
  }

  setHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const early = this.#early;
    this.#early = [];
    for (const d of early) {
      if (this.#closed) return;
      this.#handler.onData(d);
    }
    if (this.#peerClosed && !this.#closed) this.#handler.onEof();
  }

  write(data: Uint8Array): void {
    if (this.#closed || this.#writeClosed || data.length === 0) return;
    if (data.length >= DIRECT_SEND_MIN) {
      // A full record's worth or more: seal it now, straight from the caller's buffer (engines never keep `data`),
      // after whatever smaller writes are queued, instead of copying it to seal it later.
      if (this.#out.length > 0) this.#flush();
      this.#bytesWritten += data.length;
      try {
        this.#engine.send(data);
      } catch (e) {
        this.#finish(`tls: send failed: ${e instanceof Error ? e.message : String(e)}`, true);
      }
      return;
    }
    this.#out.push(data.slice());
    this.#outBytes += data.length;
    if (!this.#blocked && this.bufferedAmount > this.#high) {
      this.#blocked = true;
      this.#handler.onWriteBlocked?.();
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushFn);
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#out.length === 0) return;
    let chunk: Uint8Array;
    if (this.#out.length === 1) chunk = this.#out[0]!;
    else {
      chunk = new Uint8Array(this.#outBytes);
      let off = 0;
      for (const q of this.#out) {
        chunk.set(q, off);
        off += q.length;
      }
    }
    this.#out = [];
    this.#outBytes = 0;
    this.#bytesWritten += chunk.length;
    try {
      this.#engine.send(chunk);
    } catch (e) {
      this.#finish(`tls: send failed: ${e instanceof Error ? e.message : String(e)}`, true);
    }
  }

  closeWrite(): void {
    if (this.#closed || this.#writeClosed) return;
    this.#flush();
    this.#writeClosed = true;
    this.#engine.close();
    this.#transport.closeWrite();
  }

  close(options: { flush?: boolean; reason?: string } = {}): void {
    if (this.#closed) return;
    if (options.flush) {
      this.#flush();
      if (!this.#writeClosed) {
        this.#writeClosed = true;
        this.#engine.close();
      }
      this.#transport.close({ flush: true, reason: options.reason ?? "local close" });
      return;
    }
    this.#finish(options.reason ?? "local close", true);
  }

  readDisable(disable: boolean): void {
    this.#transport.readDisable(disable);
  }

  #finish(reason: string, closeTransport: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out = [];
    this.#outBytes = 0;
    if (closeTransport) this.#transport.close({ flush: true, reason });
    const h = this.#handler;
    this.#handler = noopHandler;
    try {
      h.onClose(reason);
    } finally {
      this.#resolveDone();
    }
  }
}

/**
 * Runs an engine's handshake over `transport` and resolves with the plaintext connection (unstarted). Rejects
 * with a {@link TlsHandshakeError}; the transport is closed then (after any alert the engine wrote).
 */
export async function runEngineHandshake(
  transport: NetConnection,
  build: EngineBuilder,
  options: EngineHandshakeOptions & { client?: boolean },
): Promise<EngineConnection> {
  const conn = new EngineConnection(transport, build, options.highWatermark);
  await conn.handshakeWith(options, options.client ?? false);
  return conn;
}
