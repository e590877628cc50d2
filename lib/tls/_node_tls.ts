/**
 * Deno's `node:tls` (rustls underneath) driven over one of our {@link NetConnection}s.
 *
 * Deno has no public server-side upgrade of an already-accepted TCP connection (`Deno.startTls` is client only,
 * `Deno.listenTls` owns its socket), but `node:tls`'s `TLSSocket` runs the server handshake over any duplex stream.
 * {@link transportDuplex} bridges a ciphertext {@link NetConnection} into such a stream (with the peeked bytes
 * replayed first), and {@link NodeTlsConnection} exposes the TLS socket's plaintext as a {@link NetConnection}.
 * The native provider uses this for the server side whenever the listener needs more than `Deno.listenTls`
 * offers (a peeked ClientHello on a mixed port, client certificates, SNI-selected chains) and for every client.
 *
 * @module
 */
import { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ConnectionHandler, IoEngine, NetConnection } from "../api/network.ts";
import type { TlsHandshakeInfo } from "../api/tls.ts";
import { nextConnectionId } from "../network/connection.ts";
import { schedule } from "../network/timer_wheel.ts";
import type { SecureConnection } from "./provider.ts";
import { tlsFacts } from "./provider.ts";

const DEFAULT_HIGH_WATERMARK = 1024 * 1024;
const FLUSH_CLOSE_TIMEOUT_MS = 5000;

const noopHandler: ConnectionHandler = { onData() {}, onEof() {}, onClose() {} };

/**
 * A `Duplex` that drops what is written to it once destroyed, without an error. Deno's `TLSSocket` destroys its
 * stream when its writable side finishes, before its TLS layer has handed over the last record it produced (the
 * 24-byte close_notify when the peer closed first), and node's `Writable` answers a write to a destroyed stream with
 * an `ERR_STREAM_DESTROYED` built with a stack trace: 100 µs a connection in a profile of standard TLS handshakes on
 * a mixed port. The socket under it is closed by then, so the record could not go out either way.
 */
class TransportDuplex extends Duplex {
  // deno-lint-ignore no-explicit-any
  override write(chunk: any, encoding?: any, cb?: any): boolean {
    if (!this.destroyed) return super.write(chunk, encoding, cb);
    const done = typeof encoding === "function" ? encoding : cb;
    if (typeof done === "function") queueMicrotask(() => done());
    return false;
  }
}

/**
 * A node `Duplex` over a started-or-not ciphertext connection. Replays `initial` first. Reading pauses the
 * transport when node's buffer is full; writes complete once the transport's queue is below its watermark.
 */
export function transportDuplex(transport: NetConnection, initial?: Uint8Array): Duplex {
  let paused = false;
  let waiting: (() => void) | undefined;
  const d = new TransportDuplex({
    allowHalfOpen: true,
    read() {
      if (paused) {
        paused = false;
        transport.readDisable(false);
      }
    },
    write(chunk: Uint8Array, _enc, cb) {
      transport.write(chunk);
      if (transport.bufferedAmount > DEFAULT_HIGH_WATERMARK) waiting = () => cb();
      else cb();
    },
    final(cb) {
      transport.closeWrite();
      cb();
    },
    destroy(err, cb) {
      transport.close({ reason: err ? `tls: ${err.message}` : "tls closed" });
      cb(err);
    },
  });
  transport.setHandler({
    onData(data) {
      if (!d.push(data.slice()) && !paused) {
        paused = true;
        transport.readDisable(true);
      }
    },
    onEof() {
      d.push(null);
    },
    onClose() {
      const w = waiting;
      waiting = undefined;
      w?.();
      if (!d.destroyed) d.destroy();
    },
    onWriteDrained() {
      const w = waiting;
      waiting = undefined;
      w?.();
    },
  });
  if (initial && initial.length > 0) d.push(initial.slice());
  transport.start();
  return d;
}

/** Reads the handshake facts off a connected TLS socket. */
export function nodeHandshakeInfo(s: TLSSocket, sni: string | undefined): TlsHandshakeInfo {
  const proto = s.getProtocol();
  const version = proto === "TLSv1.2" ? "TLSv1.2" : "TLSv1.3";
  const cipher = s.getCipher()?.name ?? "unknown";
  const peer: Uint8Array[] = [];
  try {
    let c = s.getPeerCertificate(true) as unknown as { raw?: Uint8Array; issuerCertificate?: unknown } | undefined;
    for (let i = 0; c && c.raw && i < 10; i++) {
      peer.push(new Uint8Array(c.raw));
      const next = c.issuerCertificate as typeof c | undefined;
      if (!next || next === c) break;
      c = next;
    }
  } catch {
    // No peer certificate.
  }
  const alpn = typeof s.alpnProtocol === "string" ? s.alpnProtocol : undefined;
  return { version, cipher, alpn, sni, peerCertificates: peer, resumed: s.isSessionReused?.() ?? false };
}

/** A {@link SecureConnection} over a connected node TLS socket (see the module doc). */
export class NodeTlsConnection implements SecureConnection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure = true;
  /** The transport's: its socket is where this connection waits. */
  readonly ioEngine: IoEngine | undefined;
  readonly tls: { version?: string; cipher?: string; sni?: string; alpn?: string };
  readonly handshake: TlsHandshakeInfo;
  readonly done: Promise<void>;

  #socket: TLSSocket;
  #transport: NetConnection;
  #handler: ConnectionHandler = noopHandler;
  #started = false;
  #closed = false;
  #ended = false;
  #readDisabled = 0;
  #blocked = false;
  #high: number;
  #bytesRead = 0;
  #bytesWritten = 0;
  #reason = "remote close";
  #resolveDone!: () => void;

  constructor(socket: TLSSocket, transport: NetConnection, info: TlsHandshakeInfo, highWatermark?: number) {
    this.#socket = socket;
    this.#transport = transport;
    this.id = nextConnectionId();
    this.remoteAddress = transport.remoteAddress;
    this.remotePort = transport.remotePort;
    this.localAddress = transport.localAddress;
    this.localPort = transport.localPort;
    this.ioEngine = transport.ioEngine;
    this.handshake = info;
    this.tls = tlsFacts(info);
    this.#high = highWatermark ?? DEFAULT_HIGH_WATERMARK;
    this.done = new Promise((r) => this.#resolveDone = r);
    socket.pause();
    socket.on("error", (e: Error) => {
      this.#reason = `tls error: ${e.message}`;
    });
    socket.on("close", () => this.#finish(this.#reason));
    socket.on("drain", () => {
      if (this.#blocked && this.bufferedAmount < this.#high / 2) {
        this.#blocked = false;
        this.#handler.onWriteDrained?.();
      }
    });
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
    return this.#socket.writableLength + this.#transport.bufferedAmount;
  }

  setHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#socket.on("data", (d: Uint8Array) => {
      this.#bytesRead += d.length;
      this.#handler.onData(d);
    });
    this.#socket.on("end", () => {
      if (this.#ended) return;
      this.#ended = true;
      this.#handler.onEof();
    });
    if (this.#readDisabled === 0) this.#socket.resume();
  }

  write(data: Uint8Array): void {
    if (this.#closed || data.length === 0 || this.#socket.writableEnded) return;
    this.#bytesWritten += data.length;
    this.#socket.write(data.slice());
    if (!this.#blocked && this.bufferedAmount > this.#high) {
      this.#blocked = true;
      this.#handler.onWriteBlocked?.();
    }
  }

  closeWrite(): void {
    if (this.#closed || this.#socket.writableEnded) return;
    this.#socket.end();
  }

  close(options: { flush?: boolean; reason?: string } = {}): void {
    if (this.#closed) return;
    if (options.reason) this.#reason = options.reason;
    else this.#reason = "local close";
    if (options.flush) {
      // end() sends close_notify after the queued data; the transport closes after its own flush.
      if (!this.#socket.writableEnded) this.#socket.end();
      const t = schedule(FLUSH_CLOSE_TIMEOUT_MS, () => this.#socket.destroy());
      this.#socket.once("finish", () => {
        t.cancel();
        this.#transport.close({ flush: true, reason: this.#reason });
      });
      this.done.then(() => t.cancel());
      return;
    }
    this.#socket.destroy();
    this.#transport.close({ reason: this.#reason });
    this.#finish(this.#reason);
  }

  readDisable(disable: boolean): void {
    if (disable) {
      if (this.#readDisabled++ === 0) this.#socket.pause();
    } else if (this.#readDisabled > 0) {
      if (--this.#readDisabled === 0 && this.#started) this.#socket.resume();
    }
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close({ reason });
    const h = this.#handler;
    this.#handler = noopHandler;
    try {
      h.onClose(reason);
    } finally {
      this.#resolveDone();
    }
  }
}
