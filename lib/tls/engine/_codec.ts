/**
 * The TLS wire codec shared by the engines (TLS 1.3 and TLCP): a big-endian reader of integers and
 * length-prefixed vectors, a growable writer, and byte helpers. Each engine supplies how a malformed message
 * fails (its own fatal-error type and message prefix), so the alert it sends stays `decode_error`.
 * Private to `lib/tls/engine/`.
 *
 * @module
 */

/** How a reader reports a malformed message; must throw. */
export type DecodeFailure = (message: string) => never;

/** Reads big-endian integers and length-prefixed vectors; every overrun goes to the engine's `fail`. */
export class TlsReader {
  readonly #b: Uint8Array;
  #o = 0;
  readonly #what: string;
  readonly #fail: DecodeFailure;

  constructor(bytes: Uint8Array, what: string, fail: DecodeFailure) {
    this.#b = bytes;
    this.#what = what;
    this.#fail = fail;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#b.length - this.#o;
  }

  #need(n: number): void {
    if (this.#b.length - this.#o < n) this.#fail(`${this.#what}: truncated`);
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

  #vec(n: number, min: number): Uint8Array {
    if (n < min) this.#fail(`${this.#what}: vector shorter than ${min}`);
    return this.bytes(n);
  }

  /** A vector with a 1-byte length; `min` is the smallest legal length. */
  vec8(min = 0): Uint8Array {
    return this.#vec(this.u8(), min);
  }

  /** A vector with a 2-byte length. */
  vec16(min = 0): Uint8Array {
    return this.#vec(this.u16(), min);
  }

  /** A vector with a 3-byte length. */
  vec24(min = 0): Uint8Array {
    return this.#vec(this.u24(), min);
  }

  /** Fails unless everything was read. */
  end(): void {
    if (this.#o !== this.#b.length) this.#fail(`${this.#what}: trailing bytes`);
  }
}

/** A growable big-endian writer; vectors are written from bytes or filled in by a callback. */
export class TlsWriter {
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

  /** `b` with a 1-byte length prefix. */
  vec8(b: Uint8Array): this {
    return this.u8(b.length).bytes(b);
  }

  /** `b` with a 2-byte length prefix. */
  vec16(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  /** `b` with a 3-byte length prefix. */
  vec24(b: Uint8Array): this {
    return this.u24(b.length).bytes(b);
  }

  /** Writes `body` into a vector with a `lenBytes`-byte length prefix filled in afterwards. */
  vec(lenBytes: 1 | 2 | 3, body: (w: this) => void): this {
    this.#room(lenBytes);
    const at = this.#o;
    this.#o += lenBytes;
    body(this);
    const n = this.#o - at - lenBytes;
    if (n >= 2 ** (8 * lenBytes)) throw new RangeError(`tls: vector of ${n} bytes does not fit its length`);
    for (let i = lenBytes - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) this.#b[at + i] = v & 0xff;
    return this;
  }

  /**
   * What was written, as a view of the writer's buffer (a copy cost a typed array, ~0.5 µs on Deno, per encoded
   * message). Writing after `finish` never changes the bytes returned: writes go past them, and a vector's length
   * is filled in before it closes.
   */
  finish(): Uint8Array {
    return this.#b.subarray(0, this.#o);
  }
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

/** Constant-time equality of two byte arrays (their length is not secret). */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}
