/** The record layer alone: protection, padding, limits and failures, with fixed keys. */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { tls13Nonce } from "../../../crypto/mod.ts";
import { ContentType, Tls13Fatal } from "./_codec.ts";
import { MAX_CIPHERTEXT, MAX_PLAINTEXT, RecordReader, RecordWriter } from "./record.ts";
import { TLS13_CIPHER_SUITES } from "./suites.ts";

const key = new Uint8Array(16).fill(1);
const iv = new Uint8Array(12).fill(2);

function setup(suite: "TLS_SM4_GCM_SM3" | "TLS_AES_128_GCM_SHA256" = "TLS_SM4_GCM_SM3") {
  const s = TLS13_CIPHER_SUITES[suite];
  const got: [number, Uint8Array][] = [];
  const reader = new RecordReader((type, fragment) => got.push([type, fragment.slice()]));
  reader.setKeys(s.createAead(key), iv);
  const writer = new RecordWriter();
  writer.setKeys(s.createAead(key), iv);
  return { s, reader, writer, got };
}

/** A protected record with `inner` as TLSInnerPlaintext (content || type || zeros), sealed at `seq`. */
function rawRecord(inner: Uint8Array, seq = 0): Uint8Array {
  const aead = TLS13_CIPHER_SUITES.TLS_SM4_GCM_SM3.createAead(key);
  const len = inner.length + 16;
  const out = new Uint8Array(5 + len);
  out.set([23, 3, 3, len >> 8, len & 255]);
  aead.sealInto(tls13Nonce(iv, seq), inner, out.subarray(0, 5), out.subarray(5));
  return out;
}

function alertOf(f: () => void): string {
  try {
    f();
  } catch (e) {
    if (e instanceof Tls13Fatal) return e.alert;
    throw e;
  }
  return "none";
}

for (const suite of ["TLS_SM4_GCM_SM3", "TLS_AES_128_GCM_SHA256"] as const) {
  Deno.test(`RecordWriter and RecordReader round-trip ${suite} records across arbitrary splits`, () => {
    const { reader, writer, got } = setup(suite);
    const data = crypto.getRandomValues(new Uint8Array(40000));
    const wire = writer.seal(ContentType.applicationData, data);
    assertEquals(wire.length, 40000 + 3 * (5 + 17));
    // The plaintext does not appear on the wire.
    assert(!wire.subarray(5, 21).every((b, i) => b === data[i]));
    for (let i = 0; i < wire.length; i += 777) reader.feed(wire.subarray(i, i + 777));
    assertEquals(got.map(([t]) => t), [23, 23, 23]);
    assertEquals(got.map(([, f]) => f.length), [MAX_PLAINTEXT, MAX_PLAINTEXT, 40000 - 2 * MAX_PLAINTEXT]);
    assertEquals(got.flatMap(([, f]) => [...f]).length, 40000);
  });
}

Deno.test("RecordReader strips padding and reads the inner content type", () => {
  const { reader, got } = setup();
  const inner = new Uint8Array(100);
  inner.set([1, 2, 3, ContentType.handshake]); // content, type, then 96 zero bytes of padding
  reader.feed(rawRecord(inner));
  assertEquals(got, [[ContentType.handshake, new Uint8Array([1, 2, 3])]]);
});

Deno.test("RecordReader rejects a record with only padding as unexpected_message", () => {
  const { reader } = setup();
  assertEquals(alertOf(() => reader.feed(rawRecord(new Uint8Array(20)))), "unexpected_message");
});

Deno.test("RecordReader rejects a tampered or replayed record with bad_record_mac", () => {
  const a = setup();
  const rec = a.writer.seal(ContentType.applicationData, new Uint8Array(50).fill(9));
  rec[20]! ^= 1;
  assertEquals(alertOf(() => a.reader.feed(rec)), "bad_record_mac");
  const b = setup();
  const ok = b.writer.seal(ContentType.applicationData, new Uint8Array(50));
  b.reader.feed(ok);
  assertEquals(alertOf(() => b.reader.feed(ok)), "bad_record_mac"); // sequence number moved on
});

Deno.test("RecordReader enforces the 2^14 limits with record_overflow", () => {
  const { reader } = setup();
  // Header announcing a ciphertext longer than 2^14 + 256.
  assertEquals(
    alertOf(() => reader.feed(new Uint8Array([23, 3, 3, (MAX_CIPHERTEXT + 1) >> 8, (MAX_CIPHERTEXT + 1) & 255]))),
    "record_overflow",
  );
  // A protected record whose inner plaintext is 2^14 + 1 bytes.
  const big = new Uint8Array(MAX_PLAINTEXT + 2);
  big[MAX_PLAINTEXT + 1] = ContentType.applicationData;
  assertEquals(alertOf(() => setup().reader.feed(rawRecord(big))), "record_overflow");
  // An unprotected record of 2^14 + 1 bytes.
  const plain = new RecordReader(() => {});
  const rec = new Uint8Array(5 + MAX_PLAINTEXT + 1);
  rec.set([22, 3, 3, (MAX_PLAINTEXT + 1) >> 8, (MAX_PLAINTEXT + 1) & 255]);
  assertEquals(alertOf(() => plain.feed(rec)), "record_overflow");
});

Deno.test("RecordReader rejects unknown content types and non-TLS versions", () => {
  assertEquals(
    alertOf(() => new RecordReader(() => {}).feed(new TextEncoder().encode("GET / HTTP/1.1\r\n"))),
    "unexpected_message",
  );
  assertEquals(alertOf(() => new RecordReader(() => {}).feed(new Uint8Array([22, 2, 0, 0, 1, 1]))), "protocol_version");
});

Deno.test("RecordReader waits for the rest of a truncated record", () => {
  const { reader, writer, got } = setup();
  const rec = writer.seal(ContentType.applicationData, new Uint8Array(10));
  reader.feed(rec.subarray(0, 3));
  reader.feed(rec.subarray(3, rec.length - 1));
  assertEquals(got.length, 0);
  assertEquals(reader.buffered, rec.length - 1);
  reader.feed(rec.subarray(rec.length - 1));
  assertEquals(got.length, 1);
});

Deno.test("RecordReader grows its decryption buffer as records grow and keeps earlier sizes working", () => {
  const { reader, writer, got } = setup();
  const sizes = [1, 300, 16384, 40, 5000, 16384, 0];
  const sent = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
  for (const data of sent) reader.feed(writer.seal(ContentType.applicationData, data));
  assertEquals(got.map(([type]) => type), sizes.map(() => ContentType.applicationData));
  assertEquals(got.map(([, fragment]) => fragment), sent);
});
