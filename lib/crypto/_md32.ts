/**
 * The Merkle–Damgård finish that SM3 and SHA-256 share: 64-byte blocks, eight 32-bit words of state, the message
 * length in bits big-endian at the end of the last block.
 *
 * @module
 */

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
