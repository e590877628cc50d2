/**
 * A lazily built SM4 record AEAD shared by the TLS 1.3 and TLCP engines: TypeScript for handshake-sized
 * records, WebAssembly only for a key that protects bulk data.
 *
 * @module
 */

import { createSm4Aead, type Sm4Aead } from "../../crypto/mod.ts";

const TAG = 16;

/**
 * Records below this many plaintext bytes always go to the TypeScript SM4 AEAD (the crossover measured in
 * `sm4_gcm_wasm.ts` / `sm4_ccm_wasm.ts` is 384–512 bytes).
 */
export const SM4_WASM_MIN_BYTES = 512;

/**
 * Bytes a key protects in records of at least {@link SM4_WASM_MIN_BYTES} before it gets its WebAssembly AEAD.
 * GCM: the SIMD kernel costs ~60 µs to build (a 128 KiB instance memory and its GHASH table) and runs ~390 MB/s
 * against ~125 MB/s for TypeScript, saving ~5 µs per KiB: it pays for itself after ~12 KiB. CCM (scalar kernel,
 * ~140 µs to build, ~25 % faster than TypeScript): after ~56 KiB.
 */
export const SM4_WASM_AFTER_BYTES: Readonly<Record<"gcm" | "ccm", number>> = { gcm: 16 * 1024, ccm: 64 * 1024 };

/** Once a GCM key has its WebAssembly AEAD, records from this size up use it (the SIMD kernel wins from ~16 B). */
export const SM4_GCM_WASM_USE_BYTES = 64;

/**
 * An SM4 record AEAD that builds its implementations on first use: TypeScript for small records and for a key's
 * first {@link SM4_WASM_AFTER_BYTES} bytes of large ones, then WebAssembly (when the runtime has it) for large
 * records. A full handshake installs four traffic keys, and most of them only ever protect a few records (the
 * handshake keys, whose largest record is the Certificate message, and the application keys of short
 * connections): building four WebAssembly AEADs was ~0.5 ms of a ~4.8 ms TLS 1.3-SM handshake.
 */
export class LazySm4Aead {
  readonly #mode: "gcm" | "ccm";
  readonly #key: Uint8Array;
  #small: Sm4Aead | undefined;
  #large: Sm4Aead | undefined;
  #largeBytes = 0;
  readonly #useLarge: number;

  /**
   * Binds `mode` and `key` (16 bytes), which the caller must not change afterwards (both engines pass keys fresh
   * from their key derivation; a copy cost a typed array per key); nothing is built yet.
   */
  constructor(mode: "gcm" | "ccm", key: Uint8Array) {
    this.#mode = mode;
    this.#key = key;
    this.#useLarge = mode === "gcm" ? SM4_GCM_WASM_USE_BYTES : SM4_WASM_MIN_BYTES;
  }

  /** Which implementations exist so far (for tests). */
  get built(): { small: boolean; large: boolean } {
    return { small: this.#small !== undefined, large: this.#large !== undefined };
  }

  #for(plaintextLength: number): Sm4Aead {
    if (this.#large !== undefined && plaintextLength >= this.#useLarge) return this.#large;
    if (plaintextLength >= SM4_WASM_MIN_BYTES) {
      this.#largeBytes += plaintextLength;
      if (this.#largeBytes > SM4_WASM_AFTER_BYTES[this.#mode]) {
        return (this.#large = createSm4Aead(this.#mode, this.#key));
      }
    }
    return (this.#small ??= createSm4Aead(this.#mode, this.#key, { backend: "js" }));
  }

  /** Encrypts `plaintext` into `out` and appends the 16-byte tag; returns `plaintext.length + 16`. */
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    return this.#for(plaintext.length).sealInto(nonce, plaintext, aad, out);
  }

  /** Verifies and decrypts `ciphertext || tag` into `out`; returns the plaintext length, or -1 on failure. */
  openInto(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number {
    return this.#for(sealed.length - TAG).openInto(nonce, sealed, aad, out);
  }
}
