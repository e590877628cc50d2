/**
 * Hash descriptors and HMAC (RFC 2104) generic over the hash.
 *
 * A {@link HashAlgorithm} wraps an incremental hash whose state can be copied; {@link HmacKey} uses that to
 * hash the ipad and opad blocks once per key and start every MAC from copies of those two states, which saves
 * two compression-function calls per MAC (measured in `bench/crypto_sm2.ts`).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { Sha256HmacCore } from "./sha256.ts";

/** An incremental hash computation. `digest()` ends it; `copy()` forks the current state. */
export interface IncrementalHash {
  /** Absorbs `data` and returns the same object. Not callable after `digest()`. */
  update(data: Uint8Array): IncrementalHash;
  /** Finishes the computation and returns the digest. */
  digest(): Uint8Array;
  /** Returns an independent hash with the same absorbed state. Not callable after `digest()`. */
  copy(): IncrementalHash;
  /**
   * The digest of what has been absorbed so far, leaving this computation open: `copy().digest()`, without the
   * copy where the hash can (SM3 finishes a scratch state; a TLS transcript hash is taken ~6 times a handshake).
   */
  peekDigest(): Uint8Array;
}

/** A hash function: its name, lengths and a factory for incremental computations. */
export interface HashAlgorithm {
  /** Name as `node:crypto` knows it, e.g. `"sm3"` or `"sha256"`. */
  readonly name: string;
  /** Digest length in bytes. */
  readonly outputLength: number;
  /** Block length in bytes (64 for SM3 and SHA-256, 128 for SHA-384). */
  readonly blockLength: number;
  /** Starts an incremental computation. */
  create(): IncrementalHash;
  /** Hashes `data` in one call. */
  digest(data: Uint8Array): Uint8Array;
  /**
   * Optional: a specialised HMAC for this hash, which {@link HmacKey} then delegates to (SM3 and SHA-256 have one). It must
   * compute exactly RFC 2104 HMAC.
   */
  hmacCore?(key: Uint8Array): HmacCore;
}

/** A hash's own HMAC implementation for one key (see {@link HashAlgorithm.hmacCore}). */
export interface HmacCore {
  /** HMAC(key, concatenation of `parts`). */
  mac(parts: readonly Uint8Array[]): Uint8Array;
  /**
   * Optional: HMAC(key, concatenation of `parts`) written to `out` at `at` (`out` may be one of the parts: they
   * are read before it is written).
   */
  macInto?(parts: readonly Uint8Array[], out: Uint8Array, at: number): void;
  /** An incremental HMAC whose `digest()` returns the MAC; its `copy()` may throw. */
  create(): IncrementalHash;
}

function toBytes(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

class NodeIncrementalHash implements IncrementalHash {
  readonly #hash: Hash;

  constructor(hash: Hash) {
    this.#hash = hash;
  }

  update(data: Uint8Array): IncrementalHash {
    this.#hash.update(data);
    return this;
  }

  digest(): Uint8Array {
    return toBytes(this.#hash.digest());
  }

  copy(): IncrementalHash {
    return new NodeIncrementalHash(this.#hash.copy());
  }

  peekDigest(): Uint8Array {
    return toBytes(this.#hash.copy().digest());
  }
}

/**
 * Returns a {@link HashAlgorithm} backed by `node:crypto`'s native `createHash(name)`.
 *
 * @param name the `node:crypto` hash name
 * @param outputLength the digest length in bytes
 * @param blockLength the block length in bytes
 */
export function nodeHashAlgorithm(name: string, outputLength: number, blockLength: number): HashAlgorithm {
  return {
    name,
    outputLength,
    blockLength,
    create: () => new NodeIncrementalHash(createHash(name)),
    digest: (data) => toBytes(createHash(name).update(data).digest()),
  };
}

const SHA256_NATIVE: HashAlgorithm = nodeHashAlgorithm("sha256", 32, 64);

/** SHA-256: digests native; HMAC in TypeScript ({@link Sha256HmacCore}), its incremental form native. */
export const SHA256: HashAlgorithm = {
  ...SHA256_NATIVE,
  hmacCore: (key) => new Sha256HmacCore(key, () => new HmacKey(SHA256_NATIVE, key).create()),
};

/** SHA-384 (native). */
export const SHA384: HashAlgorithm = nodeHashAlgorithm("sha384", 48, 128);

/**
 * An HMAC key bound to a hash, with the inner and outer pad states hashed once. Reuse one instance for
 * every MAC under the same key (record MACs, HKDF-Expand blocks).
 */
export class HmacKey {
  /** The hash this key MACs with. */
  readonly hash: HashAlgorithm;
  readonly #inner: IncrementalHash | undefined;
  readonly #outer: IncrementalHash | undefined;
  readonly #core: HmacCore | undefined;

  /**
   * Prepares `key` for `hash`. Keys longer than the block length are hashed first, as RFC 2104 says.
   *
   * @param hash the hash function
   * @param key the secret key (any length)
   */
  constructor(hash: HashAlgorithm, key: Uint8Array) {
    this.hash = hash;
    this.#core = hash.hmacCore?.(key);
    if (this.#core) return;
    const k = key.length > hash.blockLength ? hash.digest(key) : key;
    const ipad = new Uint8Array(hash.blockLength).fill(0x36);
    const opad = new Uint8Array(hash.blockLength).fill(0x5c);
    for (let i = 0; i < k.length; i++) {
      ipad[i]! ^= k[i]!;
      opad[i]! ^= k[i]!;
    }
    this.#inner = hash.create().update(ipad);
    this.#outer = hash.create().update(opad);
  }

  /** Returns HMAC(key, concatenation of `parts`). */
  mac(...parts: Uint8Array[]): Uint8Array {
    if (this.#core) return this.#core.mac(parts);
    const inner = this.#inner!.copy();
    for (const p of parts) inner.update(p);
    return this.#outer!.copy().update(inner.digest()).digest();
  }

  /**
   * Writes HMAC(key, concatenation of `parts`) to `out` at `at` (the hash's output length), without allocating
   * when the hash's own HMAC can; `out` may be one of the parts.
   */
  macInto(out: Uint8Array, at: number, ...parts: Uint8Array[]): void {
    if (this.#core?.macInto) this.#core.macInto(parts, out, at);
    else out.set(this.mac(...parts), at);
  }

  /** Starts an incremental HMAC; `digest()` returns the MAC. The returned object does not support `copy()`. */
  create(): IncrementalHash {
    if (this.#core) return this.#core.create();
    const inner = this.#inner!.copy();
    const outer = this.#outer!;
    const h: IncrementalHash = {
      update(data: Uint8Array): IncrementalHash {
        inner.update(data);
        return h;
      },
      digest: () => outer.copy().update(inner.digest()).digest(),
      peekDigest: () => outer.copy().update(inner.peekDigest()).digest(),
      copy(): IncrementalHash {
        throw new Error("HMAC: incremental copy is not supported");
      },
    };
    return h;
  }
}

/**
 * Computes HMAC(key, data) in one call. Prefer {@link HmacKey} when the key is used more than once.
 *
 * @param hash the hash function
 * @param key the secret key
 * @param data the message
 */
export function hmac(hash: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array {
  return new HmacKey(hash, key).mac(data);
}
