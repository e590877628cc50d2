/**
 * The TLCP pseudo-random function: the TLS 1.2 PRF (RFC 5246 §5) with HMAC-SM3, `P_SM3`, as GB/T 38636-2020
 * §6.5 defines it, and the three derivations TLCP makes with it: the master secret, the key block and the
 * Finished verify data.
 *
 * @module
 */

import { type HmacKey, hmacSm3Key, sm3 } from "../../../crypto/mod.ts";
import { concat } from "./_codec.ts";

const enc = new TextEncoder();
/** Encoded labels: the protocol's three, plus any exporter label (bounded). */
const LABELS = new Map<string, Uint8Array>();
/** A(i) and the last partial block: scratch, as nothing here keeps a reference past the call. */
const A = new Uint8Array(32);
const TAIL = new Uint8Array(32);
/** HMAC keys by secret (a master secret keys the key block and both Finished messages). */
const KEYS = new WeakMap<Uint8Array, HmacKey>();

/**
 * PRF(secret, label, seed) = P_SM3(secret, label || seed), truncated to `length` bytes.
 *
 * @param secret the secret
 * @param label the ASCII label, e.g. `"master secret"`
 * @param seed the seed
 * @param length the output length in bytes
 */
export function tlcpPrf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  let key = KEYS.get(secret);
  if (key === undefined) KEYS.set(secret, key = hmacSm3Key(secret));
  let l = LABELS.get(label);
  if (l === undefined) {
    l = enc.encode(label);
    if (LABELS.size < 16) LABELS.set(label, l);
  }
  // Typed arrays cost ~0.5 µs each on Deno: A(i) is computed in place and each block written straight into the
  // output, so a call allocates its result only.
  const out = new Uint8Array(length);
  key.macInto(A, 0, l, seed); // A(1) = HMAC(secret, label || seed)
  for (let off = 0; off < length;) {
    if (length - off >= 32) key.macInto(out, off, A, l, seed);
    else {
      key.macInto(TAIL, 0, A, l, seed);
      out.set(TAIL.subarray(0, length - off), off);
    }
    off += 32;
    if (off < length) key.macInto(A, 0, A); // A(i + 1) = HMAC(secret, A(i))
  }
  A.fill(0);
  TAIL.fill(0);
  return out;
}

/**
 * master_secret = PRF(pre_master_secret, "master secret", client_random || server_random)[0..48].
 *
 * @param preMaster the 48-byte premaster secret
 * @param clientRandom ClientHello.random
 * @param serverRandom ServerHello.random
 */
export function tlcpMasterSecret(
  preMaster: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Uint8Array {
  return tlcpPrf(preMaster, "master secret", concat(clientRandom, serverRandom), 48);
}

/**
 * key_block = PRF(master_secret, "key expansion", server_random || client_random).
 *
 * @param master the master secret
 * @param clientRandom ClientHello.random
 * @param serverRandom ServerHello.random
 * @param length bytes needed by the suite
 */
export function tlcpKeyBlock(
  master: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
  length: number,
): Uint8Array {
  return tlcpPrf(master, "key expansion", concat(serverRandom, clientRandom), length);
}

/**
 * verify_data = PRF(master_secret, "client finished" | "server finished", SM3(handshake_messages))[0..12].
 *
 * @param master the master secret
 * @param client true for the client's Finished
 * @param transcript the handshake messages so far (not including this Finished)
 */
export function tlcpFinished(master: Uint8Array, client: boolean, transcript: Uint8Array): Uint8Array {
  return tlcpFinishedFromHash(master, client, sm3(transcript));
}

/**
 * verify_data from SM3(handshake_messages) already computed (the engine keeps a running hash).
 *
 * @param master the master secret
 * @param client true for the client's Finished
 * @param transcriptHash SM3 of the handshake messages so far (not including this Finished)
 */
export function tlcpFinishedFromHash(master: Uint8Array, client: boolean, transcriptHash: Uint8Array): Uint8Array {
  return tlcpPrf(master, client ? "client finished" : "server finished", transcriptHash, 12);
}
