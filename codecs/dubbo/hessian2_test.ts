import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { CodecError } from "../../lib/api/errors.ts";
import { encodeHessian2String, Hessian2Reader } from "./hessian2.ts";

const b = (...xs: number[]) => new Uint8Array(xs);

Deno.test("Hessian2Reader readString reads short, medium and chunked strings", () => {
  assertEquals(new Hessian2Reader(b(0x03, 0x61, 0x62, 0x63)).readString(), "abc");
  const medium = encodeHessian2String("x".repeat(300));
  assertEquals(medium[0], 0x31);
  assertEquals(new Hessian2Reader(medium).readString(), "x".repeat(300));
  const long = "é".repeat(40000);
  const enc = encodeHessian2String(long);
  assertEquals(enc[0], 0x52);
  assertEquals(new Hessian2Reader(enc).readString(), long);
  // UTF-16 units: a 2-byte character counts one.
  assertEquals(new Hessian2Reader(encodeHessian2String("héllo")).readString(), "héllo");
});

Deno.test("Hessian2Reader skipValue steps over every value type", () => {
  const values = [
    b(0x4e), // null
    b(0x54), // true
    b(0x90), // int 0
    b(0xc8, 0x01), // int 1
    b(0xd4, 0x00, 0x01), // int
    b(0x49, 0, 0, 1, 0), // int
    b(0x4c, 0, 0, 0, 0, 0, 0, 0, 1), // long
    b(0x59, 0, 0, 0, 1), // long as int
    b(0x38, 0, 1), // three-octet long
    b(0x44, 0, 0, 0, 0, 0, 0, 0, 0), // double
    b(0x5d, 1), // double byte
    b(0x5f, 0, 0, 0, 0), // double float
    b(0x4a, 0, 0, 0, 0, 0, 0, 0, 0), // date
    b(0x23, 1, 2, 3), // short binary
    b(0x41, 0, 1, 9, 0x42, 0, 2, 1, 2), // chunked binary
    b(0x48, 0x01, 0x61, 0x91, 0x5a), // untyped map {a: 1}
    b(0x4d, 0x01, 0x74, 0x01, 0x61, 0x4e, 0x5a), // typed map
    b(0x7a, 0x91, 0x92), // fixed untyped list of 2
    b(0x72, 0x01, 0x74, 0x91, 0x92), // fixed typed list of 2
    b(0x57, 0x91, 0x5a), // variable untyped list
    b(0x55, 0x01, 0x74, 0x91, 0x5a), // variable typed list
    b(0x58, 0x92, 0x91, 0x91), // fixed untyped list, int length
    b(0x43, 0x01, 0x50, 0x92, 0x01, 0x78, 0x01, 0x79, 0x60, 0x91, 0x02, 0x68, 0x69), // class def + object
    b(0x43, 0x01, 0x50, 0x91, 0x01, 0x78, 0x4f, 0x90, 0x4e), // class def + 'O' object
    b(0x51, 0x90), // reference
  ];
  for (const v of values) {
    const buf = new Uint8Array(v.length + 1);
    buf.set(v);
    buf[v.length] = 0x4e;
    const r = new Hessian2Reader(buf);
    r.skipValue();
    assertEquals(r.offset, v.length, `value ${Array.from(v).map((x) => x.toString(16)).join(" ")}`);
  }
});

Deno.test("Hessian2Reader rejects truncated, unknown and too deeply nested values", () => {
  for (const v of [b(0x49, 0, 0), b(0x05, 0x61), b(0x48, 0x01, 0x61), b(0x40), b(0x60, 0x90), b(0x41, 0, 1, 9, 0x90)]) {
    throws(() => new Hessian2Reader(v).skipValue(), CodecError);
  }
  const deep = new Uint8Array(200).fill(0x79); // nested fixed lists of one
  throws(() => new Hessian2Reader(deep).skipValue(), /nested too deeply/);
});

Deno.test("Hessian2Reader readStringMap keeps string entries and skips the rest", () => {
  const m = b(0x48, 0x01, 0x61, 0x01, 0x62, 0x01, 0x6e, 0x91, 0x91, 0x01, 0x63, 0x01, 0x6b, 0x01, 0x76, 0x5a);
  assertEquals(new Hessian2Reader(m).readStringMap(), [["a", "b"], ["k", "v"]]);
  assertEquals(new Hessian2Reader(b(0x4e)).readStringMap(), []);
});
