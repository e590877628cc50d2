/**
 * The TLS 1.3 cipher suites the engine speaks: the RFC 8998 GM suites (`TLS_SM4_GCM_SM3`, `TLS_SM4_CCM_SM3`) on
 * the project's SM4 AEADs, and the RFC 8446 standard suites (`TLS_AES_128_GCM_SHA256`, `TLS_AES_256_GCM_SHA384`,
 * `TLS_CHACHA20_POLY1305_SHA256`) on `node:crypto`. Each suite names its transcript/HKDF hash and builds the
 * record AEAD for a traffic key.
 *
 * @module
 */

import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { type HashAlgorithm, SHA256, SHA384, SM3 } from "../../../crypto/mod.ts";
import { LazySm4Aead } from "../_lazy_aead.ts";

export { LazySm4Aead, SM4_WASM_AFTER_BYTES, SM4_WASM_MIN_BYTES } from "../_lazy_aead.ts";

/** IANA names of the supported TLS 1.3 cipher suites. */
export type Tls13CipherSuiteName =
  | "TLS_AES_128_GCM_SHA256"
  | "TLS_AES_256_GCM_SHA384"
  | "TLS_CHACHA20_POLY1305_SHA256"
  | "TLS_SM4_GCM_SM3"
  | "TLS_SM4_CCM_SM3";

/**
 * An AEAD bound to one traffic key, in the shape of the project's `Sm4Aead` `Into` methods: write to the start
 * of `out` (which may be the input itself), return the byte count; `openInto` returns -1 when authentication
 * fails and then writes nothing.
 */
export interface RecordAead {
  /** Encrypts `plaintext` and appends the 16-byte tag; returns `plaintext.length + 16`. */
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Verifies and decrypts `ciphertext || tag`; returns the plaintext length or -1. */
  openInto(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
}

/** A cipher suite: code point, name, hash and key sizes, and the AEAD factory. */
export interface Tls13CipherSuite {
  /** The code point. */
  readonly id: number;
  /** The IANA name. */
  readonly name: Tls13CipherSuiteName;
  /** The transcript and HKDF hash. */
  readonly hash: HashAlgorithm;
  /** AEAD key length in bytes. */
  readonly keyLength: number;
  /** AEAD nonce (and write IV) length in bytes: 12 for every suite here. */
  readonly ivLength: number;
  /** AEAD tag length in bytes: 16 for every suite here. */
  readonly tagLength: number;
  /** True for the RFC 8998 ShangMi suites. */
  readonly gm: boolean;
  /** Builds the record AEAD for one traffic key. */
  createAead(key: Uint8Array): RecordAead;
}

const TAG = 16;

type NodeAeadAlgorithm = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

/**
 * An AEAD on `node:crypto` (AES-GCM, ChaCha20-Poly1305). A cipher object per record is what `node:crypto`
 * offers; the key is imported once as a `KeyObject` so each record skips the key import.
 */
class NodeAead implements RecordAead {
  readonly #algorithm: NodeAeadAlgorithm;
  readonly #key: KeyObject;

  constructor(algorithm: NodeAeadAlgorithm, key: Uint8Array) {
    this.#algorithm = algorithm;
    this.#key = createSecretKey(key);
  }

  sealInto(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    const a = this.#algorithm;
    const c = a === "chacha20-poly1305"
      ? createCipheriv(a, this.#key, nonce, { authTagLength: TAG })
      : createCipheriv(a, this.#key, nonce);
    c.setAAD(aad, { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    c.final();
    out.set(body, 0);
    out.set(c.getAuthTag(), body.length);
    return body.length + TAG;
  }

  openInto(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    if (sealed.length < TAG) return -1;
    const n = sealed.length - TAG;
    const a = this.#algorithm;
    const d = a === "chacha20-poly1305"
      ? createDecipheriv(a, this.#key, nonce, { authTagLength: TAG })
      : createDecipheriv(a, this.#key, nonce);
    d.setAuthTag(sealed.subarray(n));
    d.setAAD(aad, { plaintextLength: n });
    const body = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      return -1;
    }
    out.set(body, 0);
    return n;
  }
}

function suite(
  id: number,
  name: Tls13CipherSuiteName,
  hash: HashAlgorithm,
  keyLength: number,
  createAead: (key: Uint8Array) => RecordAead,
): Tls13CipherSuite {
  return { id, name, hash, keyLength, ivLength: 12, tagLength: TAG, gm: name.startsWith("TLS_SM4"), createAead };
}

/** Every suite by name. */
export const TLS13_CIPHER_SUITES: Readonly<Record<Tls13CipherSuiteName, Tls13CipherSuite>> = {
  TLS_AES_128_GCM_SHA256: suite(0x1301, "TLS_AES_128_GCM_SHA256", SHA256, 16, (k) => new NodeAead("aes-128-gcm", k)),
  TLS_AES_256_GCM_SHA384: suite(0x1302, "TLS_AES_256_GCM_SHA384", SHA384, 32, (k) => new NodeAead("aes-256-gcm", k)),
  TLS_CHACHA20_POLY1305_SHA256: suite(
    0x1303,
    "TLS_CHACHA20_POLY1305_SHA256",
    SHA256,
    32,
    (k) => new NodeAead("chacha20-poly1305", k),
  ),
  TLS_SM4_GCM_SM3: suite(0x00c6, "TLS_SM4_GCM_SM3", SM3, 16, (k) => new LazySm4Aead("gcm", k)),
  TLS_SM4_CCM_SM3: suite(0x00c7, "TLS_SM4_CCM_SM3", SM3, 16, (k) => new LazySm4Aead("ccm", k)),
};

/** The default preference order: the GM suites first (Ferry is a GM terminator), then the standard ones. */
export const DEFAULT_TLS13_CIPHER_SUITES: readonly Tls13CipherSuiteName[] = [
  "TLS_SM4_GCM_SM3",
  "TLS_SM4_CCM_SM3",
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];

/** The suite with code point `id`, if supported. */
export function cipherSuiteById(id: number): Tls13CipherSuite | undefined {
  for (const s of Object.values(TLS13_CIPHER_SUITES)) if (s.id === id) return s;
  return undefined;
}

/** Resolves names to suites, rejecting unknown names and empty lists with a `RangeError`. */
export function resolveCipherSuites(names: readonly string[] | undefined): Tls13CipherSuite[] {
  const list = names ?? DEFAULT_TLS13_CIPHER_SUITES;
  if (list.length === 0) throw new RangeError("tls13: cipher suite list is empty");
  return list.map((n) => {
    const s = (TLS13_CIPHER_SUITES as Record<string, Tls13CipherSuite | undefined>)[n];
    if (!s) throw new RangeError(`tls13: unknown cipher suite "${n}"`);
    return s;
  });
}
