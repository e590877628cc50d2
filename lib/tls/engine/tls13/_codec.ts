/**
 * Byte readers and writers for TLS 1.3 messages, the wire constants, and the internal fatal-error type that the
 * engine turns into an alert. Private to this folder.
 *
 * @module
 */

import type { TlsAlertDescription } from "../../../api/tls.ts";

/** A protocol failure inside the engine: the alert to send and why. Caught by the engine, never escapes it. */
export class Tls13Fatal extends Error {
  /** The alert to send to the peer. */
  readonly alert: TlsAlertDescription;

  constructor(alert: TlsAlertDescription, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Tls13Fatal";
    this.alert = alert;
  }
}

/** Throws a {@link Tls13Fatal}. */
export function fatal(alert: TlsAlertDescription, message: string, cause?: unknown): never {
  throw new Tls13Fatal(alert, `tls13: ${message}`, cause === undefined ? undefined : { cause });
}

/** Record content types (RFC 8446 §5.1). */
export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

/** Handshake message types (RFC 8446 §4). */
export const HandshakeType = {
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  endOfEarlyData: 5,
  encryptedExtensions: 8,
  certificate: 11,
  certificateRequest: 13,
  certificateVerify: 15,
  finished: 20,
  keyUpdate: 24,
  messageHash: 254,
} as const;

/** Extension code points (RFC 8446 §4.2, RFC 6066, RFC 7301). */
export const ExtensionType = {
  serverName: 0,
  supportedGroups: 10,
  signatureAlgorithms: 13,
  alpn: 16,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  certificateAuthorities: 47,
  postHandshakeAuth: 49,
  signatureAlgorithmsCert: 50,
  keyShare: 51,
} as const;

/** The TLS 1.3 version on the wire. */
export const TLS13 = 0x0304;

/** The legacy version fields carry TLS 1.2. */
export const TLS12 = 0x0303;

/** The ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3). */
export const HRR_RANDOM: Uint8Array = new Uint8Array([
  0xcf,
  0x21,
  0xad,
  0x74,
  0xe5,
  0x9a,
  0x61,
  0x11,
  0xbe,
  0x1d,
  0x8c,
  0x02,
  0x1e,
  0x65,
  0xb8,
  0x91,
  0xc2,
  0xa2,
  0x11,
  0x16,
  0x7a,
  0xbb,
  0x8c,
  0x5e,
  0x07,
  0x9e,
  0x09,
  0xe2,
  0xc8,
  0xa8,
  0x33,
  0x9c,
]);

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
    if (this.#b.length - this.#o < n) fatal("decode_error", `${this.#what}: truncated`);
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

  u32(): number {
    this.#need(4);
    const v = this.#b[this.#o]! * 0x1000000 + ((this.#b[this.#o + 1]! << 16) | (this.#b[this.#o + 2]! << 8) |
      this.#b[this.#o + 3]!);
    this.#o += 4;
    return v;
  }

  /** `n` bytes as a view (not a copy). */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.#b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }

  /** A vector with a 1-byte length; `min` is the smallest legal length. */
  vec8(min = 0): Uint8Array {
    const n = this.u8();
    if (n < min) fatal("decode_error", `${this.#what}: vector shorter than ${min}`);
    return this.bytes(n);
  }

  /** A vector with a 2-byte length. */
  vec16(min = 0): Uint8Array {
    const n = this.u16();
    if (n < min) fatal("decode_error", `${this.#what}: vector shorter than ${min}`);
    return this.bytes(n);
  }

  /** A vector with a 3-byte length. */
  vec24(min = 0): Uint8Array {
    const n = this.u24();
    if (n < min) fatal("decode_error", `${this.#what}: vector shorter than ${min}`);
    return this.bytes(n);
  }

  /** Throws `decode_error` unless everything was read. */
  end(): void {
    if (this.#o !== this.#b.length) fatal("decode_error", `${this.#what}: trailing bytes`);
  }
}

/** A growable big-endian writer with length-prefixed vectors filled in afterwards. */
export class Writer {
  #b: Uint8Array;
  #o = 0;

  constructor(capacity = 256) {
    this.#b = new Uint8Array(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#o;
  }

  #room(n: number): void {
    if (this.#o + n <= this.#b.length) return;
    const next = new Uint8Array(Math.max(this.#b.length * 2, this.#o + n));
    next.set(this.#b.subarray(0, this.#o));
    this.#b = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#b[this.#o++] = v;
    return this;
  }

  u16(v: number): this {
    this.#room(2);
    this.#b[this.#o++] = v >>> 8;
    this.#b[this.#o++] = v & 0xff;
    return this;
  }

  u24(v: number): this {
    this.#room(3);
    this.#b[this.#o++] = v >>> 16;
    this.#b[this.#o++] = (v >>> 8) & 0xff;
    this.#b[this.#o++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    this.#b[this.#o++] = v >>> 24;
    this.#b[this.#o++] = (v >>> 16) & 0xff;
    this.#b[this.#o++] = (v >>> 8) & 0xff;
    this.#b[this.#o++] = v & 0xff;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#b.set(b, this.#o);
    this.#o += b.length;
    return this;
  }

  /** Writes `body` into a vector with a `lenBytes`-byte length prefix. */
  vec(lenBytes: 1 | 2 | 3, body: (w: this) => void): this {
    this.#room(lenBytes);
    const at = this.#o;
    this.#o += lenBytes;
    body(this);
    const n = this.#o - at - lenBytes;
    if (n >= 2 ** (8 * lenBytes)) throw new RangeError(`tls13: vector of ${n} bytes does not fit its length`);
    for (let i = lenBytes - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) this.#b[at + i] = v & 0xff;
    return this;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.#b.slice(0, this.#o);
  }
}

/** Wraps `body` as a handshake message: type, 3-byte length, body. */
export function handshakeMessage(type: number, body: Uint8Array): Uint8Array {
  const m = new Uint8Array(4 + body.length);
  m[0] = type;
  m[1] = body.length >>> 16;
  m[2] = (body.length >>> 8) & 0xff;
  m[3] = body.length & 0xff;
  m.set(body, 4);
  return m;
}

/** Concatenates byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
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

/** Constant-time equality of two byte arrays (length is not secret). */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}
