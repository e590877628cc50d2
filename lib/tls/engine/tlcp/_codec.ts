/**
 * Byte readers and writers for TLCP handshake messages, and the internal fatal-error type that the engine turns
 * into an alert. Private to this folder.
 *
 * @module
 */

import type { TlsAlertDescription } from "../../../api/tls.ts";

/** A protocol failure inside the engine: the alert to send and why. Caught by the engine, never escapes it. */
export class TlcpFatal extends Error {
  /** The alert to send to the peer. */
  readonly alert: TlsAlertDescription;

  constructor(alert: TlsAlertDescription, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlcpFatal";
    this.alert = alert;
  }
}

/** Reads big-endian integers and length-prefixed vectors; every overrun is a `decode_error`. */
export class Reader {
  readonly #b: Uint8Array;
  #o = 0;
  readonly #what: string;

  constructor(bytes: Uint8Array, what: string) {
    this.#b = bytes;
    this.#what = what;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#b.length - this.#o;
  }

  #need(n: number): void {
    if (this.#b.length - this.#o < n) throw new TlcpFatal("decode_error", `tlcp: ${this.#what}: truncated`);
  }

  u8(): number {
    this.#need(1);
    return this.#b[this.#o++]!;
  }

  u16(): number {
    this.#need(2);
    const v = (this.#b[this.#o]! << 8) | this.#b[this.#o + 1]!;
    this.#o += 2;
    return v;
  }

  u24(): number {
    this.#need(3);
    const v = (this.#b[this.#o]! << 16) | (this.#b[this.#o + 1]! << 8) | this.#b[this.#o + 2]!;
    this.#o += 3;
    return v;
  }

  /** The next `n` bytes (a view). */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.#b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }

  vec8(): Uint8Array {
    return this.bytes(this.u8());
  }

  vec16(): Uint8Array {
    return this.bytes(this.u16());
  }

  vec24(): Uint8Array {
    return this.bytes(this.u24());
  }

  /** Throws `decode_error` unless everything was read. */
  end(): void {
    if (this.#o !== this.#b.length) throw new TlcpFatal("decode_error", `tlcp: ${this.#what}: trailing bytes`);
  }
}

/** Builds a message from parts; lengths are written as the vectors are added. */
export class Writer {
  #buf = new Uint8Array(256);
  #n = 0;

  #room(n: number): void {
    if (this.#n + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#n + n));
    next.set(this.#buf.subarray(0, this.#n));
    this.#buf = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#n++] = v;
    return this;
  }

  u16(v: number): this {
    this.#room(2);
    this.#buf[this.#n++] = v >>> 8;
    this.#buf[this.#n++] = v;
    return this;
  }

  u24(v: number): this {
    this.#room(3);
    this.#buf[this.#n++] = v >>> 16;
    this.#buf[this.#n++] = v >>> 8;
    this.#buf[this.#n++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#n);
    this.#n += b.length;
    return this;
  }

  vec8(b: Uint8Array): this {
    return this.u8(b.length).bytes(b);
  }

  vec16(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  vec24(b: Uint8Array): this {
    return this.u24(b.length).bytes(b);
  }

  /** The bytes written (a copy). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#n);
  }
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time equality of two byte arrays of public length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

/** Fresh random bytes. */
export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
