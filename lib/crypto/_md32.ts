/**
 * The Merkle–Damgård finish that SM3 and SHA-256 share: 64-byte blocks, eight 32-bit words of state, the message
 * length in bits big-endian at the end of the last block.
 *
 * @module
 */

import type { HmacCore, IncrementalHash } from "./hmac.ts";

/** A compression function: absorbs the 64-byte block of `block` at `at` into `st`. */
export type Compress = (st: Int32Array, block: Uint8Array, at: number) => void;

const PAD = new Uint8Array(64);

/**
 * Finishes a computation: pads the `srcLen` buffered bytes of `src` (a message of `total` bytes in all),
 * compresses into `st` and writes the 32-byte digest to `out` at `at`. `st` is spent afterwards.
 */
export function mdFinish(
  compress: Compress,
  st: Int32Array,
  src: Uint8Array | undefined,
  srcLen: number,
  total: number,
  out: Uint8Array,
  at = 0,
  srcAt = 0,
): void {
  const pad = PAD;
  for (let i = 0; i < srcLen; i++) pad[i] = src![srcAt + i]!;
  let len = srcLen;
  pad[len++] = 0x80;
  if (len > 56) {
    pad.fill(0, len);
    compress(st, pad, 0);
    len = 0;
  }
  pad.fill(0, len, 56);
  const hi = Math.floor(total / 0x20000000); // bits / 2^32
  const lo = (total * 8) >>> 0;
  pad[56] = hi >>> 24;
  pad[57] = hi >>> 16;
  pad[58] = hi >>> 8;
  pad[59] = hi;
  pad[60] = lo >>> 24;
  pad[61] = lo >>> 16;
  pad[62] = lo >>> 8;
  pad[63] = lo;
  compress(st, pad, 0);
  for (let i = 0; i < 8; i++) {
    const v = st[i]!;
    out[at + 4 * i] = v >>> 24;
    out[at + 4 * i + 1] = v >>> 16;
    out[at + 4 * i + 2] = v >>> 8;
    out[at + 4 * i + 3] = v;
  }
}

const HMAC_BLOCK = new Uint8Array(64);
const HMAC_STATE = new Int32Array(8);
const HMAC_INNER = new Uint8Array(32);

/**
 * The pad states of HMAC for `key` (at most 64 bytes: longer keys are hashed by the caller): the inner pad's state
 * into `pads` words 0..7, the outer pad's into 8..15.
 */
export function mdHmacPads(compress: Compress, iv: Int32Array, key: Uint8Array, pads: Int32Array): void {
  const blk = HMAC_BLOCK, st = HMAC_STATE;
  for (const [byte, at] of [[0x36, 0], [0x5c, 8]] as const) {
    blk.fill(byte);
    for (let i = 0; i < key.length; i++) blk[i]! ^= key[i]!;
    st.set(iv);
    compress(st, blk, 0);
    pads.set(st, at);
  }
}

/**
 * HMAC(key, concatenation of `parts`) from the pad states {@link mdHmacPads} computed, written to `out` at `at`
 * (`out` may be one of the parts: they are read first). Whole blocks are compressed straight from the parts;
 * only what straddles them is copied into a scratch block.
 */
export function mdHmacInto(
  compress: Compress,
  pads: Int32Array,
  parts: readonly Uint8Array[],
  out: Uint8Array,
  at: number,
): void {
  const st = HMAC_STATE, blk = HMAC_BLOCK;
  for (let i = 0; i < 8; i++) st[i] = pads[i]!;
  let bl = 0;
  let total = 64;
  for (const p of parts) {
    const n = p.length;
    total += n;
    let off = 0;
    if (bl > 0) {
      const take = Math.min(64 - bl, n);
      for (let i = 0; i < take; i++) blk[bl + i] = p[i]!;
      bl += take;
      off = take;
      if (bl < 64) continue;
      compress(st, blk, 0);
      bl = 0;
    }
    for (; off + 64 <= n; off += 64) compress(st, p, off);
    for (let i = off; i < n; i++) blk[i - off] = p[i]!;
    bl = n - off;
  }
  mdFinish(compress, st, blk, bl, total, HMAC_INNER, 0);
  for (let i = 0; i < 8; i++) st[i] = pads[8 + i]!;
  mdFinish(compress, st, HMAC_INNER, 32, 64 + 32, out, at);
}

/**
 * An HMAC for one key over a 32-bit Merkle–Damgård hash, pad states hashed once: what SM3's and SHA-256's
 * `hmacCore` share. Subclasses give the incremental form.
 */
export abstract class Md32HmacCore implements HmacCore {
  /** The inner pad's state (words 0..7) and the outer pad's (8..15), in one array: one allocation per key. */
  protected readonly pads = new Int32Array(16);
  readonly #compress: Compress;

  /** @param key at most 64 bytes (longer keys are hashed by the caller, as RFC 2104 says) */
  constructor(compress: Compress, iv: Int32Array, key: Uint8Array) {
    this.#compress = compress;
    mdHmacPads(compress, iv, key, this.pads);
  }

  mac(parts: readonly Uint8Array[]): Uint8Array {
    const out = new Uint8Array(32);
    mdHmacInto(this.#compress, this.pads, parts, out, 0);
    return out;
  }

  macInto(parts: readonly Uint8Array[], out: Uint8Array, at: number): void {
    mdHmacInto(this.#compress, this.pads, parts, out, at);
  }

  abstract create(): IncrementalHash;
}
