/**
 * SM4-CCM (NIST SP 800-38C, RFC 3610 formatting, with SM4 as the block cipher), the AEAD of the TLS 1.3 suite
 * `TLS_SM4_CCM_SM3` (RFC 8998).
 *
 * The CBC-MAC and the counter-mode keystream are computed in one pass over the data, on 32-bit words, each MAC
 * block paired with a counter block in one two-way SM4 call. Measured on Deno 2.9.6 (x86-64, AMD EPYC, 16 KiB
 * records): about 90 MB/s per CPU second; `wasm/sm4_ccm_wasm.ts` is about 1.2× faster.
 *
 * @example
 * ```ts
 * import { Sm4Ccm } from "./ccm.ts";
 * const ccm = new Sm4Ccm(new Uint8Array(16)); // 16-byte tags; { tagLength: 8 } for CCM_8
 * const nonce = new Uint8Array(12);
 * const sealed = ccm.seal(nonce, new TextEncoder().encode("hello"));
 * const opened = ccm.open(nonce, sealed); // Uint8Array, or null when the tag does not verify
 * ```
 *
 * @module
 */

import {
  BLOCK_SIZE,
  expandKey,
  overlapsShifted,
  readWord as rd,
  sm4Block,
  sm4Block2,
  writeWord as wr,
} from "./_sm4_core.ts";

/** Options for {@link Sm4Ccm}. */
export interface Sm4CcmOptions {
  /** Tag length in bytes: an even number from 4 to 16. Defaults to 16 (what RFC 8998 uses). */
  readonly tagLength?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * SM4 in CCM mode for one key and tag length. Nonces are 7 to 13 bytes (TLS 1.3 uses 12); a nonce of n bytes
 * limits the message to 2^(8·(15 − n)) − 1 bytes (64 KiB for 13-byte nonces).
 *
 * `seal` and `open` allocate their result; `sealInto` and `openInto` write into a caller's buffer and may work
 * in place. Parameter errors (key, tag or nonce length, message too long, output too small) throw a
 * `RangeError`; a record that fails authentication — wrong tag, wrong AAD, or shorter than the tag — makes
 * `open` return `null` and `openInto` return -1, after wiping any plaintext it wrote.
 */
export class Sm4Ccm {
  readonly #rk: Int32Array;
  readonly #tagLength: number;
  readonly #w = new Int32Array(4);
  readonly #w8 = new Int32Array(8);
  readonly #block = new Uint8Array(BLOCK_SIZE);
  readonly #tagBuf = new Uint8Array(16);

  /** Expands `key` (16 bytes) and fixes the tag length. */
  constructor(key: Uint8Array, options: Sm4CcmOptions = {}) {
    const t = options.tagLength ?? 16;
    if (!Number.isInteger(t) || t < 4 || t > 16 || t % 2 !== 0) {
      throw new RangeError(`sm4-ccm: tag length must be an even number from 4 to 16, got ${t}`);
    }
    this.#rk = expandKey(key, false);
    this.#tagLength = t;
  }

  /** The tag length in bytes. */
  get tagLength(): number {
    return this.#tagLength;
  }

  /** Encrypts and authenticates `plaintext` and returns `ciphertext || tag`. */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array {
    const out = new Uint8Array(plaintext.length + this.#tagLength);
    this.sealInto(nonce, plaintext, aad, out);
    return out;
  }

  /**
   * Like {@link Sm4Ccm.seal} but writes `ciphertext || tag` to the start of `out` and returns the number of bytes
   * written. `out` may be `plaintext` itself (or a view starting at the same byte) to encrypt in place.
   */
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    const n = plaintext.length, t = this.#tagLength;
    checkNonce(nonce, n);
    if (out.length < n + t) throw new RangeError(`sm4-ccm: output too small: need ${n + t} bytes, have ${out.length}`);
    const src = overlapsShifted(plaintext, out) ? plaintext.slice() : plaintext;
    const mac = this.#w;
    this.#macHeader(nonce, n, aad, mac);
    this.#ctr(nonce, src, out, n, mac, true);
    this.#tag(nonce, mac, out, n);
    return n + t;
  }

  /** Verifies and decrypts `ciphertext || tag`; returns the plaintext, or `null` if authentication fails. */
  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array | null {
    if (sealed.length < this.#tagLength) {
      checkNonce(nonce, 0);
      return null;
    }
    const out = new Uint8Array(sealed.length - this.#tagLength);
    return this.openInto(nonce, sealed, aad, out) < 0 ? null : out;
  }

  /**
   * Like {@link Sm4Ccm.open} but writes the plaintext to the start of `out` and returns its length, or -1 if
   * authentication fails (then the bytes it wrote are zeroed). `out` may be `sealed` itself to decrypt in place.
   */
  openInto(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    const t = this.#tagLength;
    if (sealed.length < t) {
      checkNonce(nonce, 0);
      return -1;
    }
    const n = sealed.length - t;
    checkNonce(nonce, n);
    if (out.length < n) throw new RangeError(`sm4-ccm: output too small: need ${n} bytes, have ${out.length}`);
    const src = overlapsShifted(sealed, out) ? sealed.slice() : sealed;
    const mac = this.#w;
    this.#macHeader(nonce, n, aad, mac);
    // Decryption writes only out[0, n): the received tag at src[n, n + t) survives even in place.
    this.#ctr(nonce, src, out, n, mac, false);
    const tag = this.#tagBuf;
    this.#tag(nonce, mac, tag, 0);
    let diff = 0;
    for (let i = 0; i < t; i++) diff |= tag[i]! ^ src[n + i]!;
    if (diff !== 0) {
      out.fill(0, 0, n);
      return -1;
    }
    return n;
  }

  /** Runs the CBC-MAC over B0 and the encoded AAD, leaving the MAC state in `mac`. */
  #macHeader(nonce: Uint8Array, n: number, aad: Uint8Array, mac: Int32Array): void {
    const rk = this.#rk, b = this.#block, q = 15 - nonce.length, a = aad.length;
    b[0] = (a > 0 ? 0x40 : 0) | (((this.#tagLength - 2) / 2) << 3) | (q - 1);
    b.set(nonce, 1);
    let len = n;
    for (let i = 15; i > nonce.length; i--) {
      b[i] = len & 255;
      len = Math.floor(len / 256);
    }
    sm4Block(rk, rd(b, 0), rd(b, 4), rd(b, 8), rd(b, 12), mac);
    if (a === 0) return;
    // AAD length prefix (SP 800-38C A.2.2), then the AAD, zero-padded to a block boundary.
    let hdr: number[];
    if (a < 0xff00) hdr = [a >>> 8, a & 255];
    else if (a <= 0xffffffff) hdr = [0xff, 0xfe, a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255];
    else {
      const hi = Math.floor(a / 0x100000000), lo = a >>> 0;
      hdr = [0xff, 0xff, hi >>> 24, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255];
      hdr.push(lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255);
    }
    let fill = 0, i = 0;
    b.fill(0);
    for (const x of hdr) b[fill++] = x;
    while (true) {
      const take = Math.min(BLOCK_SIZE - fill, a - i);
      b.set(aad.subarray(i, i + take), fill);
      i += take;
      fill += take;
      if (fill < BLOCK_SIZE) b.fill(0, fill);
      sm4Block(rk, mac[0]! ^ rd(b, 0), mac[1]! ^ rd(b, 4), mac[2]! ^ rd(b, 8), mac[3]! ^ rd(b, 12), mac);
      if (i >= a) break;
      fill = 0;
    }
  }

  /**
   * Counter mode from counter 1 over `n` bytes of `src` into `dst`, folding the plaintext (the input when sealing,
   * the output when opening) into the CBC-MAC state `mac`.
   */
  #ctr(nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, n: number, mac: Int32Array, sealing: boolean): void {
    const rk = this.#rk, b = this.#block, w = this.#w8;
    counterBlock(b, nonce);
    const c0 = rd(b, 0), c1 = rd(b, 4), c2 = rd(b, 8);
    // Counter 0 sits in the low q >= 2 bytes; the message length bound keeps the count inside them.
    let c3 = rd(b, 12);
    let m0 = mac[0]!, m1 = mac[1]!, m2 = mac[2]!, m3 = mac[3]!;
    // The CBC-MAC chain is serial, so each MAC block is paired with an independent counter block in one
    // two-way SM4 call (~1.6x two single calls). Sealing pairs MAC(P_i) with E(ctr_i); opening needs E(ctr_i)
    // before P_i, so it pairs MAC(P_i) with E(ctr_i+1) and starts with one lone counter block.
    let k0 = 0, k1 = 0, k2 = 0, k3 = 0;
    if (!sealing && n > 0) {
      sm4Block(rk, c0, c1, c2, (c3 + 1) | 0, w);
      k0 = w[0]!, k1 = w[1]!, k2 = w[2]!, k3 = w[3]!;
    }
    for (let i = 0; i < n; i += 16) {
      c3 = (c3 + 1) | 0;
      const m = n - i;
      let a0: number, a1: number, a2: number, a3: number;
      if (m >= 16) a0 = rd(src, i), a1 = rd(src, i + 4), a2 = rd(src, i + 8), a3 = rd(src, i + 12);
      else {
        b.fill(0);
        b.set(src.subarray(i, n));
        a0 = rd(b, 0), a1 = rd(b, 4), a2 = rd(b, 8), a3 = rd(b, 12);
      }
      let p0: number, p1: number, p2: number, p3: number, o0: number, o1: number, o2: number, o3: number;
      if (sealing) {
        p0 = a0, p1 = a1, p2 = a2, p3 = a3;
        sm4Block2(rk, m0 ^ p0, m1 ^ p1, m2 ^ p2, m3 ^ p3, c0, c1, c2, c3, w);
        o0 = a0 ^ w[4]!, o1 = a1 ^ w[5]!, o2 = a2 ^ w[6]!, o3 = a3 ^ w[7]!;
      } else {
        o0 = a0 ^ k0, o1 = a1 ^ k1, o2 = a2 ^ k2, o3 = a3 ^ k3;
        if (m < 16) {
          // The MAC covers the plaintext zero-padded, not the keystream past its end.
          b.fill(0);
          wr(b, 0, o0), wr(b, 4, o1), wr(b, 8, o2), wr(b, 12, o3);
          b.fill(0, m);
          o0 = rd(b, 0), o1 = rd(b, 4), o2 = rd(b, 8), o3 = rd(b, 12);
        }
        p0 = o0, p1 = o1, p2 = o2, p3 = o3;
        if (m > 16) {
          sm4Block2(rk, m0 ^ p0, m1 ^ p1, m2 ^ p2, m3 ^ p3, c0, c1, c2, (c3 + 1) | 0, w);
          k0 = w[4]!, k1 = w[5]!, k2 = w[6]!, k3 = w[7]!;
        } else sm4Block(rk, m0 ^ p0, m1 ^ p1, m2 ^ p2, m3 ^ p3, w);
      }
      m0 = w[0]!, m1 = w[1]!, m2 = w[2]!, m3 = w[3]!;
      if (m >= 16) wr(dst, i, o0), wr(dst, i + 4, o1), wr(dst, i + 8, o2), wr(dst, i + 12, o3);
      else {
        wr(b, 0, o0), wr(b, 4, o1), wr(b, 8, o2), wr(b, 12, o3);
        dst.set(b.subarray(0, m), i);
      }
    }
    mac[0] = m0, mac[1] = m1, mac[2] = m2, mac[3] = m3;
  }

  /** Writes MSB_t(MAC) ^ MSB_t(E(counter 0)) to `out` at `at`. */
  #tag(nonce: Uint8Array, mac: Int32Array, out: Uint8Array, at: number): void {
    const b = this.#block, s = this.#w8;
    counterBlock(b, nonce);
    sm4Block(this.#rk, rd(b, 0), rd(b, 4), rd(b, 8), rd(b, 12), s);
    for (let j = 0; j < 4; j++) wr(b, 4 * j, mac[j]! ^ s[j]!);
    out.set(b.subarray(0, this.#tagLength), at);
    b.fill(0);
    mac.fill(0);
  }
}

/** Sets `b` to counter block 0: flags q − 1, the nonce, and a zero counter. */
function counterBlock(b: Uint8Array, nonce: Uint8Array): void {
  b.fill(0);
  b[0] = 14 - nonce.length;
  b.set(nonce, 1);
}

function checkNonce(nonce: Uint8Array, n: number): void {
  if (!(nonce instanceof Uint8Array) || nonce.length < 7 || nonce.length > 13) {
    throw new RangeError(`sm4-ccm: nonce must be 7 to 13 bytes (12 for TLS)`);
  }
  const q = 15 - nonce.length;
  if (q < 6 && n >= 2 ** (8 * q)) {
    throw new RangeError(`sm4-ccm: message of ${n} bytes too long for a ${nonce.length}-byte nonce`);
  }
}
