import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { createSm3, hmacSm3, hmacSm3Key, sm3, sm3Kdf, sm3Native } from "./sm3.ts";
import { hex, node, openssl, toHex } from "./testdata/oracle.ts";
import { hmac, HmacKey, type IncrementalHash, SHA256 } from "./hmac.ts";

const enc = new TextEncoder();

Deno.test("sm3 matches the GB/T 32905 example 1 (abc)", () => {
  assertEquals(toHex(sm3(enc.encode("abc"))), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
});

Deno.test("sm3 matches the GB/T 32905 example 2 (abcd x16)", () => {
  assertEquals(
    toHex(sm3(enc.encode("abcd".repeat(16)))),
    "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
  );
});

Deno.test("createSm3 hashes incrementally and copies state", () => {
  const h = createSm3().update(enc.encode("ab"));
  const fork = h.copy();
  assertEquals(toHex(h.update(enc.encode("c")).digest()), toHex(sm3(enc.encode("abc"))));
  assertEquals(toHex(fork.update(enc.encode("cd")).digest()), toHex(sm3(enc.encode("abcd"))));
});

Deno.test("hmacSm3 matches openssl mac for short, block-sized and long keys", async () => {
  for (const keyLen of [0, 3, 32, 64, 65, 200]) {
    const key = new Uint8Array(keyLen).map((_, i) => (i * 7 + 1) & 0xff);
    const msg = enc.encode("message " + keyLen);
    const want = keyLen === 0
      ? await node(
        `process.stdout.write(require('crypto').createHmac('sm3', Buffer.alloc(0)).update('message 0').digest('hex'))`,
      )
      : (await openssl(["mac", "-digest", "SM3", "-macopt", "hexkey:" + toHex(key), "HMAC"], msg)).out.trim()
        .toLowerCase();
    assertEquals(toHex(hmacSm3(key, msg)), want, `key length ${keyLen}`);
  }
});

Deno.test("hmacSm3Key reuses pad states across MACs and matches node createHmac('sm3')", async () => {
  const key = hex("000102030405060708090a0b0c0d0e0f");
  const k = hmacSm3Key(key);
  const want = await node(
    `const c=require('crypto');const k=Buffer.from('000102030405060708090a0b0c0d0e0f','hex');` +
      `process.stdout.write(['a','bb',''].map(m=>c.createHmac('sm3',k).update(m).digest('hex')).join(','))`,
  );
  const got = ["a", "bb", ""].map((m) => toHex(k.mac(enc.encode(m)))).join(",");
  assertEquals(got, want);
  const inc = k.create();
  inc.update(enc.encode("b")).update(enc.encode("b"));
  assertEquals(toHex(inc.digest()), want.split(",")[1]);
  assertEquals(toHex(k.mac(enc.encode("b"), enc.encode("b"))), want.split(",")[1]);
});

Deno.test("sm3Kdf concatenates SM3(Z || counter) blocks and truncates", () => {
  const z = enc.encode("shared secret");
  const out = sm3Kdf(z, 70);
  const ct = (n: number) => new Uint8Array([0, 0, 0, n]);
  const join = (...a: Uint8Array[]) => {
    const r = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of a) (r.set(x, o), o += x.length);
    return r;
  };
  const want = join(sm3(join(z, ct(1))), sm3(join(z, ct(2))), sm3(join(z, ct(3)))).subarray(0, 70);
  assertEquals(toHex(out), toHex(want));
  assertEquals(sm3Kdf(z, 0).length, 0);
});

Deno.test("sm3 (TypeScript) matches native SM3 for every length 0..300, chunked updates and long inputs", () => {
  for (let n = 0; n <= 300; n++) {
    const d = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    const want = toHex(sm3Native(d));
    assertEquals(toHex(sm3(d)), want, `length ${n}`);
    const h = createSm3();
    for (let off = 0; off < n; off += 1 + (off % 13)) h.update(d.subarray(off, Math.min(n, off + 1 + (off % 13))));
    assertEquals(toHex(h.digest()), want, `chunked length ${n}`);
  }
  for (const n of [4095, 4096, 100_000]) {
    const d = new Uint8Array(n).map((_, i) => i & 0xff);
    assertEquals(toHex(createSm3().update(d).digest()), toHex(sm3Native(d)));
    assertEquals(toHex(sm3(d)), toHex(sm3Native(d)));
  }
});

Deno.test("HMAC-SM3 over several parts straddling block boundaries matches RFC 2104 over native SM3", () => {
  const concat = (...a: Uint8Array[]) => {
    const r = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of a) (r.set(x, o), o += x.length);
    return r;
  };
  const rfc2104 = (key: Uint8Array, msg: Uint8Array) => {
    const k = new Uint8Array(64);
    k.set(key.length > 64 ? sm3Native(key) : key);
    const ipad = k.map((b) => b ^ 0x36);
    const opad = k.map((b) => b ^ 0x5c);
    return sm3Native(concat(opad, sm3Native(concat(ipad, msg))));
  };
  for (const keyLen of [1, 32, 64, 100]) {
    const key = new Uint8Array(keyLen).map((_, i) => (i * 13 + keyLen) & 0xff);
    const k = hmacSm3Key(key);
    for (const sizes of [[], [0], [63], [64], [65], [1, 63], [30, 40, 0, 70], [55, 1], [56], [64, 64, 1], [200]]) {
      const parts = sizes.map((n, j) => new Uint8Array(n).map((_, i) => (i + 31 * j + n) & 0xff));
      const want = toHex(rfc2104(key, concat(...parts)));
      assertEquals(toHex(k.mac(...parts)), want, `key ${keyLen}, parts ${sizes}`);
      const inc = k.create();
      for (const p of parts) inc.update(p);
      assertEquals(toHex(inc.digest()), want, `incremental, key ${keyLen}, parts ${sizes}`);
    }
  }
});

Deno.test("peekDigest gives the digest so far and leaves the computation open (SM3, SHA-256, both HMACs)", () => {
  const parts = [seededBytes(5, 1), seededBytes(64, 2), seededBytes(130, 3)];
  const makers: [string, () => IncrementalHash, (d: Uint8Array) => Uint8Array][] = [
    ["sm3", () => createSm3(), (d) => sm3(d)],
    ["sha256", () => SHA256.create(), (d) => SHA256.digest(d)],
    ["hmac-sm3", () => hmacSm3Key(KEY).create(), (d) => hmacSm3(KEY, d)],
    ["hmac-sha256", () => new HmacKey(SHA256, KEY).create(), (d) => hmac(SHA256, KEY, d)],
  ];
  for (const [name, make, oneShot] of makers) {
    const h = make();
    let seen = new Uint8Array(0);
    for (const p of parts) {
      h.update(p);
      const next = new Uint8Array(seen.length + p.length);
      next.set(seen);
      next.set(p, seen.length);
      seen = next;
      assertEquals(toHex(h.peekDigest()), toHex(oneShot(seen)), `${name} after ${seen.length} bytes`);
    }
    assertEquals(toHex(h.digest()), toHex(oneShot(seen)), `${name} digest after peeks`);
  }
});

const KEY = seededBytes(20, 9);

function seededBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 131 + i * 31) & 0xff;
  return b;
}
