/**
 * SM3 (GB/T 32905) on the native `node:crypto` implementation, HMAC-SM3, and the SM3-based key derivation
 * function of GB/T 32918 (used by SM2 encryption and key exchange).
 *
 * @module
 */

import { type HashAlgorithm, hmac, HmacKey, type IncrementalHash, nodeHashAlgorithm } from "./hmac.ts";

/** SM3 as a {@link HashAlgorithm}: 32-byte digest, 64-byte block. */
export const SM3: HashAlgorithm = nodeHashAlgorithm("sm3", 32, 64);

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
  return SM3.digest(data);
}

/** Starts an incremental SM3 computation. */
export function createSm3(): IncrementalHash {
  return SM3.create();
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
