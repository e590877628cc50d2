import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { createSm4Aead, type Sm4AeadMode, type Sm4Backend } from "./sm4_aead.ts";
import { Sm4Ccm } from "./ccm.ts";
import { Sm4Gcm } from "./gcm.ts";
import { tls13Nonce } from "./sm4_nonce.ts";
import { Sm4CcmWasm } from "./wasm/sm4_ccm_wasm.ts";
import { Sm4GcmWasm } from "./wasm/sm4_gcm_wasm.ts";
import { seeded, toHex } from "../../tests/helpers/sm4.ts";

Deno.test("createSm4Aead picks WebAssembly by default and TypeScript on request", () => {
  const key = seeded(16, 1);
  assertEquals(createSm4Aead("gcm", key) instanceof Sm4GcmWasm, true);
  assertEquals(createSm4Aead("ccm", key) instanceof Sm4CcmWasm, true);
  assertEquals(createSm4Aead("gcm", key, { backend: "js" }) instanceof Sm4Gcm, true);
  assertEquals(createSm4Aead("ccm", key, { backend: "js", tagLength: 8 }) instanceof Sm4Ccm, true);
  assertEquals(createSm4Aead("ccm", key, { backend: "wasm", tagLength: 8 }).tagLength, 8);
});

Deno.test("createSm4Aead backends agree on TLS 1.3-style records", () => {
  const key = seeded(16, 2), iv = seeded(12, 3);
  for (const mode of ["gcm", "ccm"] as Sm4AeadMode[]) {
    const [a, b] = (["js", "wasm"] as Sm4Backend[]).map((backend) => createSm4Aead(mode, key, { backend }));
    for (const [seq, n] of [[0, 0], [1, 1], [2, 16383], [3, 16384 + 1]] as const) {
      const nonce = tls13Nonce(iv, seq), header = new Uint8Array([23, 3, 3, (n + 17) >> 8, (n + 17) & 255]);
      const data = seeded(n, 10 + seq);
      const sealed = a!.seal(nonce, data, header);
      assertEquals(toHex(b!.seal(nonce, data, header)), toHex(sealed), `${mode} seq ${seq}`);
      assertEquals(toHex(b!.open(nonce, sealed, header)!), toHex(data));
      assertEquals(b!.open(tls13Nonce(iv, seq + 1), sealed, header), null);
    }
  }
});

Deno.test("createSm4Aead rejects bad modes, backends and tag lengths", () => {
  const key = seeded(16, 1);
  assertThrows(() => createSm4Aead("ocb" as Sm4AeadMode, key), /sm4 aead: mode must be "gcm" or "ccm"/);
  assertThrows(() => createSm4Aead("gcm", key, { backend: "gpu" as Sm4Backend }), /sm4 aead: backend/);
  assertThrows(() => createSm4Aead("gcm", key, { tagLength: 12 }), /sm4-gcm: tag length must be 16/);
  assertThrows(() => createSm4Aead("ccm", key, { tagLength: 3 }), /sm4-ccm: tag length/);
  assertThrows(() => createSm4Aead("gcm", new Uint8Array(8)), /sm4: key must be 16 bytes/);
});
