/**
 * One shape for the four SM4 AEAD implementations — {@link Sm4Gcm}, {@link Sm4Ccm} (portable TypeScript) and
 * {@link Sm4GcmWasm}, {@link Sm4CcmWasm} (hand-assembled WebAssembly) — and a factory that picks the fastest one
 * available. `Sm4GcmWasm` runs a WebAssembly SIMD kernel when the runtime has SIMD (Deno does): about 2.4× the
 * scalar WebAssembly kernel and 3× TypeScript on 16 KiB records, and faster than TypeScript from 16 bytes up;
 * otherwise its scalar kernel (about 1.3× TypeScript). CCM's CBC-MAC is serial, so CCM stays scalar. TLS record protection should build its AEAD through
 * {@link createSm4Aead} once per traffic key.
 *
 * @example
 * ```ts
 * import { createSm4Aead } from "./sm4_aead.ts";
 * import { tls13Nonce } from "./sm4_nonce.ts";
 * const aead = createSm4Aead("gcm", new Uint8Array(16));
 * const iv = new Uint8Array(12);
 * const header = new Uint8Array([23, 3, 3, 0, 21]);
 * const record = aead.seal(tls13Nonce(iv, 0n), new TextEncoder().encode("hello"), header);
 * ```
 *
 * @module
 */

import { Sm4Ccm } from "./ccm.ts";
import { Sm4Gcm } from "./gcm.ts";
import { Sm4CcmWasm } from "./wasm/sm4_ccm_wasm.ts";
import { Sm4GcmWasm } from "./wasm/sm4_gcm_wasm.ts";

/**
 * An SM4 AEAD bound to one key. `seal` returns `ciphertext || tag`; `open` returns the plaintext or `null` when
 * authentication fails (wrong tag, AAD or nonce, or input shorter than the tag). The `Into` variants write to
 * the start of a caller's buffer, may work in place, and return the byte count (`openInto`: -1 on failure,
 * with what it wrote zeroed). Parameter errors (nonce length, output too small, message too long) throw a
 * `RangeError`.
 */
export interface Sm4Aead {
  /** Tag length in bytes. */
  readonly tagLength: number;
  /** Encrypts and authenticates; returns `ciphertext || tag`. */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** Like `seal`, into `out`; returns the number of bytes written (plaintext length + tag length). */
  sealInto(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Verifies and decrypts `ciphertext || tag`; `null` when authentication fails. */
  open(nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | null;
  /** Like `open`, into `out`; returns the plaintext length, or -1 when authentication fails. */
  openInto(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
}

/** The SM4 AEAD modes: GCM (`TLS_SM4_GCM_SM3`, TLCP `*_SM4_GCM_SM3`) and CCM (`TLS_SM4_CCM_SM3`). */
export type Sm4AeadMode = "gcm" | "ccm";

/** Which implementation {@link createSm4Aead} builds. */
export type Sm4Backend = "auto" | "wasm" | "js";

/** Options for {@link createSm4Aead}. */
export interface Sm4AeadOptions {
  /**
   * `"auto"` (default): WebAssembly when the runtime can instantiate it (with SIMD when available), else
   * TypeScript. WebAssembly GCM with SIMD is 2–3× faster than TypeScript on records of 1 KiB and up (without SIMD
   * about 1.2–1.3×, and records under 384 bytes go to TypeScript), but holds 128 KiB (GCM) or 64 KiB (CCM) per
   * key against 5 KiB and under 1 KiB for TypeScript: a process holding thousands of keys at once may prefer
   * `"js"`.
   */
  readonly backend?: Sm4Backend;
  /** CCM only: tag length, an even number from 4 to 16 (default 16). GCM tags are always 16 bytes. */
  readonly tagLength?: number;
}

let wasmWorks: boolean | undefined;

function canUseWasm(): boolean {
  if (wasmWorks === undefined) {
    try {
      new Sm4GcmWasm(new Uint8Array(16));
      wasmWorks = true;
    } catch {
      wasmWorks = false;
    }
  }
  return wasmWorks;
}

/**
 * Builds the SM4 AEAD for `mode` and `key` (16 bytes). Memory per instance: GCM about 5 KiB (TypeScript) or
 * 128 KiB (WebAssembly); CCM under 1 KiB (TypeScript) or 64 KiB (WebAssembly).
 * Throws a `RangeError` for a bad key, tag length, mode or backend.
 */
export function createSm4Aead(mode: Sm4AeadMode, key: Uint8Array, options: Sm4AeadOptions = {}): Sm4Aead {
  const backend = options.backend ?? "auto";
  if (backend !== "auto" && backend !== "wasm" && backend !== "js") {
    throw new RangeError(`sm4 aead: backend must be "auto", "wasm" or "js", got ${String(backend)}`);
  }
  const wasm = backend === "wasm" || (backend === "auto" && canUseWasm());
  if (mode === "gcm") {
    if (options.tagLength !== undefined && options.tagLength !== 16) {
      throw new RangeError(`sm4-gcm: tag length must be 16, got ${options.tagLength}`);
    }
    return wasm ? new Sm4GcmWasm(key) : new Sm4Gcm(key);
  }
  if (mode === "ccm") {
    const ccmOptions = options.tagLength === undefined ? {} : { tagLength: options.tagLength };
    return wasm ? new Sm4CcmWasm(key, ccmOptions) : new Sm4Ccm(key, ccmOptions);
  }
  throw new RangeError(`sm4 aead: mode must be "gcm" or "ccm", got ${String(mode)}`);
}

let prepared = false;

/**
 * Compiles the WebAssembly SM4 kernels in the background (one macrotask from now) so that the first bulk record of
 * the first connection does not pay for it (~90 ms to assemble and compile the SIMD kernel). Call it when GM TLS
 * gets configured; later calls do nothing. The timer never keeps the process alive.
 */
export function prepareSm4Aead(): void {
  if (prepared) return;
  prepared = true;
  const t = setTimeout(() => canUseWasm(), 0);
  Deno.unrefTimer(t);
}
