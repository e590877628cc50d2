/** HmacSha256 against node:crypto's createHmac, over key and message lengths around the block boundaries. */
import { createHmac } from "node:crypto";
import { assertEquals } from "../../tests/assert.ts";
import { HmacSha256 } from "./sha256.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("HmacSha256 equals node:crypto's HMAC-SHA256 for keys and messages of every length around 0..200", () => {
  const keyLengths = [0, 1, 16, 31, 32, 33, 55, 56, 63, 64, 65, 80, 100, 128, 129, 200];
  for (const kl of keyLengths) {
    const key = crypto.getRandomValues(new Uint8Array(kl));
    const h = new HmacSha256(key);
    for (let ml = 0; ml <= 200; ml++) {
      const msg = crypto.getRandomValues(new Uint8Array(ml));
      assertEquals(hex(h.mac(msg)), createHmac("sha256", key).update(msg).digest("hex"), `key ${kl}, message ${ml}`);
    }
    // A view with an offset into a larger buffer.
    const big = crypto.getRandomValues(new Uint8Array(300));
    const view = big.subarray(37, 37 + 150);
    assertEquals(hex(h.mac(view)), createHmac("sha256", key).update(view).digest("hex"), `key ${kl}, view`);
  }
});

Deno.test("HmacSha256 matches RFC 4231 test case 2", () => {
  const h = new HmacSha256(new TextEncoder().encode("Jefe"));
  assertEquals(
    hex(h.mac(new TextEncoder().encode("what do ya want for nothing?"))),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});
