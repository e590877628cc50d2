/**
 * The part of a TLS 1.3 endpoint that server and client share: the {@link TlsEngine} surface, the record layer,
 * handshake-message reassembly, alerts, application data, close_notify and KeyUpdate. The handshake itself is a
 * {@link HandshakeDriver} (`server.ts`, `client.ts`) that the core feeds complete messages. Private to this
 * folder.
 *
 * Failure discipline: every protocol failure is a {@link Tls13Fatal} thrown from parsing or the driver; the core
 * catches it at the entry point (`start`, `receive`, `send`, `close`, `keyUpdate`), writes the alert, and reports
 * exactly one `onError`. Anything else thrown (a bug, or a callback that threw) becomes `internal_error`.
 *
 * @module
 */

import {
  TLS_ALERT_CODES,
  type TlsAlertDescription,
  TlsAlertError,
  type TlsEngine,
  type TlsEngineCallbacks,
  type TlsHandshakeInfo,
} from "../../../api/tls.ts";
import type { HashAlgorithm, IncrementalHash } from "../../../crypto/mod.ts";
import { concat, ContentType, fatal, HandshakeType, Tls13Fatal } from "./_codec.ts";
import { nextTrafficSecret, trafficKeys } from "./key_schedule.ts";
import { MAX_PLAINTEXT, RecordReader, RecordWriter } from "./record.ts";
import type { Tls13CipherSuite } from "./suites.ts";
import { SCRATCH_PLAINTEXT, withWriteScratch } from "../_write_scratch.ts";

/** Largest handshake message accepted (certificate chains included). */
const MAX_HANDSHAKE_MESSAGE = 256 * 1024;
/** Consecutive empty records tolerated before the peer is treated as flooding. */
const MAX_EMPTY_RECORDS = 32;
/** The empty initial value of byte buffers that grow on demand. */
const NO_BYTES = new Uint8Array(0);
/** The change_cipher_spec record (written as is to a transport that copies, which never modifies it). */
const CHANGE_CIPHER_SPEC = new Uint8Array([ContentType.changeCipherSpec, 3, 3, 0, 1, 1]);
/** Records under one write key before the engine rekeys itself (RFC 8446 §5.5 allows 2^24.5 for AES-GCM). */
const REKEY_AFTER_RECORDS = 2 ** 24;

const ALERT_NAMES = new Map<number, TlsAlertDescription>(
  Object.entries(TLS_ALERT_CODES).map(([name, code]) => [code, name as TlsAlertDescription]),
);

/** The running handshake transcript; buffers messages until the suite (and so the hash) is known. */
export class Transcript {
  #hash: IncrementalHash | undefined;
  #algorithm: HashAlgorithm | undefined;
  #pending: Uint8Array[] = [];

  /** Adds a whole handshake message (header included). */
  add(message: Uint8Array): void {
    if (this.#hash) this.#hash.update(message);
    else this.#pending.push(message);
  }

  /** Fixes the hash and absorbs the buffered messages. */
  setHash(algorithm: HashAlgorithm): void {
    if (this.#hash) return;
    this.#algorithm = algorithm;
    this.#hash = algorithm.create();
    for (const m of this.#pending) this.#hash.update(m);
    this.#pending = [];
  }

  /** Transcript-Hash of everything added so far. */
  digest(): Uint8Array {
    if (!this.#hash) throw new Error("tls13 transcript: hash is not set");
    return this.#hash.peekDigest();
  }

  /** Transcript-Hash of everything added so far followed by `partial` (a PSK binder's truncated ClientHello). */
  digestWith(partial: Uint8Array): Uint8Array {
    if (!this.#hash) throw new Error("tls13 transcript: hash is not set");
    const h = this.#hash.copy();
    h.update(partial);
    return h.digest();
  }

  /**
   * After a HelloRetryRequest: replaces ClientHello1 by the synthetic `message_hash` message (RFC 8446 §4.4.1).
   * Call with only ClientHello1 in the transcript.
   */
  replaceWithMessageHash(): void {
    const alg = this.#algorithm;
    if (!alg) throw new Error("tls13 transcript: hash is not set");
    const h = this.digest();
    this.#hash = alg.create();
    this.#hash.update(new Uint8Array([HandshakeType.messageHash, 0, 0, h.length]));
    this.#hash.update(h);
  }
}

/** The handshake half of an endpoint: server or client. */
export interface HandshakeDriver {
  /** Called by `start()`. A client writes its ClientHello. */
  start(): void;
  /** A complete handshake message before the handshake completed. `raw` includes the 4-byte header. */
  onMessage(type: number, body: Uint8Array, raw: Uint8Array): void;
  /** Whether a change_cipher_spec may arrive now (RFC 8446 §5: after the first ClientHello, before Finished). */
  readonly acceptsChangeCipherSpec: boolean;
  /** Client: post-handshake NewSessionTickets go to {@link onNewSessionTicket}; server: never expected. */
  readonly isClient: boolean;
  /** Client: a NewSessionTicket body after the handshake (ignored when absent). */
  onNewSessionTicket?(body: Uint8Array): void;
}

/** The shared engine core; drivers call its package-level methods. */
export class Tls13Core implements TlsEngine {
  readonly #cb: TlsEngineCallbacks;
  readonly #reader: RecordReader;
  readonly #writer = new RecordWriter();
  #driver: HandshakeDriver | undefined;
  #started = false;
  #dead = false;
  #closedWrite = false;
  #peerClosed = false;
  #complete = false;
  #info: TlsHandshakeInfo | undefined;
  #out: Uint8Array[] = [];
  #queued: Uint8Array[] = [];
  /** A handshake message split across records, `#hs[0..#hsLen)`; allocated only when one is (rare). */
  #hs = NO_BYTES;
  #hsLen = 0;
  #readEpoch = 0;
  #emptyRecords = 0;
  #receiving = false;
  #reentrant: Uint8Array[] = [];
  #suite: Tls13CipherSuite | undefined;
  #readSecret: Uint8Array | undefined;
  #writeSecret: Uint8Array | undefined;

  constructor(callbacks: TlsEngineCallbacks) {
    this.#cb = callbacks;
    this.#reader = new RecordReader((type, fragment, prot) => this.#onRecord(type, fragment, prot));
  }

  /** Binds the handshake driver (once, right after construction). */
  bind(driver: HandshakeDriver): void {
    this.#driver = driver;
  }

  get handshakeComplete(): boolean {
    return this.#complete;
  }

  get info(): TlsHandshakeInfo | undefined {
    return this.#info;
  }

  // ---- TlsEngine ----

  start(): void {
    if (this.#started || this.#dead) return;
    this.#started = true;
    this.#guard(() => this.#driver!.start());
  }

  receive(data: Uint8Array): void {
    if (this.#dead || this.#peerClosed) return;
    if (this.#receiving) {
      this.#reentrant.push(data.slice());
      return;
    }
    if (!this.#started) this.#started = true;
    this.#receiving = true;
    try {
      this.#guard(() => {
        this.#reader.feed(data);
        while (this.#reentrant.length > 0 && !this.#dead) this.#reader.feed(this.#reentrant.shift()!);
      });
    } finally {
      this.#receiving = false;
      this.#reentrant = [];
    }
  }

  send(data: Uint8Array): void {
    if (this.#dead || this.#closedWrite || data.length === 0) return;
    if (!this.#complete) {
      this.#queued.push(data.slice());
      return;
    }
    this.#guard(() => this.#sendApplicationData(data));
  }

  close(): void {
    if (this.#dead || this.#closedWrite) return;
    this.#closedWrite = true;
    this.#queued = [];
    this.#guard(() => {
      this.#out.push(this.#writer.seal(ContentType.alert, new Uint8Array([1, TLS_ALERT_CODES.close_notify])));
    });
  }

  keyUpdate(requestPeer: boolean): void {
    if (this.#dead || this.#closedWrite || !this.#complete) return;
    this.#guard(() => this.#sendKeyUpdate(requestPeer));
  }

  // ---- for drivers ----

  /**
   * Sends a handshake message (protected when write keys are installed). When the transport copies what it is
   * given, the records are sealed into the shared write scratch and written at once, behind anything queued (the
   * transport coalesces a turn's writes into one send); otherwise they are queued for {@link #flush}.
   */
  sendHandshake(message: Uint8Array): void {
    if (this.#cb.writeCopies === true) {
      const sent = withWriteScratch(this.#writer.sealedSize(message.length), (buf) => {
        this.#flush();
        this.#cb.write(this.#writer.seal(ContentType.handshake, message, buf));
      });
      if (sent) return;
    }
    this.#out.push(this.#writer.seal(ContentType.handshake, message));
  }

  /** Queues the middlebox-compatibility change_cipher_spec (RFC 8446 §D.4). */
  sendChangeCipherSpec(): void {
    this.#out.push(this.#cb.writeCopies === true ? CHANGE_CIPHER_SPEC : CHANGE_CIPHER_SPEC.slice());
  }

  /** Installs read keys derived from `secret`. The handshake buffer must be empty (§5.1: key-change alignment). */
  setReadSecret(suite: Tls13CipherSuite, secret: Uint8Array): void {
    const k = trafficKeys(suite.hash, secret, suite.keyLength, suite.ivLength);
    this.#reader.setKeys(suite.createAead(k.key), k.iv);
    this.#suite = suite;
    this.#readSecret = secret;
    this.#readEpoch++;
  }

  /** Installs write keys derived from `secret`. */
  setWriteSecret(suite: Tls13CipherSuite, secret: Uint8Array): void {
    const k = trafficKeys(suite.hash, secret, suite.keyLength, suite.ivLength);
    this.#writer.setKeys(suite.createAead(k.key), k.iv);
    this.#suite = suite;
    this.#writeSecret = secret;
  }

  /** Server: skip up to `bytes` of undecryptable records (0-RTT data it does not accept). */
  skipEarlyData(bytes: number): void {
    this.#reader.skipUndecryptable(bytes);
  }

  /** Marks the handshake complete: reports it, then sends data queued by `send`. */
  complete(info: TlsHandshakeInfo): void {
    this.#complete = true;
    this.#info = info;
    this.#cb.onHandshake(info);
    if (this.#dead) return;
    const queued = this.#queued;
    this.#queued = [];
    if (queued.length > 0 && !this.#closedWrite) this.#sendApplicationData(concat(...queued));
  }

  // ---- internals ----

  /** Runs `f`, turning failures into one alert + `onError`, then writes what was queued. */
  #guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof Tls13Fatal) this.#fail(e.alert, e.message, e);
      else this.#fail("internal_error", `tls13: internal error: ${e instanceof Error ? e.message : String(e)}`, e);
      return;
    }
    this.#flush();
  }

  #flush(): void {
    if (this.#out.length === 0) return;
    const out = this.#out.length === 1 ? this.#out[0]! : concat(...this.#out);
    this.#out = [];
    this.#cb.write(out);
  }

  #fail(alert: TlsAlertDescription, message: string, cause: unknown): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#reader.stop();
    try {
      if (!this.#closedWrite) {
        this.#out.push(this.#writer.seal(ContentType.alert, new Uint8Array([2, TLS_ALERT_CODES[alert]])));
      }
      this.#flush();
    } catch {
      // The alert is best effort; the error below is what matters.
    }
    this.#cb.onError(new TlsAlertError(alert, message, { sent: true, cause }));
  }

  #peerAlert(alert: TlsAlertDescription, code: number): void {
    this.#dead = true;
    this.#reader.stop();
    this.#flush();
    this.#cb.onError(new TlsAlertError(alert, `tls13: peer sent alert ${alert} (${code})`, { sent: false }));
  }

  #sendApplicationData(data: Uint8Array): void {
    // When the transport copies what it is given, records go into the shared write scratch a piece at a time.
    const shared = this.#cb.writeCopies === true;
    for (let i = 0; i < data.length;) {
      if (this.#writer.sequence >= REKEY_AFTER_RECORDS) this.#sendKeyUpdate(false);
      // One buffer per piece, up to the records left before a rekey.
      const records = REKEY_AFTER_RECORDS - this.#writer.sequence;
      const n = Math.min(data.length - i, records * MAX_PLAINTEXT, shared ? SCRATCH_PLAINTEXT : Infinity);
      const chunk = data.subarray(i, i + n);
      const sealed = shared && withWriteScratch(this.#writer.sealedSize(chunk.length), (buf) => {
        this.#out.push(this.#writer.seal(ContentType.applicationData, chunk, buf));
        this.#flush();
      });
      if (!sealed) this.#out.push(this.#writer.seal(ContentType.applicationData, chunk));
      i += n;
    }
    this.#flush();
  }

  #sendKeyUpdate(requestPeer: boolean): void {
    const suite = this.#suite!;
    this.sendHandshake(new Uint8Array([HandshakeType.keyUpdate, 0, 0, 1, requestPeer ? 1 : 0]));
    this.setWriteSecret(suite, nextTrafficSecret(suite.hash, this.#writeSecret!));
  }

  #onRecord(type: number, fragment: Uint8Array, prot: boolean): void {
    if (fragment.length === 0) {
      if (type === ContentType.handshake) fatal("unexpected_message", "empty handshake record");
      if (type === ContentType.alert) fatal("decode_error", "empty alert record");
      if (++this.#emptyRecords > MAX_EMPTY_RECORDS) fatal("unexpected_message", "too many empty records");
    } else {
      this.#emptyRecords = 0;
    }
    switch (type) {
      case ContentType.changeCipherSpec:
        // Only ever unprotected (a protected one is an unexpected inner type, below).
        if (prot || !this.#driver!.acceptsChangeCipherSpec || this.#complete) {
          fatal("unexpected_message", "unexpected change_cipher_spec");
        }
        if (fragment.length !== 1 || fragment[0] !== 1) fatal("unexpected_message", "malformed change_cipher_spec");
        if (++this.#emptyRecords > MAX_EMPTY_RECORDS) fatal("unexpected_message", "too many change_cipher_spec");
        return;
      case ContentType.alert:
        return this.#onAlert(fragment, prot);
      case ContentType.handshake:
        if (this.#reader.protected && !prot) fatal("unexpected_message", "unprotected handshake record after keys");
        return this.#onHandshakeFragment(fragment);
      case ContentType.applicationData:
        if (!prot || !this.#complete) fatal("unexpected_message", "application data before the handshake completed");
        if (this.#hsLen > 0) fatal("unexpected_message", "application data inside a fragmented handshake message");
        if (fragment.length > 0) this.#cb.onData(fragment);
        return;
      default:
        fatal("unexpected_message", `unexpected record content type ${type}`);
    }
  }

  #onAlert(fragment: Uint8Array, prot: boolean): void {
    if (fragment.length !== 2) fatal("decode_error", "alert record is not one alert");
    if (this.#reader.protected && !prot && this.#complete) fatal("unexpected_message", "unprotected alert");
    const code = fragment[1]!;
    const name = ALERT_NAMES.get(code);
    if (code === TLS_ALERT_CODES.close_notify) {
      // An unprotected close_notify after keys could be forged: only a protected one ends the stream cleanly.
      if (this.#reader.protected && !prot) fatal("unexpected_message", "unprotected close_notify");
      this.#peerClosed = true;
      this.#reader.stop();
      this.#cb.onClose();
      return;
    }
    if (code === TLS_ALERT_CODES.user_canceled) return; // a warning; close_notify follows
    this.#peerAlert(name ?? "internal_error", code);
  }

  #onHandshakeFragment(fragment: Uint8Array): void {
    // Whole messages are cut straight from the record; only a partial one is kept (in #hs) for the next record.
    let buf = fragment, len = fragment.length;
    if (this.#hsLen > 0) {
      this.#keepHandshake(fragment);
      buf = this.#hs;
      len = this.#hsLen;
    }
    let o = 0;
    while (!this.#dead && !this.#peerClosed && len - o >= 4) {
      const type = buf[o]!;
      const length = (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
      if (length > MAX_HANDSHAKE_MESSAGE) fatal("illegal_parameter", `handshake message of ${length} bytes`);
      if (len - o - 4 < length) break;
      const raw = buf.slice(o, o + 4 + length);
      o += 4 + length;
      const epoch = this.#readEpoch;
      this.#dispatch(type, raw.subarray(4), raw);
      if (this.#readEpoch !== epoch && len - o > 0) {
        fatal("unexpected_message", "handshake data continues across a key change");
      }
    }
    if (buf === fragment) {
      if (o < len && !this.#dead && !this.#peerClosed) this.#keepHandshake(fragment.subarray(o));
    } else if (o > 0) {
      this.#hs.copyWithin(0, o, this.#hsLen);
      this.#hsLen -= o;
    }
  }

  /** Appends bytes of a partial handshake message to #hs. */
  #keepHandshake(bytes: Uint8Array): void {
    if (this.#hsLen + bytes.length > this.#hs.length) {
      const next = new Uint8Array(Math.max(this.#hs.length * 2, this.#hsLen + bytes.length, 1024));
      next.set(this.#hs.subarray(0, this.#hsLen));
      this.#hs = next;
    }
    this.#hs.set(bytes, this.#hsLen);
    this.#hsLen += bytes.length;
  }

  #dispatch(type: number, body: Uint8Array, raw: Uint8Array): void {
    if (!this.#complete) {
      this.#driver!.onMessage(type, body, raw);
      return;
    }
    if (type === HandshakeType.keyUpdate) {
      if (body.length !== 1 || body[0]! > 1) {
        fatal(body.length !== 1 ? "decode_error" : "illegal_parameter", "malformed KeyUpdate");
      }
      const suite = this.#suite!;
      this.setReadSecret(suite, nextTrafficSecret(suite.hash, this.#readSecret!));
      if (body[0] === 1 && !this.#closedWrite) this.#sendKeyUpdate(false);
      return;
    }
    if (type === HandshakeType.newSessionTicket && this.#driver!.isClient) {
      this.#driver!.onNewSessionTicket?.(body);
      return;
    }
    fatal("unexpected_message", `handshake message ${type} after the handshake`);
  }
}
