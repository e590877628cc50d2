import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { expandKey, sm4Block } from "../_sm4_core.ts";
import { ghashTable } from "../_sm4_ghash.ts";
import { Sm4Gcm } from "../gcm.ts";
import { Sm4Cbc } from "../sm4_cbc.ts";
import { type NodeCipherOp, nodeCiphers, seeded, SIZES, toHex } from "../../../tests/helpers/sm4.ts";
import { CTR_BASE, GH_BASE, IO_BASE, IO_SIZE, storeBigEndian, Y_BASE } from "./_sm4_wasm_module.ts";
import {
  deriveSboxTables,
  SIMD_CBC_IV_BASE,
  SIMD_H_BASE,
  SIMD_RK_BASE,
  SIMD_RK_DEC_BASE,
  SIMD_TAG_BASE,
  sm4SimdModule,
  sm4SimdModuleBytes,
  storeSimdRoundKeys,
} from "./_sm4_simd_module.ts";
import { GhashSimd, Sm4Simd } from "./sm4_simd.ts";
import { Sm4GcmWasm } from "./sm4_gcm_wasm.ts";

interface RawKernel {
  mem: WebAssembly.Memory;
  ecb(ptr: number, blocks: number, rk: number): void;
  ctr(ptr: number, blocks: number): void;
  cbcDecrypt(ptr: number, blocks: number): void;
  block(ptr: number): void;
  record(aadPtr: number, aadBytes: number, ptr: number, bytes: number, sealing: number): void;
}

const modules = new Map<boolean, WebAssembly.Module>();

/** A raw kernel instance of one module variant, keyed like Sm4GcmWasm and Sm4Simd key theirs. */
function kernel(relaxed: boolean, key: Uint8Array): RawKernel {
  const module = modules.get(relaxed) ?? new WebAssembly.Module(sm4SimdModuleBytes(relaxed));
  modules.set(relaxed, module);
  const k = new WebAssembly.Instance(module).exports as unknown as RawKernel;
  const rk = expandKey(key, false), buf = k.mem.buffer, h = new Int32Array(4);
  storeSimdRoundKeys(buf, SIMD_RK_BASE, rk);
  storeSimdRoundKeys(buf, SIMD_RK_DEC_BASE, rk.slice().reverse());
  sm4Block(rk, 0, 0, 0, 0, h);
  storeBigEndian(buf, GH_BASE, ghashTable(h[0]!, h[1]!, h[2]!, h[3]!));
  return k;
}

/** Reference SM4 over whole blocks with the TypeScript core. */
function refEcb(key: Uint8Array, data: Uint8Array, decrypt = false): Uint8Array {
  const rk = expandKey(key, decrypt), dv = new DataView(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(data.length), ov = new DataView(out.buffer), w = new Int32Array(4);
  for (let i = 0; i < data.length; i += 16) {
    sm4Block(rk, dv.getInt32(i), dv.getInt32(i + 4), dv.getInt32(i + 8), dv.getInt32(i + 12), w);
    for (let j = 0; j < 4; j++) ov.setInt32(i + 4 * j, w[j]!);
  }
  return out;
}

/** Reference GCM-style CTR: counter blocks nonce ‖ c, c + 1, … (mod 2^32), whole blocks. */
function refCtr32(key: Uint8Array, nonce: Uint8Array, c: number, data: Uint8Array): Uint8Array {
  const blocks = new Uint8Array(data.length), dv = new DataView(blocks.buffer);
  for (let i = 0; i < data.length; i += 16) {
    blocks.set(nonce, i);
    dv.setUint32(i + 12, (c + i / 16) >>> 0);
  }
  const ks = refEcb(key, blocks);
  return ks.map((b, i) => b ^ data[i]!);
}

const BLOCK_COUNTS = [0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 15, 16, 23, 24, 25, 27, 36, 37, 100];

Deno.test("sm4SimdModule compiles on this runtime (Deno 2.9 has wasm SIMD), so the SIMD paths are what run", () => {
  // Without this, a module that failed validation would silently fall back to the scalar kernel everywhere.
  assertEquals(sm4SimdModule() !== null, true);
  assertEquals(Sm4Simd.available(), true);
  assertEquals(new Sm4GcmWasm(new Uint8Array(16)).simd, true);
  assertEquals(new Sm4GcmWasm(new Uint8Array(16), { simd: false }).simd, false);
  for (const relaxed of [true, false]) assertEquals(WebAssembly.validate(sm4SimdModuleBytes(relaxed)), true);
  // deriveSboxTables checks itself against the S-box for all 256 inputs and throws on a mismatch.
  assertEquals(deriveSboxTables().inv.length, 16);
});

for (const relaxed of [true, false]) {
  const variant = relaxed ? "relaxed swizzle" : "swizzle";

  Deno.test(`SIMD kernel (${variant}) ECB both ways equals the TypeScript core for 0..100 blocks`, () => {
    for (const [i, n] of BLOCK_COUNTS.entries()) {
      const key = seeded(16, 100 + i), data = seeded(16 * n, 200 + i), k = kernel(relaxed, key);
      const mem = new Uint8Array(k.mem.buffer);
      mem.set(data, IO_BASE);
      mem.fill(0xa5, IO_BASE + data.length, IO_BASE + data.length + 64);
      k.ecb(IO_BASE, n, SIMD_RK_BASE);
      assertEquals(toHex(mem.slice(IO_BASE, IO_BASE + data.length)), toHex(refEcb(key, data)), `${n} blocks`);
      // The blocks after the data are untouched (partial groups go through scratch).
      assertEquals(mem.slice(IO_BASE + data.length, IO_BASE + data.length + 64).every((b) => b === 0xa5), true);
      k.ecb(IO_BASE, n, SIMD_RK_DEC_BASE);
      assertEquals(toHex(mem.slice(IO_BASE, IO_BASE + data.length)), toHex(data), `${n} blocks decrypt`);
    }
  });

  Deno.test(`SIMD kernel (${variant}) CTR equals the reference, including the 32-bit counter wrap`, () => {
    for (const [i, n] of BLOCK_COUNTS.entries()) {
      for (const start of [2, 0xfffffff0, 0xfffffffe]) {
        const key = seeded(16, 300 + i), nonce = seeded(12, 400 + i), data = seeded(16 * n, 500 + i);
        const k = kernel(relaxed, key), mem = new Uint8Array(k.mem.buffer), dv = new DataView(k.mem.buffer);
        mem.set(nonce, CTR_BASE);
        dv.setInt32(CTR_BASE + 12, start | 0, true);
        mem.set(data, IO_BASE);
        k.ctr(IO_BASE, n);
        const what = `${n} blocks from ${start}`;
        assertEquals(toHex(mem.slice(IO_BASE, IO_BASE + data.length)), toHex(refCtr32(key, nonce, start, data)), what);
        assertEquals(dv.getUint32(CTR_BASE + 12, true), (start + n) >>> 0, what);
      }
    }
  });

  Deno.test(`SIMD kernel (${variant}) CBC decryption equals Sm4Cbc, chaining across calls`, () => {
    for (const [i, n] of BLOCK_COUNTS.entries()) {
      const key = seeded(16, 600 + i), iv = seeded(16, 700 + i), data = seeded(16 * (2 * n), 800 + i);
      const ct = new Sm4Cbc(key).encrypt(iv, data, { padding: "none" });
      const k = kernel(relaxed, key), mem = new Uint8Array(k.mem.buffer);
      mem.set(iv, SIMD_CBC_IV_BASE);
      // Two calls of n blocks: the second starts from the chaining value the first left.
      for (let half = 0; half < 2; half++) {
        mem.set(ct.subarray(16 * n * half, 16 * n * (half + 1)), IO_BASE);
        k.cbcDecrypt(IO_BASE, n);
        const got = mem.slice(IO_BASE, IO_BASE + 16 * n);
        assertEquals(toHex(got), toHex(data.subarray(16 * n * half, 16 * n * (half + 1))), `${n} blocks, half ${half}`);
      }
    }
  });

  Deno.test(`SIMD kernel (${variant}) record() seals and opens like Sm4Gcm`, () => {
    for (let i = 0; i < 60; i++) {
      const n = i < 40 ? i * 7 : (i * 997) % 3000, aadLen = (i * 13) % 45;
      const key = seeded(16, 900 + i), nonce = seeded(12, 1000 + i), aad = seeded(aadLen, 1100 + i);
      const data = seeded(n, 1200 + i), want = new Sm4Gcm(key).seal(nonce, data, aad);
      for (const sealing of [1, 0]) {
        const k = kernel(relaxed, key), mem = new Uint8Array(k.mem.buffer), dv = new DataView(k.mem.buffer);
        const at = IO_BASE + ((aadLen + 15) & ~15);
        mem.set(nonce, CTR_BASE);
        dv.setInt32(CTR_BASE + 12, 2, true);
        mem.set(aad, IO_BASE);
        mem.set(sealing ? data : want.subarray(0, n), at);
        k.record(IO_BASE, aadLen, at, n, sealing);
        const what = `${n} bytes, aad ${aadLen}, sealing ${sealing}`;
        assertEquals(toHex(mem.slice(at, at + n)), toHex(sealing ? want.subarray(0, n) : data), what);
        assertEquals(toHex(mem.slice(SIMD_TAG_BASE, SIMD_TAG_BASE + 16)), toHex(want.subarray(n)), what);
        assertEquals(mem.slice(Y_BASE, Y_BASE + 16).some((b) => b !== 0) || n + aadLen === 0, true, what);
      }
    }
  });
}

Deno.test("Sm4Simd ECB and CTR match node's OpenSSL sm4-ecb and sm4-ctr", async () => {
  const sizes = [...SIZES.filter((n) => n % 16 === 0), 48, 176, 192, 208, IO_SIZE - 16, IO_SIZE + 32];
  const cases = sizes.map((n, i) => ({
    key: seeded(16, 1300 + i),
    iv: seeded(16, 1400 + i),
    data: seeded(n, 1500 + i),
  }));
  // OpenSSL's CTR increments all 128 bits; keep the low word far from wrapping so it equals the 32-bit counter.
  for (const c of cases) c.iv[12] = 0;
  const ops: NodeCipherOp[] = cases.flatMap((c) => [
    { alg: "sm4-ecb" as const, key: c.key, data: c.data },
    { alg: "sm4-ctr" as const, key: c.key, iv: c.iv, data: c.data },
  ]);
  const want = await nodeCiphers(ops);
  for (const [i, c] of cases.entries()) {
    const s = new Sm4Simd(c.key), what = `size ${c.data.length}`;
    const ctr0 = new DataView(c.iv.buffer).getUint32(12);
    assertEquals(toHex(s.encryptEcb(c.data)), toHex(want[2 * i]!), what);
    assertEquals(toHex(s.decryptEcb(want[2 * i]!)), toHex(c.data), what);
    assertEquals(toHex(s.ctr32(c.iv.subarray(0, 12), ctr0, c.data)), toHex(want[2 * i + 1]!), what);
    // In place.
    const buf = c.data.slice();
    s.encryptEcb(buf, buf);
    assertEquals(toHex(buf), toHex(want[2 * i]!), `${what} in place`);
  }
});

Deno.test("Sm4Simd rejects partial blocks, short outputs, bad nonces and IVs", () => {
  const s = new Sm4Simd(new Uint8Array(16));
  assertThrows(() => s.encryptEcb(new Uint8Array(15)), /sm4 simd ecb: input must be whole 16-byte blocks/);
  assertThrows(() => s.encryptEcb(new Uint8Array(32), new Uint8Array(16)), /sm4 simd ecb: output too small/);
  assertThrows(() => s.ctr32(new Uint8Array(8), 0, new Uint8Array(16)), /sm4 simd: nonce must be 12 bytes/);
  assertThrows(() => s.decryptCbc(new Uint8Array(8), new Uint8Array(16)), /sm4 simd: iv must be 16 bytes/);
  assertThrows(() => new Sm4Simd(new Uint8Array(15)), /sm4: key must be 16 bytes/);
});

Deno.test("Sm4GcmWasm on SIMD equals Sm4Gcm on random lengths and AAD, in place, both ways", () => {
  let seed = 77;
  const rnd = (m: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % m;
  };
  const key = seeded(16, 31), js = new Sm4Gcm(key), w = new Sm4GcmWasm(key);
  for (let i = 0; i < 150; i++) {
    const n = i < 50 ? rnd(80) : rnd(5000), aadLen = rnd(i % 10 === 0 ? 300 : 30);
    const nonce = seeded(12, 3000 + i), aad = seeded(aadLen, 3100 + i), data = seeded(n, 3200 + i);
    const want = js.seal(nonce, data, aad), what = `${n} bytes, aad ${aadLen}`;
    assertEquals(toHex(w.seal(nonce, data, aad)), toHex(want), what);
    assertEquals(toHex(w.open(nonce, want, aad)!), toHex(data), what);
    const buf = new Uint8Array(n + 16);
    buf.set(data);
    assertEquals(w.sealInto(nonce, buf.subarray(0, n), aad, buf), n + 16);
    assertEquals(toHex(buf), toHex(want), `${what} in place`);
    assertEquals(w.openInto(nonce, buf, aad, buf), n);
    assertEquals(toHex(buf.subarray(0, n)), toHex(data), `${what} in place`);
  }
});

Deno.test("Sm4GcmWasm on SIMD switches between one-call records and chunks at the I/O area size", () => {
  const key = seeded(16, 41), js = new Sm4Gcm(key), w = new Sm4GcmWasm(key);
  for (const aadLen of [0, 13, 16, 17]) {
    const padded = (aadLen + 15) & ~15;
    for (const n of [IO_SIZE - padded - 1, IO_SIZE - padded, IO_SIZE - padded + 1, IO_SIZE + 100]) {
      const nonce = seeded(12, n), aad = seeded(aadLen, aadLen), data = seeded(n, n + 1);
      const want = js.seal(nonce, data, aad);
      assertEquals(toHex(w.seal(nonce, data, aad)), toHex(want), `${n} bytes, aad ${aadLen}`);
      assertEquals(toHex(w.open(nonce, want, aad)!), toHex(data), `${n} bytes, aad ${aadLen}`);
    }
  }
});

Deno.test("Sm4GcmWasm on SIMD refuses a bad tag on the one-call path and zeroes out", () => {
  const key = seeded(16, 51), w = new Sm4GcmWasm(key), nonce = seeded(12, 52), aad = seeded(5, 53);
  for (const n of [0, 1, 16, 100, 16384]) {
    const sealed = w.seal(nonce, seeded(n, 54), aad);
    for (const at of [0, n - 1, n, n + 15].filter((x) => x >= 0 && x < sealed.length)) {
      const bad = sealed.slice();
      bad[at] = bad[at]! ^ 0x40;
      const out = new Uint8Array(n).fill(9);
      assertEquals(w.openInto(nonce, bad, aad, out), -1, `${n} bytes, flip ${at}`);
      assertEquals(out.every((b) => b === 0), true, `${n} bytes, flip ${at}`);
      assertEquals(w.open(nonce, bad, aad), null);
    }
    assertEquals(w.open(nonce, sealed, aad.subarray(1)), null);
    assertEquals(w.open(seeded(12, 99), sealed, aad), null);
  }
});

Deno.test("GhashSimd over AAD, ciphertext and lengths, XORed with E(J0), is Sm4Gcm's tag", () => {
  for (const [i, n] of [0, 1, 16, 33, 1000, IO_SIZE + 20].entries()) {
    const key = seeded(16, 60 + i), nonce = seeded(12, 61 + i), aad = seeded(i * 7, 62 + i);
    const sealed = new Sm4Gcm(key).seal(nonce, seeded(n, 63 + i), aad);
    const sm4 = new Sm4Simd(key), lens = new Uint8Array(16), dv = new DataView(lens.buffer);
    dv.setUint32(4, aad.length * 8);
    dv.setUint32(12, n * 8);
    const y = new GhashSimd(sm4.encryptEcb(new Uint8Array(16))).update(aad).update(sealed.subarray(0, n))
      .update(lens).digest();
    const j0 = new Uint8Array(16);
    j0.set(nonce);
    j0[15] = 1;
    const tag = sm4.encryptEcb(j0).map((b, k) => b ^ y[k]!);
    assertEquals(toHex(tag), toHex(sealed.subarray(n)), `${n} bytes`);
  }
  assertThrows(() => new GhashSimd(new Uint8Array(8)), /ghash: key must be 16 bytes/);
});

Deno.test("SIMD kernel initH builds the same GHASH table as ghashTable + storeBigEndian", () => {
  for (let i = 0; i < 4; i++) {
    const h = i === 0 ? new Uint8Array(16).fill(0xff) : seeded(16, 70 + i), dv = new DataView(h.buffer);
    const want = new WebAssembly.Instance(sm4SimdModule()!).exports as unknown as RawKernel;
    const got = new WebAssembly.Instance(sm4SimdModule()!).exports as unknown as RawKernel & { initH(): void };
    storeBigEndian(
      want.mem.buffer,
      GH_BASE,
      ghashTable(dv.getInt32(0), dv.getInt32(4), dv.getInt32(8), dv.getInt32(12)),
    );
    new Uint8Array(got.mem.buffer).set(h, SIMD_H_BASE);
    got.initH();
    const a = new Uint8Array(want.mem.buffer, GH_BASE, 65536), b = new Uint8Array(got.mem.buffer, GH_BASE, 65536);
    assertEquals(a.every((x, j) => x === b[j]), true, `H ${toHex(h)}`);
  }
});
