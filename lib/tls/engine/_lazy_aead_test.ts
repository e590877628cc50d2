/** The SM4 record AEADs: lazily built implementations, same bytes as the direct AEADs either side of the split. */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createSm4Aead, tls13Nonce } from "../../crypto/mod.ts";
import { LazySm4Aead, SM4_WASM_AFTER_BYTES, SM4_WASM_MIN_BYTES } from "./_lazy_aead.ts";
import { TLS13_CIPHER_SUITES } from "./tls13/suites.ts";

const key = new Uint8Array(16).map((_, i) => i * 7 + 1);
const iv = new Uint8Array(12).fill(9);
const aad = new Uint8Array([23, 3, 3, 0, 0]);

for (const mode of ["gcm", "ccm"] as const) {
  Deno.test(`LazySm4Aead ${mode} builds nothing until used, then only what record sizes need`, () => {
    const lazy = new LazySm4Aead(mode, key);
    assertEquals(lazy.built, { small: false, large: false });
    const small = new Uint8Array(40).fill(3);
    const out = new Uint8Array(small.length + 16);
    lazy.sealInto(tls13Nonce(iv, 0), small, aad, out);
    assertEquals(lazy.built, { small: true, large: false });
    const big = new Uint8Array(16384).fill(4);
    let seq = 1;
    for (let sent = 0; sent + big.length <= SM4_WASM_AFTER_BYTES[mode]; sent += big.length) {
      lazy.sealInto(tls13Nonce(iv, seq++), big, aad, new Uint8Array(big.length + 16));
    }
    assertEquals(lazy.built, { small: true, large: false }, "large records below the budget stay on TypeScript");
    lazy.sealInto(tls13Nonce(iv, seq++), big, aad, new Uint8Array(big.length + 16));
    assertEquals(lazy.built, { small: true, large: true });
    lazy.sealInto(tls13Nonce(iv, seq++), small, aad, out);
    assertEquals(lazy.built, { small: true, large: true });
  });

  Deno.test(`LazySm4Aead ${mode} seals and opens exactly as createSm4Aead on both sides of the split`, () => {
    const direct = createSm4Aead(mode, key);
    const lazy = new LazySm4Aead(mode, key);
    // Twice through the sizes: the first pass stays under the WebAssembly budget, the second goes past it.
    const sizes = [0, 1, 100, SM4_WASM_MIN_BYTES - 1, SM4_WASM_MIN_BYTES, 4000, 16385, 16384, 16384, 16384, 16384];
    for (const n of [...sizes, ...sizes]) {
      const pt = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      const nonce = tls13Nonce(iv, n);
      const want = direct.seal(nonce, pt, aad);
      const got = new Uint8Array(n + 16);
      assertEquals(lazy.sealInto(nonce, pt, aad, got), n + 16);
      assertEquals(got, want, `seal of ${n} bytes`);
      const back = new Uint8Array(n);
      assertEquals(lazy.openInto(nonce, want, aad, back), n);
      assertEquals(back, pt, `open of ${n} bytes`);
      // In place, as the record layer does it.
      const inPlace = want.slice();
      assertEquals(lazy.openInto(nonce, inPlace, aad, inPlace), n);
      assertEquals(inPlace.subarray(0, n), pt);
      const bad = want.slice();
      bad[bad.length - 1]! ^= 1;
      assertEquals(lazy.openInto(nonce, bad, aad, new Uint8Array(n)), -1, `tampered ${n} bytes`);
    }
    assertEquals(lazy.built, { small: true, large: true });
    assertEquals(lazy.openInto(tls13Nonce(iv, 0), new Uint8Array(15), aad, new Uint8Array(16)), -1);
  });
}

Deno.test("TLS_SM4_GCM_SM3 and TLS_SM4_CCM_SM3 build lazy AEADs", () => {
  assert(TLS13_CIPHER_SUITES.TLS_SM4_GCM_SM3.createAead(key) instanceof LazySm4Aead);
  assert(TLS13_CIPHER_SUITES.TLS_SM4_CCM_SM3.createAead(key) instanceof LazySm4Aead);
});
