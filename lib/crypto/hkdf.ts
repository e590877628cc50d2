/**
 * HKDF (RFC 5869) generic over the hash, and TLS 1.3's `HKDF-Expand-Label` and `Derive-Secret` (RFC 8446
 * section 7.1), used with SM3 by RFC 8998 suites and with SHA-256 by the standard ones.
 *
 * @module
 */

import { type HashAlgorithm, HmacKey } from "./hmac.ts";

const encoder = new TextEncoder();
/** Encoded `"tls13 " + label` by label: a handshake expands ~20 labels, all from a short fixed list. */
const labels = new Map<string, Uint8Array>();
const EMPTY = new Uint8Array(0);
/** The block counter of HKDF-Expand: shared, as `mac` reads it synchronously and keeps no reference. */
const COUNTER = new Uint8Array(1);
/** HkdfLabel scratch (its largest encoding): shared for the same reason. A typed array costs ~0.5 µs here. */
const LABEL = new Uint8Array(2 + 1 + 255 + 1 + 255);

/**
 * HKDF-Extract: returns PRK = HMAC-Hash(salt, ikm). An empty salt means a string of `outputLength` zeros.
 *
 * @param hash the hash function
 * @param salt the salt (may be empty)
 * @param ikm the input keying material
 */
export function hkdfExtract(hash: HashAlgorithm, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  const key = salt.length === 0 ? new Uint8Array(hash.outputLength) : salt;
  return new HmacKey(hash, key).mac(ikm);
}

/**
 * HKDF-Expand: returns `length` bytes of output keying material from `prk` and `info`.
 *
 * @param hash the hash function
 * @param prk the pseudorandom key (at least `outputLength` bytes)
 * @param info the context
 * @param length the output length, at most 255 × `outputLength`
 */
export function hkdfExpand(
  hash: HashAlgorithm,
  prk: Uint8Array | HmacKey,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * hash.outputLength) {
    throw new RangeError(`HKDF-Expand: length ${length} is out of range for ${hash.name}`);
  }
  const key = prk instanceof HmacKey ? prk : new HmacKey(hash, prk);
  // One block (a TLS 1.3 secret, key or IV): the MAC's own output is the result, or the front of it (a fresh
  // array from the TypeScript cores; a native digest may be a view into a shared buffer, so it is copied below).
  if (length <= hash.outputLength && hash.hmacCore !== undefined) {
    COUNTER[0] = 1;
    const t = key.mac(info, COUNTER);
    return length === t.length ? t : t.subarray(0, length);
  }
  const out = new Uint8Array(length);
  let t: Uint8Array = EMPTY;
  const counter = COUNTER;
  for (let i = 1, off = 0; off < length; i++) {
    counter[0] = i;
    t = key.mac(t, info, counter);
    const n = Math.min(t.length, length - off);
    out.set(n === t.length ? t : t.subarray(0, n), off);
    off += n;
  }
  return out;
}

/**
 * HKDF in one call: Expand(Extract(salt, ikm), info, length).
 *
 * @param hash the hash function
 * @param ikm the input keying material
 * @param options salt (default empty), info (default empty) and length in bytes
 */
export function hkdf(
  hash: HashAlgorithm,
  ikm: Uint8Array,
  options: { salt?: Uint8Array; info?: Uint8Array; length: number },
): Uint8Array {
  const prk = hkdfExtract(hash, options.salt ?? new Uint8Array(0), ikm);
  return hkdfExpand(hash, prk, options.info ?? new Uint8Array(0), options.length);
}

/**
 * TLS 1.3 HKDF-Expand-Label(secret, label, context, length): HKDF-Expand with the `HkdfLabel` structure and
 * the `"tls13 "` prefix on `label`.
 *
 * @param hash the hash function
 * @param secret the secret, or an {@link HmacKey} made from it (to expand several labels from one secret)
 * @param label the label without the `"tls13 "` prefix, e.g. `"key"`
 * @param context the context (a transcript hash or empty)
 * @param length the output length in bytes
 */
export function hkdfExpandLabel(
  hash: HashAlgorithm,
  secret: Uint8Array | HmacKey,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  let fullLabel = labels.get(label);
  if (fullLabel === undefined) {
    fullLabel = encoder.encode("tls13 " + label);
    if (labels.size < 64) labels.set(label, fullLabel); // the protocol's few labels, not arbitrary exporter ones
  }
  if (fullLabel.length > 255 || context.length > 255 || length > 0xffff) {
    throw new RangeError(`HKDF-Expand-Label: label "${label}", context or length is too long`);
  }
  const info = LABEL.subarray(0, 2 + 1 + fullLabel.length + 1 + context.length);
  info[0] = length >>> 8;
  info[1] = length & 0xff;
  info[2] = fullLabel.length;
  info.set(fullLabel, 3);
  info[3 + fullLabel.length] = context.length;
  info.set(context, 4 + fullLabel.length);
  return hkdfExpand(hash, secret, info, length);
}

/**
 * TLS 1.3 Derive-Secret(secret, label, messages) = HKDF-Expand-Label(secret, label, Transcript-Hash(messages),
 * Hash.length). The caller passes the transcript hash it keeps running, not the messages.
 *
 * @param hash the hash function
 * @param secret the secret, or an {@link HmacKey} made from it
 * @param label the label without the `"tls13 "` prefix, e.g. `"c hs traffic"`
 * @param transcriptHash Transcript-Hash(messages); for an empty transcript, the hash of the empty string
 */
export function deriveSecret(
  hash: HashAlgorithm,
  secret: Uint8Array | HmacKey,
  label: string,
  transcriptHash: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(hash, secret, label, transcriptHash, hash.outputLength);
}
