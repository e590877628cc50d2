/**
 * PKCS#7 padding and whole-block checks shared by the SM4 block modes (ECB in `sm4.ts`, CBC in `sm4_cbc.ts`).
 * Private to `lib/crypto/`.
 *
 * @module
 */

import { BLOCK_SIZE } from "./_sm4_core.ts";

/**
 * Checks that `data` is a whole number of blocks (and, when `nonEmpty`, at least one) and returns it.
 * Shared by the block modes; `what` names the mode in the message.
 */
export function requireWholeBlocks(data: Uint8Array, what: string, nonEmpty = false): Uint8Array {
  if (data.length % BLOCK_SIZE !== 0 || (nonEmpty && data.length === 0)) {
    throw new RangeError(
      `${what}: input must be ${nonEmpty ? "a non-empty" : "a"} multiple of ${BLOCK_SIZE} bytes, got ${data.length}`,
    );
  }
  return data;
}

/** Returns a copy of `data` with PKCS#7 padding to the next 16-byte boundary (a full block when aligned). */
export function pkcs7Pad(data: Uint8Array): Uint8Array {
  const p = BLOCK_SIZE - (data.length % BLOCK_SIZE);
  const out = new Uint8Array(data.length + p);
  out.set(data);
  out.fill(p, data.length);
  return out;
}

/**
 * Returns `data` without its PKCS#7 padding, as a view. Throws a `RangeError` naming `what` when the padding is
 * malformed; every padding byte is checked, in time independent of where a mismatch is.
 */
export function pkcs7Unpad(data: Uint8Array, what: string): Uint8Array {
  const n = data.length;
  const p = n === 0 ? 0 : data[n - 1]!;
  let bad = (p === 0 || p > BLOCK_SIZE || p > n) ? 1 : 0;
  for (let i = 1; i <= BLOCK_SIZE && i <= n; i++) {
    // Byte n - i must equal p when i <= p.
    const inPad = ((i - p - 1) >>> 31) & 1;
    bad |= inPad & (data[n - i]! !== p ? 1 : 0);
  }
  if (bad !== 0) throw new RangeError(`${what}: bad PKCS#7 padding`);
  return data.subarray(0, n - p);
}
