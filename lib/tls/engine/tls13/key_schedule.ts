/**
 * The TLS 1.3 key schedule (RFC 8446 §7.1): early (with or without a resumption PSK), handshake and master
 * secrets, the PSK binder key, the traffic secrets, traffic keys and IVs (§7.3), Finished verify data (§4.4.4),
 * the resumption master secret and ticket PSKs (§4.6.1) and the KeyUpdate ratchet (§7.2). Generic over the suite
 * hash: SHA-256/384 for the standard suites, SM3 for RFC 8998.
 *
 * @module
 */

import { deriveSecret, type HashAlgorithm, hkdfExpandLabel, hkdfExtract, HmacKey } from "../../../crypto/mod.ts";

const EMPTY = new Uint8Array(0);

/** What a full (non-PSK) handshake's schedule starts from: the same for every handshake with one hash. */
interface HashConstants {
  readonly emptyHash: Uint8Array;
  /** HKDF-Extract(0, 0…0). */
  readonly earlySecret: Uint8Array;
  /** Derive-Secret(that, "derived", ""): the salt of the Handshake Secret. */
  readonly derivedFromEarly: Uint8Array;
}
const constants = new WeakMap<HashAlgorithm, HashConstants>();

function constantsOf(hash: HashAlgorithm): HashConstants {
  let c = constants.get(hash);
  if (c === undefined) {
    const emptyHash = hash.digest(EMPTY);
    const earlySecret = hkdfExtract(hash, EMPTY, new Uint8Array(hash.outputLength));
    c = { emptyHash, earlySecret, derivedFromEarly: deriveSecret(hash, earlySecret, "derived", emptyHash) };
    constants.set(hash, c);
  }
  return c;
}

/** A traffic key and its static IV. */
export interface TrafficKeys {
  /** The AEAD key. */
  readonly key: Uint8Array;
  /** The write IV that the record sequence number is XORed into. */
  readonly iv: Uint8Array;
}

/** The secrets of one handshake, derived step by step as the transcript grows. */
export class KeySchedule {
  /** The suite hash. */
  readonly hash: HashAlgorithm;
  readonly #emptyHash: Uint8Array;
  readonly #psk: Uint8Array | undefined;
  #earlySecret: Uint8Array | undefined;
  /** The Handshake Secret's HMAC key (it expands three secrets). */
  #handshakeKey: HmacKey | undefined;
  /** The Master Secret's HMAC key (it expands four secrets). */
  #masterHmac: HmacKey | undefined;

  /** Starts the schedule for `hash`, with the resumption `psk` if the handshake resumes. */
  constructor(hash: HashAlgorithm, psk?: Uint8Array) {
    this.hash = hash;
    this.#emptyHash = constantsOf(hash).emptyHash;
    this.#psk = psk;
  }

  /** Early Secret = HKDF-Extract(0, PSK), the PSK being zeros without resumption. */
  earlySecret(): Uint8Array {
    return this.#earlySecret ??= this.#psk === undefined
      ? constantsOf(this.hash).earlySecret
      : hkdfExtract(this.hash, new Uint8Array(0), this.#psk);
  }

  /** binder_key = Derive-Secret(Early Secret, "res binder", "") (resumption PSKs, §7.1). */
  binderKey(): Uint8Array {
    return deriveSecret(this.hash, this.earlySecret(), "res binder", this.#emptyHash);
  }

  /** resumption_master_secret for Transcript-Hash(ClientHello..client Finished). */
  resumptionMasterSecret(transcriptHash: Uint8Array): Uint8Array {
    return deriveSecret(
      this.hash,
      this.#masterKey(),
      "res master",
      transcriptHash,
    );
  }

  /** Handshake Secret = HKDF-Extract(Derive-Secret(Early, "derived", ""), (EC)DHE shared secret). */
  handshakeSecret(shared: Uint8Array): Uint8Array {
    const salt = this.#psk === undefined
      ? constantsOf(this.hash).derivedFromEarly
      : deriveSecret(this.hash, this.earlySecret(), "derived", this.#emptyHash);
    const secret = hkdfExtract(this.hash, salt, shared);
    this.#handshakeKey = new HmacKey(this.hash, secret);
    return secret;
  }

  /** The Master Secret's HMAC key, deriving the Master Secret on first use. */
  #masterKey(): HmacKey {
    if (this.#masterHmac === undefined) this.masterSecret();
    return this.#masterHmac!;
  }

  /** Master Secret = HKDF-Extract(Derive-Secret(Handshake, "derived", ""), 0). */
  masterSecret(): Uint8Array {
    if (!this.#handshakeKey) throw new Error("tls13 key schedule: master secret before handshake secret");
    const salt = deriveSecret(this.hash, this.#handshakeKey, "derived", this.#emptyHash);
    const secret = hkdfExtract(this.hash, salt, new Uint8Array(this.hash.outputLength));
    this.#masterHmac = new HmacKey(this.hash, secret);
    return secret;
  }

  /** `[client, server]` handshake traffic secrets for Transcript-Hash(ClientHello..ServerHello). */
  handshakeTrafficSecrets(transcriptHash: Uint8Array): [Uint8Array, Uint8Array] {
    const k = this.#handshakeKey;
    if (!k) throw new Error("tls13 key schedule: traffic secrets before handshake secret");
    return [
      deriveSecret(this.hash, k, "c hs traffic", transcriptHash),
      deriveSecret(this.hash, k, "s hs traffic", transcriptHash),
    ];
  }

  /** `[client, server]` application traffic secrets for Transcript-Hash(ClientHello..server Finished). */
  applicationTrafficSecrets(transcriptHash: Uint8Array): [Uint8Array, Uint8Array] {
    const master = this.#masterKey();
    return [
      deriveSecret(this.hash, master, "c ap traffic", transcriptHash),
      deriveSecret(this.hash, master, "s ap traffic", transcriptHash),
    ];
  }

  /** exporter_master_secret for Transcript-Hash(ClientHello..server Finished). */
  exporterMasterSecret(transcriptHash: Uint8Array): Uint8Array {
    return deriveSecret(
      this.hash,
      this.#masterKey(),
      "exp master",
      transcriptHash,
    );
  }
}

/** The traffic key (`keyLength` bytes) and IV (`ivLength` bytes) of a traffic secret (RFC 8446 §7.3). */
export function trafficKeys(
  hash: HashAlgorithm,
  secret: Uint8Array,
  keyLength: number,
  ivLength: number,
): TrafficKeys {
  const k = new HmacKey(hash, secret);
  return {
    key: hkdfExpandLabel(hash, k, "key", EMPTY, keyLength),
    iv: hkdfExpandLabel(hash, k, "iv", EMPTY, ivLength),
  };
}

/** Finished.verify_data = HMAC(finished_key, transcriptHash) with finished_key from `baseKey` (RFC 8446 §4.4.4). */
export function finishedVerifyData(hash: HashAlgorithm, baseKey: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
  const finishedKey = hkdfExpandLabel(hash, baseKey, "finished", EMPTY, hash.outputLength);
  return new HmacKey(hash, finishedKey).mac(transcriptHash);
}

/** application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length) (§7.2). */
export function nextTrafficSecret(hash: HashAlgorithm, secret: Uint8Array): Uint8Array {
  return hkdfExpandLabel(hash, secret, "traffic upd", new Uint8Array(0), hash.outputLength);
}

/** The PSK of a ticket: HKDF-Expand-Label(resumption_master_secret, "resumption", nonce, Hash.length) (§4.6.1). */
export function ticketPsk(hash: HashAlgorithm, resumptionMasterSecret: Uint8Array, nonce: Uint8Array): Uint8Array {
  return hkdfExpandLabel(hash, resumptionMasterSecret, "resumption", nonce, hash.outputLength);
}

/**
 * A PSK binder (§4.2.11.2): the Finished computation keyed by the binder key over the hash of the transcript up to
 * the binders list of the ClientHello that offers it.
 */
export function pskBinder(hash: HashAlgorithm, binderKey: Uint8Array, partialTranscriptHash: Uint8Array): Uint8Array {
  return finishedVerifyData(hash, binderKey, partialTranscriptHash);
}
