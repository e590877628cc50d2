/**
 * SM3 (GB/T 32905), HMAC-SM3, and the SM3-based key derivation function of GB/T 32918 (used by SM2
 * encryption and key exchange).
 *
 * The hashing is a plain-TypeScript compression function over 32-bit words. Deno's `node:crypto` has a native
 * `createHash('sm3')` ({@link sm3Native}), but it measured slower at every size here: each call costs a few
 * microseconds of binding overhead (which dominates the short inputs of HMAC, HKDF, the KDF and Z_A), a state
 * can only be forked through another call (`copy()`), and bulk throughput was ~100–110 MB/s native against
 * ~105–210 MB/s TypeScript for 64 KiB–1 MiB inputs (bench/crypto_sm2.ts, "SM3" groups).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type HashAlgorithm, hmac, HmacKey, type IncrementalHash } from "./hmac.ts";
import { Md32HmacCore, mdFinish } from "./_md32.ts";

const IV = Int32Array.of(
  0x7380166f,
  0x4914b2b9,
  0x172442d7,
  0xda8a0600 | 0,
  0xa96f30bc | 0,
  0x163138aa,
  0xe38dee4d | 0,
  0xb0fb0e4e | 0,
);

/** T_j rotated left by j mod 32, per round. */
const TJ = new Int32Array(64);
for (let j = 0; j < 64; j++) {
  const t = j < 16 ? 0x79cc4519 : 0x7a879d8a;
  const r = j % 32;
  TJ[j] = r === 0 ? t : (t << r) | (t >>> (32 - r));
}

/** Message-expansion scratch, shared: compress() is synchronous and not re-entrant. */
const W = new Int32Array(68);

function compress(st: Int32Array, b: Uint8Array, off: number): void {
  const w = W;
  for (let i = 0; i < 16; i++, off += 4) {
    w[i] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
  }
  for (let j = 16; j < 68; j++) {
    const y = w[j - 3]!;
    let x = w[j - 16]! ^ w[j - 9]! ^ ((y << 15) | (y >>> 17));
    x = x ^ ((x << 15) | (x >>> 17)) ^ ((x << 23) | (x >>> 9));
    const z = w[j - 13]!;
    w[j] = x ^ ((z << 7) | (z >>> 25)) ^ w[j - 6]!;
  }
  let a = st[0]!, b1 = st[1]!, c = st[2]!, d = st[3]!, e = st[4]!, f = st[5]!, g = st[6]!, h = st[7]!;
  for (let j = 0; j < 16; j++) {
    const a12 = (a << 12) | (a >>> 20);
    let ss1 = (a12 + e + TJ[j]!) | 0;
    ss1 = (ss1 << 7) | (ss1 >>> 25);
    const wj = w[j]!;
    const tt1 = ((a ^ b1 ^ c) + d + (ss1 ^ a12) + (wj ^ w[j + 4]!)) | 0;
    const tt2 = ((e ^ f ^ g) + h + ss1 + wj) | 0;
    d = c;
    c = (b1 << 9) | (b1 >>> 23);
    b1 = a;
    a = tt1;
    h = g;
    g = (f << 19) | (f >>> 13);
    f = e;
    e = tt2 ^ ((tt2 << 9) | (tt2 >>> 23)) ^ ((tt2 << 17) | (tt2 >>> 15));
  }
  for (let j = 16; j < 64; j++) {
    const a12 = (a << 12) | (a >>> 20);
    let ss1 = (a12 + e + TJ[j]!) | 0;
    ss1 = (ss1 << 7) | (ss1 >>> 25);
    const wj = w[j]!;
    const tt1 = (((a & b1) | (a & c) | (b1 & c)) + d + (ss1 ^ a12) + (wj ^ w[j + 4]!)) | 0;
    const tt2 = (((e & f) | (~e & g)) + h + ss1 + wj) | 0;
    d = c;
    c = (b1 << 9) | (b1 >>> 23);
    b1 = a;
    a = tt1;
    h = g;
    g = (f << 19) | (f >>> 13);
    f = e;
    e = tt2 ^ ((tt2 << 9) | (tt2 >>> 23)) ^ ((tt2 << 17) | (tt2 >>> 15));
  }
  st[0]! ^= a;
  st[1]! ^= b1;
  st[2]! ^= c;
  st[3]! ^= d;
  st[4]! ^= e;
  st[5]! ^= f;
  st[6]! ^= g;
  st[7]! ^= h;
}

/**
 * Shared scratch blocks for the final padding and for HMAC's message assembly: every use is synchronous and
 * complete within one call. Allocating even a small typed array costs ~0.3 µs here, as much as a third of a
 * compression, and the handshake paths (transcript forks, HMAC, HKDF) hash many short inputs.
 */
/** Scratch state of {@link Sm3State.peekDigest}. */
const PEEK_STATE = new Int32Array(8);

/** An incremental SM3 computation in TypeScript; `copy()` is cheap. */
class Sm3State implements IncrementalHash {
  readonly #st: Int32Array;
  /** Holds a partial block; allocated only when an update leaves one. */
  #buf: Uint8Array | undefined;
  #bufLen: number;
  #total: number;

  constructor(st?: Int32Array, buf?: Uint8Array, bufLen = 0, total = 0) {
    this.#st = st ?? IV.slice();
    this.#buf = buf;
    this.#bufLen = bufLen;
    this.#total = total;
  }

  update(data: Uint8Array): IncrementalHash {
    let off = 0;
    const n = data.length;
    this.#total += n;
    if (this.#bufLen > 0) {
      const buf = this.#buf!;
      const take = Math.min(64 - this.#bufLen, n);
      for (let i = 0, o = this.#bufLen; i < take; i++) buf[o + i] = data[i]!;
      this.#bufLen += take;
      off = take;
      if (this.#bufLen < 64) return this;
      compress(this.#st, buf, 0);
      this.#bufLen = 0;
    }
    for (; off + 64 <= n; off += 64) compress(this.#st, data, off);
    if (off < n) {
      const buf = (this.#buf ??= new Uint8Array(64));
      for (let i = off; i < n; i++) buf[i - off] = data[i]!;
      this.#bufLen = n - off;
    }
    return this;
  }

  digest(): Uint8Array {
    const out = new Uint8Array(32);
    mdFinish(compress, this.#st, this.#buf, this.#bufLen, this.#total, out);
    return out;
  }

  copy(): IncrementalHash {
    const buf = this.#bufLen > 0 ? this.#buf!.slice() : undefined;
    return new Sm3State(this.#st.slice(), buf, this.#bufLen, this.#total);
  }

  /** The digest so far, finished in a scratch state: a TLS transcript hash allocated ~3 typed arrays per copy. */
  peekDigest(): Uint8Array {
    const st = PEEK_STATE;
    st.set(this.#st);
    const out = new Uint8Array(32);
    mdFinish(compress, st, this.#buf, this.#bufLen, this.#total, out);
    return out;
  }
}

/**
 * HMAC-SM3 with its pad states precomputed, behind {@link HmacKey} (see {@link HashAlgorithm.hmacCore}): a MAC
 * assembles its message in shared scratch blocks and allocates only its output, where the generic HMAC forks
 * two hash states and allocates ~7 typed arrays (3.8 → ~1.6 µs for a 64-byte message; bench/crypto_sm2.ts).
 */
class Sm3HmacCore extends Md32HmacCore {
  constructor(key: Uint8Array) {
    super(compress, IV, key.length > 64 ? sm3(key) : key);
  }

  override create(): IncrementalHash {
    const inner = new Sm3State(this.pads.slice(0, 8), undefined, 0, 64);
    const pads = this.pads;
    const h: IncrementalHash = {
      update(data: Uint8Array): IncrementalHash {
        inner.update(data);
        return h;
      },
      digest: () => new Sm3State(pads.slice(8, 16), undefined, 0, 64).update(inner.digest()).digest(),
      peekDigest: () => new Sm3State(pads.slice(8, 16), undefined, 0, 64).update(inner.peekDigest()).digest(),
      copy(): IncrementalHash {
        throw new Error("HMAC: incremental copy is not supported");
      },
    };
    return h;
  }
}

/** SM3 as a {@link HashAlgorithm}: 32-byte digest, 64-byte block. */
export const SM3: HashAlgorithm = {
  name: "sm3",
  outputLength: 32,
  blockLength: 64,
  create: () => new Sm3State(),
  digest: (data) => sm3(data),
  hmacCore: (key) => new Sm3HmacCore(key),
};

/** Returns SM3(data) with `node:crypto`'s native implementation (an independent oracle for tests). */
export function sm3Native(data: Uint8Array): Uint8Array {
  const d = createHash("sm3").update(data).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** SM3 digest length in bytes. */
export const SM3_DIGEST_LENGTH = 32;

/**
 * Returns SM3(data).
 *
 * @example
 * ```ts
 * sm3(new TextEncoder().encode("abc")); // 66c7f0f4...8f4ba8e0
 * ```
 */
export function sm3(data: Uint8Array): Uint8Array {
  return new Sm3State().update(data).digest();
}

/** Starts an incremental SM3 computation (TypeScript; `copy()` forks it cheaply). */
export function createSm3(): IncrementalHash {
  return new Sm3State();
}

/**
 * Returns HMAC-SM3(key, data). For a key used more than once, keep a {@link HmacKey} over {@link SM3}.
 *
 * @param key the secret key
 * @param data the message
 */
export function hmacSm3(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(SM3, key, data);
}

/**
 * Returns an HMAC-SM3 key with its pad states precomputed.
 *
 * @param key the secret key
 */
export function hmacSm3Key(key: Uint8Array): HmacKey {
  return new HmacKey(SM3, key);
}

/**
 * The GB/T 32918 key derivation function: SM3(Z || ct) for ct = 1, 2, ... (32-bit big-endian), concatenated
 * and truncated to `length` bytes.
 *
 * @param z the shared input
 * @param length the output length in bytes
 */
export function sm3Kdf(z: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const base = SM3.create().update(z);
  const ct = new Uint8Array(4);
  for (let counter = 1, off = 0; off < length; counter++, off += SM3_DIGEST_LENGTH) {
    ct[0] = counter >>> 24;
    ct[1] = counter >>> 16;
    ct[2] = counter >>> 8;
    ct[3] = counter;
    const block = base.copy().update(ct).digest();
    out.set(length - off >= SM3_DIGEST_LENGTH ? block : block.subarray(0, length - off), off);
  }
  return out;
}
