/**
 * GHASH (NIST SP 800-38D) core over 32-bit words, with two per-key table layouts:
 *
 * - 8-bit Shoup tables ({@link ghashTableShoup8}, {@link ghashMulShoup8}): 256 rows of b·H plus a 256-entry
 *   reduction table, 5 KiB per key; Horner's rule over the 16 bytes with a shift and one reduction lookup per
 *   byte. The default in `Sm4Gcm` once a key has hashed a few KiB.
 * - 4-bit Shoup tables ({@link ghashTableShoup4}, {@link ghashMulShoup4}): 16 rows plus 16 reduction words,
 *   320 bytes; twice the steps of the 8-bit table but ~15x cheaper to build. Each `Sm4Gcm` key starts on it.
 * - One 256-row table per byte position ({@link ghashTable}, {@link ghashMul}): 64 KiB per key; X·H is the XOR
 *   of 16 rows with no shifts and no reduction.
 *
 * Measured on Deno 2.9.6 (V8, x86-64, AMD EPYC), per CPU second: GHASH alone about 440 MB/s with the large
 * layout and 400 MB/s with Shoup tables; SM4-GCM as a whole 120–128 MB/s with either, because the large table
 * evicts the SM4 T-tables from L1.
 *
 * Private to `lib/crypto/`.
 *
 * @module
 */

/** The number of Int32 entries in a GHASH table. */
export const GHASH_TABLE_WORDS = 16 * 256 * 4;

/**
 * Builds the multiplication table for the hash subkey H given as four big-endian words.
 * Entry `((i * 256 + b) * 4 + j)` is word j of (the block whose byte i is b and others zero) · H.
 */
export function ghashTable(h0: number, h1: number, h2: number, h3: number): Int32Array {
  const tab = new Int32Array(GHASH_TABLE_WORDS);
  let v0 = h0, v1 = h1, v2 = h2, v3 = h3;
  // Bit k of the block (GCM order: MSB of byte 0 first) is the coefficient of x^k; row for it is H·x^k.
  for (let k = 0; k < 128; k++) {
    const at = (((k >>> 3) * 256) + (0x80 >>> (k & 7))) * 4;
    tab[at] = v0;
    tab[at + 1] = v1;
    tab[at + 2] = v2;
    tab[at + 3] = v3;
    const lsb = v3 & 1;
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ (-lsb & 0xe1000000);
  }
  for (let i = 0; i < 16; i++) {
    const base = i * 256;
    for (let b = 3; b < 256; b++) {
      const low = b & -b;
      if (low === b) continue;
      const d = (base + b) * 4, s1 = (base + low) * 4, s2 = (base + (b ^ low)) * 4;
      tab[d] = tab[s1]! ^ tab[s2]!;
      tab[d + 1] = tab[s1 + 1]! ^ tab[s2 + 1]!;
      tab[d + 2] = tab[s1 + 2]! ^ tab[s2 + 2]!;
      tab[d + 3] = tab[s1 + 3]! ^ tab[s2 + 3]!;
    }
  }
  return tab;
}

/** Sets `out[0..3]` = (x0..x3) · H for the table of H. */
export function ghashMul(tab: Int32Array, x0: number, x1: number, x2: number, x3: number, out: Int32Array): void {
  let i = (x0 >>> 24) << 2;
  let z0 = tab[i]!, z1 = tab[i + 1]!, z2 = tab[i + 2]!, z3 = tab[i + 3]!;
  i = (256 | ((x0 >>> 16) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (512 | ((x0 >>> 8) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (768 | (x0 & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (1024 | (x1 >>> 24)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (1280 | ((x1 >>> 16) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (1536 | ((x1 >>> 8) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (1792 | (x1 & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (2048 | (x2 >>> 24)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (2304 | ((x2 >>> 16) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (2560 | ((x2 >>> 8) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (2816 | (x2 & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (3072 | (x3 >>> 24)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (3328 | ((x3 >>> 16) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (3584 | ((x3 >>> 8) & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  i = (3840 | (x3 & 255)) << 2;
  z0 ^= tab[i]!, z1 ^= tab[i + 1]!, z2 ^= tab[i + 2]!, z3 ^= tab[i + 3]!;
  out[0] = z0;
  out[1] = z1;
  out[2] = z2;
  out[3] = z3;
}

/**
 * Writes the Shoup rows n·H for n < 2^bits into `t[0 .. 4·2^bits)`, n's top bit standing for x^0 (GCM's bit
 * order): the single-bit rows by halving H (multiplying by x), every other row as the XOR of two of them.
 */
function shoupRows(t: Int32Array, bits: number, h0: number, h1: number, h2: number, h3: number): void {
  const size = 1 << bits;
  let v0 = h0, v1 = h1, v2 = h2, v3 = h3;
  for (let k = 0; k < bits; k++) {
    const at = ((size >>> 1) >>> k) * 4;
    t[at] = v0, t[at + 1] = v1, t[at + 2] = v2, t[at + 3] = v3;
    const lsb = v3 & 1;
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ (-lsb & 0xe1000000);
  }
  for (let n = 3; n < size; n++) {
    const low = n & -n;
    if (low === n) continue;
    const d = n * 4, s1 = low * 4, s2 = (n ^ low) * 4;
    t[d] = t[s1]! ^ t[s2]!;
    t[d + 1] = t[s1 + 1]! ^ t[s2 + 1]!;
    t[d + 2] = t[s1 + 2]! ^ t[s2 + 2]!;
    t[d + 3] = t[s1 + 3]! ^ t[s2 + 3]!;
  }
}

/**
 * 8-bit Shoup table (5 KiB): 256 rows of b·H followed by a 256-entry reduction table, used by
 * {@link ghashMulShoup8}.
 */
export function ghashTableShoup8(h0: number, h1: number, h2: number, h3: number): Int32Array {
  // Layout: [0, 1024) rows M[b] = (byte b at position 0) · H; [1024, 1280) reduction words for a dropped byte
  // (the same for every key: copied from SHOUP8_REDUCTION, which was a third of building a key's table).
  const t = new Int32Array(1024 + 256);
  shoupRows(t, 8, h0, h1, h2, h3);
  t.set(SHOUP8_REDUCTION, 1024);
  return t;
}

/**
 * Bit j of the byte shifted out of Z·x^8 stands for x^(135 - j) = x^128 · x^(7 - j), and x^128 reduces to
 * R = 0xe1 << 120, so it contributes R shifted right by 7 - j: the word to fold in for each dropped byte.
 */
const SHOUP8_REDUCTION: Int32Array = (() => {
  const r = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    let w = 0;
    for (let j = 0; j < 8; j++) if (b & (1 << j)) w ^= 0xe1000000 >>> (7 - j);
    r[b] = w;
  }
  return r;
})();

/**
 * Sets `out[0..3]` = (x0..x3) · H with a table from {@link ghashTableShoup8}: Horner's rule from byte 15 down to
 * byte 0, multiplying by x^8 (a shift and one reduction lookup) between bytes. Unrolled.
 */
export function ghashMulShoup8(t: Int32Array, x0: number, x1: number, x2: number, x3: number, out: Int32Array): void {
  let i = (x3 & 255) << 2;
  let z0 = t[i]!, z1 = t[i + 1]!, z2 = t[i + 2]!, z3 = t[i + 3]!, r = 0;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x3 >>> 8) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x3 >>> 16) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x3 >>> 24) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x2 & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x2 >>> 8) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x2 >>> 16) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x2 >>> 24) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x1 & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x1 >>> 8) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x1 >>> 16) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x1 >>> 24) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x0 & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x0 >>> 8) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = ((x0 >>> 16) & 255) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  r = t[1024 + (z3 & 255)]!;
  z3 = (z3 >>> 8) | (z2 << 24), z2 = (z2 >>> 8) | (z1 << 24), z1 = (z1 >>> 8) | (z0 << 24), z0 = (z0 >>> 8) ^ r;
  i = (x0 >>> 24) << 2;
  z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
  out[0] = z0;
  out[1] = z1;
  out[2] = z2;
  out[3] = z3;
}

/**
 * 4-bit Shoup table (80 words, 320 bytes): 16 rows of n·H (nibble n at position 0) followed by the 16 reduction
 * words for a dropped nibble, used by {@link ghashMulShoup4}. About 0.3 µs to build against ~4.4 µs for the 8-bit
 * table, and about half as fast per block: `Sm4Gcm` starts every key on it and moves to the 8-bit table once the
 * key has hashed {@link SHOUP4_BLOCKS} blocks, so that a key protecting a few handshake records never builds the
 * large table.
 */
export function ghashTableShoup4(h0: number, h1: number, h2: number, h3: number): Int32Array {
  const t = new Int32Array(64 + 16);
  shoupRows(t, 4, h0, h1, h2, h3);
  // Bit j of a nibble shifted out of Z·x^4 stands for x^(131 - j) = x^128 · x^(3 - j): R shifted right by 3 - j.
  for (let n = 0; n < 16; n++) {
    let w = 0;
    for (let j = 0; j < 4; j++) if (n & (1 << j)) w ^= 0xe1000000 >>> (3 - j);
    t[64 + n] = w;
  }
  return t;
}

/**
 * Sets `out[0..3]` = (x0..x3) · H with a table from {@link ghashTableShoup4}: Horner's rule over the 32 nibbles
 * from the last (the low nibble of byte 15) to the first, multiplying by x^4 between nibbles.
 */
export function ghashMulShoup4(t: Int32Array, x0: number, x1: number, x2: number, x3: number, out: Int32Array): void {
  let z0 = 0, z1 = 0, z2 = 0, z3 = 0;
  for (let w = 3; w >= 0; w--) {
    let x = w === 3 ? x3 : w === 2 ? x2 : w === 1 ? x1 : x0;
    for (let k = 0; k < 8; k++) {
      const r = t[64 + (z3 & 15)]!;
      z3 = (z3 >>> 4) | (z2 << 28), z2 = (z2 >>> 4) | (z1 << 28), z1 = (z1 >>> 4) | (z0 << 28), z0 = (z0 >>> 4) ^ r;
      const i = (x & 15) << 2;
      x >>>= 4;
      z0 ^= t[i]!, z1 ^= t[i + 1]!, z2 ^= t[i + 2]!, z3 ^= t[i + 3]!;
    }
  }
  out[0] = z0;
  out[1] = z1;
  out[2] = z2;
  out[3] = z3;
}

/** Blocks a key hashes with the 4-bit table before `Sm4Gcm` builds its 8-bit table (4 KiB of AAD and text). */
export const SHOUP4_BLOCKS = 256;
