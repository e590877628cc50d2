import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { oracleHmacSm3 } from "./_test_util.ts";
import { Sm4Cbc } from "../../../crypto/mod.ts";
import {
  CbcSm3Protection,
  ContentType,
  GcmProtection,
  MAX_PLAINTEXT,
  type RecordProtection,
  TlcpRecordLayer,
} from "./record.ts";
import { concat, TlcpFatal } from "./_codec.ts";

const key = Uint8Array.from({ length: 16 }, (_, i) => i);
const macKey = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i);
const iv4 = new Uint8Array([1, 2, 3, 4]);

function layers(make: () => RecordProtection): { tx: TlcpRecordLayer; rx: TlcpRecordLayer } {
  const tx = new TlcpRecordLayer(), rx = new TlcpRecordLayer();
  tx.setWriteProtection(make());
  rx.setReadProtection(make());
  return { tx, rx };
}

function fatal(fn: () => unknown, alert: string): void {
  assertThrows(fn, (e: unknown) => e instanceof TlcpFatal && e.alert === alert);
}

const modes: [string, () => RecordProtection][] = [
  ["CBC", () => new CbcSm3Protection(key, macKey)],
  ["GCM", () => new GcmProtection(key, iv4)],
];

for (const [name, make] of modes) {
  Deno.test(`TlcpRecordLayer ${name} round trip at every length class and fragmentation`, () => {
    const { tx, rx } = layers(make);
    for (const n of [1, 15, 16, 17, 31, 32, 33, 255, 256, 1000, MAX_PLAINTEXT, MAX_PLAINTEXT + 1, 40_000]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 13 + n) & 0xff);
      rx.push(tx.seal(ContentType.applicationData, data));
      const got: Uint8Array[] = [];
      for (let r = rx.next(); r; r = rx.next()) got.push(r.payload.slice());
      assertEquals(got.length, Math.ceil(n / MAX_PLAINTEXT));
      assertEquals(new Uint8Array(got.flatMap((g) => [...g])), data);
    }
  });

  Deno.test(`TlcpRecordLayer ${name} tampered record is bad_record_mac`, () => {
    for (const where of [5, 6, 20, -1, -17]) {
      const { tx, rx } = layers(make);
      const rec = tx.seal(ContentType.applicationData, new TextEncoder().encode("hello, tampering"));
      const i = where < 0 ? rec.length + where : where;
      rec[i]! ^= 0x01;
      rx.push(rec);
      fatal(() => rx.next(), "bad_record_mac");
    }
  });

  Deno.test(`TlcpRecordLayer ${name} replayed or reordered record is bad_record_mac`, () => {
    const { tx, rx } = layers(make);
    const a = tx.seal(ContentType.applicationData, new Uint8Array([1]));
    const b = tx.seal(ContentType.applicationData, new Uint8Array([2]));
    rx.push(b);
    fatal(() => rx.next(), "bad_record_mac");
    void a;
  });

  Deno.test(`TlcpRecordLayer ${name} type is authenticated`, () => {
    const { tx, rx } = layers(make);
    const rec = tx.seal(ContentType.applicationData, new Uint8Array([1, 2, 3]));
    rec[0] = ContentType.handshake;
    rx.push(rec);
    fatal(() => rx.next(), "bad_record_mac");
  });

  Deno.test(`TlcpRecordLayer ${name} short bodies are bad_record_mac`, () => {
    for (const n of [0, 1, 16, 23, 47, 63]) {
      const { rx } = layers(make);
      rx.push(new Uint8Array([23, 1, 1, n >> 8, n & 0xff, ...new Uint8Array(n)]));
      fatal(() => rx.next(), "bad_record_mac");
    }
  });
}

Deno.test("CbcSm3Protection record is IV || SM4-CBC(data || HMAC-SM3 || padding) (OpenSSL oracle)", () => {
  const p = new CbcSm3Protection(key, macKey);
  const data = new TextEncoder().encode("known answer");
  const body = p.seal(ContentType.applicationData, 5, data);
  const inner = new Sm4Cbc(key).decrypt(body.subarray(0, 16), body.subarray(16), { padding: "none" });
  const header = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 5, 23, 1, 1, 0, data.length]);
  const mac = oracleHmacSm3(macKey, concat(header, data));
  assertEquals(inner.subarray(0, data.length), data);
  assertEquals(inner.subarray(data.length, data.length + 32), mac);
  const pad = inner[inner.length - 1]!;
  assertEquals(inner.length, data.length + 32 + pad + 1);
  assert(inner.subarray(data.length + 32).every((b) => b === pad));
});

Deno.test("CbcSm3Protection rejects bad padding of every kind with the same alert", () => {
  const cbc = new Sm4Cbc(key);
  const data = new Uint8Array(10);
  const header = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 23, 1, 1, 0, 10]);
  const mac = oracleHmacSm3(macKey, concat(header, data));
  const cases: number[][] = [
    [5, 5, 5, 5, 4, 5], // one wrong padding byte
    [200], // padding longer than the record
    [3, 3, 3, 2], // wrong last-but-one
  ];
  for (const pad of cases) {
    const plain = new Uint8Array([...data, ...mac, ...pad]);
    const padded = new Uint8Array(Math.ceil(plain.length / 16) * 16);
    padded.set(plain);
    // Fill up to the block boundary with the (wrong) padding so only the padding itself is bad.
    padded.fill(pad[pad.length - 1]!, plain.length);
    const iv = new Uint8Array(16);
    const body = new Uint8Array([...iv, ...cbc.encrypt(iv, padded, { padding: "none" })]);
    fatal(() => new CbcSm3Protection(key, macKey).open(ContentType.applicationData, 0, body), "bad_record_mac");
  }
});

Deno.test("GcmProtection nonce is implicit IV || explicit sequence number", () => {
  const p = new GcmProtection(key, iv4);
  const body = p.seal(ContentType.applicationData, 0x0102, new Uint8Array(3));
  assertEquals([...body.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 1, 2]);
  assertEquals(body.length, 8 + 3 + 16);
});

Deno.test("TlcpRecordLayer plaintext limits, types, versions and floods", () => {
  let rx = new TlcpRecordLayer();
  rx.push(new Uint8Array([22, 1, 1, 0x40, 0x01]));
  fatal(() => rx.next(), "record_overflow");

  rx = new TlcpRecordLayer();
  rx.setReadProtection(new GcmProtection(key, iv4));
  rx.push(new Uint8Array([23, 1, 1, 0x48, 0x01]));
  fatal(() => rx.next(), "record_overflow");

  rx = new TlcpRecordLayer();
  rx.push(new Uint8Array([99, 1, 1, 0, 1, 0]));
  fatal(() => rx.next(), "unexpected_message");

  rx = new TlcpRecordLayer();
  rx.push(new Uint8Array([22, 1, 1, 0, 1, 1, 22, 3, 3, 0, 1, 1]));
  assert(rx.next());
  fatal(() => rx.next(), "protocol_version");

  rx = new TlcpRecordLayer();
  rx.push(new Uint8Array([22, 1, 1, 0, 0]));
  fatal(() => rx.next(), "unexpected_message"); // empty handshake record

  const { tx, rx: r2 } = layers(() => new GcmProtection(key, iv4));
  for (let i = 0; i < 40; i++) r2.push(tx.seal(ContentType.applicationData, new Uint8Array(0)));
  fatal(() => {
    for (let i = 0; i < 40; i++) r2.next();
  }, "unexpected_message");

  rx = new TlcpRecordLayer();
  rx.push(new Uint8Array([22, 1, 1, 0, 5, 1, 2]));
  assertEquals(rx.next(), undefined); // truncated: waits for more
  rx.push(new Uint8Array([3, 4, 5]));
  assertEquals([...rx.next()!.payload], [1, 2, 3, 4, 5]);
});

for (const [name, make] of modes) {
  Deno.test(`${name} protection: a bulk key (WebAssembly after its first 16 KiB) interoperates with a fresh key's TypeScript path`, () => {
    const tx = make(), rx = make();
    const data = Uint8Array.from({ length: MAX_PLAINTEXT }, (_, i) => (i * 131 + 7) & 0xff);
    for (let seq = 0; seq < 8; seq++) {
      const len = seq % 2 === 0 ? MAX_PLAINTEXT : 600 + seq * 37;
      const frag = data.subarray(0, len);
      const body = tx.seal(ContentType.applicationData, seq, frag);
      // A fresh protection opens its first records in TypeScript: same bytes as the long-lived one's kernels.
      assertEquals(make().open(ContentType.applicationData, seq, body), frag);
      assertEquals(rx.open(ContentType.applicationData, seq, body), frag);
      const bad = body.slice();
      bad[bad.length - 20]! ^= 1;
      fatal(() => rx.open(ContentType.applicationData, seq, bad), "bad_record_mac");
    }
  });

  Deno.test(`TlcpRecordLayer ${name} seals into a caller's buffer exactly sealedSize bytes`, () => {
    const { tx, rx } = layers(make);
    const data = Uint8Array.from({ length: 3 * MAX_PLAINTEXT + 5 }, (_, i) => i & 0xff);
    const scratch = new Uint8Array(tx.sealedSize(data.length) + 100).fill(0xee);
    const size = tx.sealedSize(data.length);
    const out = tx.seal(ContentType.applicationData, data, scratch);
    assertEquals(out.length, size);
    assert(out.buffer === scratch.buffer);
    assert(scratch.subarray(size).every((b) => b === 0xee));
    rx.push(out);
    const got: Uint8Array[] = [];
    for (let r = rx.next(); r; r = rx.next()) got.push(r.payload.slice());
    assertEquals(concat(...got), data);
  });
}

Deno.test("TlcpRecordLayer pushBorrowed parses whole records in place and keeps a copy of the partial rest", () => {
  for (const [, make] of modes) {
    const { tx, rx } = layers(make);
    const msgs = [new Uint8Array([1, 2, 3]), new Uint8Array(5000).fill(4), new Uint8Array([5, 6])];
    const wire = concat(...msgs.map((m) => tx.seal(ContentType.applicationData, m)));
    const cut = wire.length - 7;
    const read = wire.slice(0, cut); // the transport's read buffer
    rx.pushBorrowed(read);
    assertEquals(rx.next()!.payload, msgs[0]);
    assertEquals(rx.next()!.payload, msgs[1]);
    assertEquals(rx.next(), undefined);
    rx.release();
    read.fill(0); // the transport reuses its buffer: the partial record must have been copied
    rx.pushBorrowed(wire.subarray(cut));
    assertEquals(rx.next()!.payload, msgs[2]);
    rx.release();
    assertEquals(rx.buffered, 0);
  }
});
