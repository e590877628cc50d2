/**
 * The TLS 1.3 per-record nonce (RFC 8446 §5.3): the 64-bit record sequence number, big-endian and left-padded
 * to the IV length, XORed with the static `client/server_write_iv`. Used with {@link Sm4Gcm} and {@link Sm4Ccm}
 * for `TLS_SM4_GCM_SM3` and `TLS_SM4_CCM_SM3` (RFC 8998), whose IVs are 12 bytes.
 *
 * @example
 * ```ts
 * import { tls13Nonce } from "./sm4_nonce.ts";
 * const iv = new Uint8Array(12);
 * tls13Nonce(iv, 1n); // 00..0001
 * ```
 *
 * @module
 */

/** The largest sequence number: 2^64 − 1 (RFC 8446 §5.3 requires rekeying before it wraps). */
const MAX_SEQ = (1n << 64n) - 1n;

/**
 * Returns `iv` XOR the sequence number `seq` (big-endian in the last 8 bytes) as a new array, or writes it into
 * `out` when given. `iv` must be at least 8 bytes (TLS 1.3 AEADs use 12). `seq` is a non-negative integer below
 * 2^64: a `bigint`, or a `number` up to 2^53 − 1; anything else throws a `RangeError`.
 */
export function tls13Nonce(
  iv: Uint8Array,
  seq: bigint | number,
  out: Uint8Array = new Uint8Array(iv.length),
): Uint8Array {
  if (!(iv instanceof Uint8Array) || iv.length < 8) throw new RangeError(`tls13 nonce: iv must be at least 8 bytes`);
  if (out.length !== iv.length) throw new RangeError(`tls13 nonce: output must be ${iv.length} bytes`);
  let hi: number, lo: number;
  if (typeof seq === "number") {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new RangeError(`tls13 nonce: sequence number must be a non-negative safe integer, got ${seq}`);
    }
    hi = Math.floor(seq / 0x100000000);
    lo = seq >>> 0;
  } else {
    if (typeof seq !== "bigint" || seq < 0n || seq > MAX_SEQ) {
      throw new RangeError(`tls13 nonce: sequence number must be in [0, 2^64), got ${String(seq)}`);
    }
    hi = Number(seq >> 32n);
    lo = Number(seq & 0xffffffffn);
  }
  const n = iv.length;
  out.set(iv);
  out[n - 8] = out[n - 8]! ^ (hi >>> 24);
  out[n - 7] = out[n - 7]! ^ ((hi >>> 16) & 255);
  out[n - 6] = out[n - 6]! ^ ((hi >>> 8) & 255);
  out[n - 5] = out[n - 5]! ^ (hi & 255);
  out[n - 4] = out[n - 4]! ^ (lo >>> 24);
  out[n - 3] = out[n - 3]! ^ ((lo >>> 16) & 255);
  out[n - 2] = out[n - 2]! ^ ((lo >>> 8) & 255);
  out[n - 1] = out[n - 1]! ^ (lo & 255);
  return out;
}
