import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { tls13Nonce } from "./sm4_nonce.ts";
import { hex, toHex } from "../../tests/helpers/sm4.ts";

const IV = hex("000102030405060708090a0b");

/** The nonce as a 96-bit integer: iv XOR seq, computed with bigint arithmetic rather than bytes. */
function reference(iv: Uint8Array, seq: bigint): string {
  return (BigInt("0x" + toHex(iv)) ^ seq).toString(16).padStart(iv.length * 2, "0");
}

Deno.test("tls13Nonce XORs the big-endian sequence number into the last 8 bytes", () => {
  assertEquals(toHex(tls13Nonce(IV, 0)), "000102030405060708090a0b");
  assertEquals(toHex(tls13Nonce(IV, 1n)), "000102030405060708090a0a");
  assertEquals(toHex(tls13Nonce(IV, 0x0102030405n)), "00010203040506060a0a0e0e");
  assertEquals(toHex(tls13Nonce(IV, 0x0102030405)), "00010203040506060a0a0e0e");
  assertEquals(toHex(tls13Nonce(IV, (1n << 64n) - 1n)), "00010203fbfaf9f8f7f6f5f4");
  assertEquals(toHex(tls13Nonce(IV, Number.MAX_SAFE_INTEGER)), "00010203041af9f8f7f6f5f4");
  for (const seq of [0n, 1n, 255n, 256n, 0xffffffffn, 0x100000000n, 0x123456789abcdef0n, (1n << 64n) - 1n]) {
    assertEquals(toHex(tls13Nonce(IV, seq)), reference(IV, seq), `seq ${seq}`);
    if (seq <= BigInt(Number.MAX_SAFE_INTEGER)) assertEquals(toHex(tls13Nonce(IV, Number(seq))), reference(IV, seq));
  }
});

Deno.test("tls13Nonce writes into a given output and leaves the IV alone", () => {
  const out = new Uint8Array(12);
  assertEquals(tls13Nonce(IV, 258, out), out);
  assertEquals(toHex(out), "000102030405060708090b09");
  assertEquals(toHex(IV), "000102030405060708090a0b");
});

Deno.test("tls13Nonce rejects out-of-range sequence numbers and short IVs", () => {
  for (const s of [-1, 1.5, 2 ** 53, NaN]) assertThrows(() => tls13Nonce(IV, s), RangeError);
  for (const s of [-1n, 1n << 64n]) assertThrows(() => tls13Nonce(IV, s), /tls13 nonce: sequence number/);
  assertThrows(() => tls13Nonce(new Uint8Array(7), 0), /tls13 nonce: iv must be at least 8 bytes/);
  assertThrows(() => tls13Nonce(IV, 0, new Uint8Array(8)), /tls13 nonce: output must be 12 bytes/);
});
