/**
 * SM4 throughput on 16 KiB records (a full TLS record; some GCM rows also 64 B and 1 KiB): our SM4-GCM (TypeScript,
 * scalar WebAssembly `wasm`, WebAssembly SIMD `simd`), SM4-CCM, SM4-CTR, SM4-CBC and SIMD ECB/CTR/GHASH against
 * `sm-crypto-v2` (GCM and CBC), `sm-crypto` (CBC) and Node's OpenSSL `sm4-ctr` / `sm4-cbc` measured in a `node`
 * subprocess on the same record size. Every figure is MB/s (10^6 bytes per second), as min–max over several
 * rounds; each measurement runs for a bounded time. Two figures per row: bytes per wall-clock second, and bytes
 * per second of CPU time of the measuring process (`process.cpuUsage`), which is the steadier of the two when
 * other work shares the machine. Ratios use the CPU figures.
 *
 * Run: `deno run -A bench/crypto_sm4.ts [rounds] [ms-per-measurement]` (defaults: 3 rounds, 700 ms).
 *
 * @module
 */

import process from "node:process";
import smCrypto from "sm-crypto";
import { sm4 as smV2 } from "sm-crypto-v2";
import { Sm4Gcm } from "../lib/crypto/gcm.ts";
import { Sm4Ccm } from "../lib/crypto/ccm.ts";
import { Sm4Ctr } from "../lib/crypto/sm4_ctr.ts";
import { Sm4Cbc } from "../lib/crypto/sm4_cbc.ts";
import { Sm4 } from "../lib/crypto/sm4.ts";
import { Sm4CbcWasm } from "../lib/crypto/wasm/sm4_cbc_wasm.ts";
import { Sm4CcmWasm } from "../lib/crypto/wasm/sm4_ccm_wasm.ts";
import { Sm4GcmWasm } from "../lib/crypto/wasm/sm4_gcm_wasm.ts";
import { GhashSimd, Sm4Simd } from "../lib/crypto/wasm/sm4_simd.ts";
import { ghashMul, ghashMulShoup8, ghashTable, ghashTableShoup8 } from "../lib/crypto/_sm4_ghash.ts";

const ROUNDS = Number(Deno.args[0] ?? 3);
const MS = Number(Deno.args[1] ?? 700);
const SIZE = 16384;

const key = crypto.getRandomValues(new Uint8Array(16));
const iv16 = crypto.getRandomValues(new Uint8Array(16));
const nonce = crypto.getRandomValues(new Uint8Array(12));
const aad = crypto.getRandomValues(new Uint8Array(13)); // a TLS 1.2-style AAD; TLS 1.3 uses the 5-byte header
const data = crypto.getRandomValues(new Uint8Array(SIZE));
const keyHex = [...key].map((b) => b.toString(16).padStart(2, "0")).join("");
const ivHex = [...iv16].map((b) => b.toString(16).padStart(2, "0")).join("");

/** Throughput of one measurement: by wall-clock time and by CPU time, in MB/s. */
interface Mbps {
  wall: number;
  cpu: number;
}

/** Runs `fn` (which processes `bytes` bytes) for about `ms` milliseconds after a short warm-up. */
function measure(fn: () => void, bytes: number, ms = MS): Mbps {
  const warm = performance.now() + Math.min(200, ms / 3);
  while (performance.now() < warm) fn();
  let n = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    fn();
    n++;
    t = performance.now();
  }
  const c = process.cpuUsage(c0);
  return { wall: (n * bytes) / ((t - t0) * 1000), cpu: (n * bytes) / (c.user + c.system) };
}

const NODE_SCRIPT = `
const c = require("crypto");
const [alg, keyHex, ivHex, size, ms] = process.argv.slice(1);
const key = Buffer.from(keyHex, "hex"), iv = Buffer.from(ivHex, "hex"), d = c.randomBytes(+size);
const run = () => { const x = c.createCipheriv(alg, key, iv); x.setAutoPadding(false); x.update(d); x.final(); };
const warm = Date.now() + 200; while (Date.now() < warm) run();
let n = 0; const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint(); let t = t0;
while (Number(t - t0) / 1e6 < +ms) { run(); n++; t = process.hrtime.bigint(); }
const u = process.cpuUsage(c0);
console.log((n * +size / (Number(t - t0) / 1e3)).toFixed(2), (n * +size / (u.user + u.system)).toFixed(2));`;

/** Measures Node's OpenSSL `alg` on SIZE-byte inputs in a subprocess and returns its printed MB/s. */
async function nodeMbps(alg: string): Promise<Mbps> {
  const out = await new Deno.Command("node", {
    args: ["-e", NODE_SCRIPT, alg, keyHex, ivHex, String(SIZE), String(MS)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`node ${alg}: ${new TextDecoder().decode(out.stderr)}`);
  const [wall, cpu] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
  return { wall: wall!, cpu: cpu! };
}

const gcm = new Sm4Gcm(key);
const gcmWasm = new Sm4GcmWasm(key, { simd: false });
const gcmSimd = new Sm4GcmWasm(key, { simd: true });
const sm4Simd = new Sm4Simd(key);
const ghSimd = new GhashSimd(key);
const gcmLarge = new Sm4Gcm(key, { ghashTable: "large" });
const ccm = new Sm4Ccm(key);
const ccmWasm = new Sm4CcmWasm(key);
const ctr = new Sm4Ctr(key);
const cbc = new Sm4Cbc(key);
const cbcWasm = new Sm4CbcWasm(key);
const sm4 = new Sm4(key);
const sealedGcm = gcm.seal(nonce, data, aad);
const sealedCcm = ccm.seal(nonce, data, aad);
const cbcCt = cbc.encrypt(iv16, data, { padding: "none" });
const out = new Uint8Array(SIZE + 16);
const ghTab = ghashTable(1, 2, 3, 4), ghShoup = ghashTableShoup8(1, 2, 3, 4), gh = new Int32Array(4);
const dataArr = Array.from(data);
const v2Ct = smV2.encrypt(data, key, { mode: "gcm", iv: nonce, associatedData: aad, outputTag: true, output: "array" });

const cases: [string, () => Mbps | Promise<Mbps>][] = [
  ["ferry sm4-gcm seal (sealInto)", () => measure(() => gcm.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry sm4-gcm open (openInto)", () => measure(() => gcm.openInto(nonce, sealedGcm, aad, out), SIZE)],
  ["ferry wasm sm4-gcm seal (sealInto)", () => measure(() => gcmWasm.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry wasm sm4-gcm open (openInto)", () => measure(() => gcmWasm.openInto(nonce, sealedGcm, aad, out), SIZE)],
  ["ferry simd sm4-gcm seal (sealInto)", () => measure(() => gcmSimd.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry simd sm4-gcm open (openInto)", () => measure(() => gcmSimd.openInto(nonce, sealedGcm, aad, out), SIZE)],
  ...[64, 1024].flatMap((n): [string, () => Mbps][] => {
    const small = data.subarray(0, n), smallOut = new Uint8Array(n + 16), hdr = aad.subarray(0, 5);
    return [
      [`ferry sm4-gcm seal ${n} B`, () => measure(() => gcm.sealInto(nonce, small, hdr, smallOut), n)],
      [`ferry wasm sm4-gcm seal ${n} B`, () => measure(() => gcmWasm.sealInto(nonce, small, hdr, smallOut), n)],
      [`ferry simd sm4-gcm seal ${n} B`, () => measure(() => gcmSimd.sealInto(nonce, small, hdr, smallOut), n)],
    ];
  }),
  ["ferry simd sm4-ecb encrypt", () => measure(() => sm4Simd.encryptEcb(data, out), SIZE)],
  ["ferry simd sm4-ctr32", () => measure(() => sm4Simd.ctr32(nonce, 2, data, out), SIZE)],
  ["ferry simd sm4-cbc decrypt", () => measure(() => sm4Simd.decryptCbc(iv16, cbcCt, out), SIZE)],
  ["ferry simd ghash", () => measure(() => ghSimd.update(data), SIZE)],
  ["ferry sm4-gcm seal, large GHASH table", () => measure(() => gcmLarge.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry sm4-gcm seal (allocating)", () => measure(() => gcm.seal(nonce, data, aad), SIZE)],
  ["ferry sm4-ccm seal (sealInto)", () => measure(() => ccm.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry sm4-ccm open (openInto)", () => measure(() => ccm.openInto(nonce, sealedCcm, aad, out), SIZE)],
  ["ferry wasm sm4-ccm seal (sealInto)", () => measure(() => ccmWasm.sealInto(nonce, data, aad, out), SIZE)],
  ["ferry wasm sm4-ccm open (openInto)", () => measure(() => ccmWasm.openInto(nonce, sealedCcm, aad, out), SIZE)],
  ["ferry sm4-ctr", () => measure(() => ctr.xor(iv16, data, out), SIZE)],
  ["ferry sm4-cbc encrypt", () => measure(() => cbc.encrypt(iv16, data, { padding: "none" }), SIZE)],
  ["ferry sm4-cbc decrypt", () => measure(() => cbc.decrypt(iv16, cbcCt, { padding: "none" }), SIZE)],
  ["ferry wasm sm4-cbc encrypt", () => measure(() => cbcWasm.encrypt(iv16, data, { padding: "none" }), SIZE)],
  ["ferry wasm sm4-cbc decrypt (simd)", () => measure(() => cbcWasm.decrypt(iv16, cbcCt, { padding: "none" }), SIZE)],
  ["ferry sm4-ecb encrypt", () => measure(() => sm4.encryptEcb(data, { padding: "none" }), SIZE)],
  ["ferry ghash 16x256 tables", () =>
    measure(() => {
      for (let i = 0; i < SIZE; i += 16) ghashMul(ghTab, gh[0]! ^ i, gh[1]!, gh[2]!, gh[3]!, gh);
    }, SIZE)],
  ["ferry ghash shoup-8 tables", () =>
    measure(() => {
      for (let i = 0; i < SIZE; i += 16) ghashMulShoup8(ghShoup, gh[0]! ^ i, gh[1]!, gh[2]!, gh[3]!, gh);
    }, SIZE)],
  ["sm-crypto-v2 sm4-gcm encrypt", () =>
    measure(
      () => smV2.encrypt(data, key, { mode: "gcm", iv: nonce, associatedData: aad, outputTag: true, output: "array" }),
      SIZE,
    )],
  ["sm-crypto-v2 sm4-gcm decrypt", () =>
    measure(
      () =>
        smV2.decrypt(v2Ct.output, key, {
          mode: "gcm",
          iv: nonce,
          associatedData: aad,
          tag: v2Ct.tag!,
          output: "array",
        }),
      SIZE,
    )],
  [
    "sm-crypto-v2 sm4-cbc encrypt",
    () => measure(() => smV2.encrypt(data, key, { mode: "cbc", iv: iv16, padding: "none", output: "array" }), SIZE),
  ],
  ["sm-crypto sm4-cbc encrypt", () =>
    measure(
      () => smCrypto.sm4.encrypt(dataArr, keyHex, { mode: "cbc", iv: ivHex, padding: "none", output: "array" }),
      SIZE,
    )],
  ["node openssl sm4-ctr", () => nodeMbps("sm4-ctr")],
  ["node openssl sm4-cbc encrypt", () => nodeMbps("sm4-cbc")],
];

const results = new Map<string, number[]>();
const wallResults = new Map<string, number[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, run] of cases) {
    const v = await run();
    results.set(name, [...(results.get(name) ?? []), v.cpu]);
    wallResults.set(name, [...(wallResults.get(name) ?? []), v.wall]);
  }
}

const fmt = (x: number) => x.toFixed(x < 10 ? 2 : 1);
const range = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
console.log(`SM4 on ${SIZE}-byte records, MB/s, min–max over ${ROUNDS} rounds of ${MS} ms (Deno ${Deno.version.deno})`);
const width = Math.max(...cases.map(([n]) => n.length));
console.log(`  ${"".padEnd(width)}  ${"per CPU second".padStart(14)}  ${"per wall second".padStart(15)}`);
for (const [name] of cases) {
  console.log(
    `  ${name.padEnd(width)}  ${range(results.get(name)!).padStart(14)}  ${range(wallResults.get(name)!).padStart(15)}`,
  );
}

/** Ratio range of a over b: min(a)/max(b) .. max(a)/min(b) — the honest spread of two noisy figures. */
function ratio(a: string, b: string, target?: number): void {
  const xs = results.get(a)!, ys = results.get(b)!;
  const lo = Math.min(...xs) / Math.max(...ys), hi = Math.max(...xs) / Math.min(...ys);
  const med = median(xs) / median(ys);
  const goal = target === undefined ? "" : `  (target ≥ ${target}×: ${med >= target ? "met" : "NOT met"})`;
  console.log(`  ${a} / ${b}: ${lo.toFixed(2)}–${hi.toFixed(2)}×, median ${med.toFixed(2)}×${goal}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}

console.log("Ratios (CPU figures; range is min/max to max/min):");
ratio("ferry sm4-gcm seal (sealInto)", "sm-crypto-v2 sm4-gcm encrypt", 4);
ratio("ferry sm4-gcm open (openInto)", "sm-crypto-v2 sm4-gcm decrypt", 4);
ratio("ferry sm4-gcm seal (sealInto)", "node openssl sm4-ctr", 0.4);
ratio("ferry sm4-gcm open (openInto)", "node openssl sm4-ctr", 0.4);
ratio("ferry wasm sm4-gcm seal (sealInto)", "sm-crypto-v2 sm4-gcm encrypt", 4);
ratio("ferry wasm sm4-gcm seal (sealInto)", "node openssl sm4-ctr", 0.4);
ratio("ferry wasm sm4-gcm open (openInto)", "node openssl sm4-ctr", 0.4);
ratio("ferry wasm sm4-gcm seal (sealInto)", "ferry sm4-gcm seal (sealInto)");
ratio("ferry simd sm4-gcm seal (sealInto)", "ferry wasm sm4-gcm seal (sealInto)");
ratio("ferry simd sm4-gcm open (openInto)", "ferry wasm sm4-gcm open (openInto)");
ratio("ferry simd sm4-gcm seal (sealInto)", "node openssl sm4-ctr", 0.4);
ratio("ferry simd sm4-ctr32", "node openssl sm4-ctr");
ratio("ferry simd sm4-gcm seal 64 B", "ferry sm4-gcm seal 64 B");
ratio("ferry simd sm4-gcm seal 1024 B", "ferry sm4-gcm seal 1024 B");
ratio("ferry sm4-ccm seal (sealInto)", "node openssl sm4-ctr");
ratio("ferry wasm sm4-ccm seal (sealInto)", "node openssl sm4-ctr");
ratio("ferry wasm sm4-ccm seal (sealInto)", "ferry sm4-ccm seal (sealInto)");
ratio("ferry sm4-ctr", "node openssl sm4-ctr");
ratio("ferry sm4-cbc encrypt", "node openssl sm4-cbc encrypt");
ratio("ferry wasm sm4-cbc encrypt", "node openssl sm4-cbc encrypt");
ratio("ferry sm4-cbc encrypt", "sm-crypto sm4-cbc encrypt");
ratio("ferry sm4-cbc encrypt", "sm-crypto-v2 sm4-cbc encrypt");
ratio("ferry ghash 16x256 tables", "ferry ghash shoup-8 tables");
