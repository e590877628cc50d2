/**
 * HMAC-SHA256 through `HmacKey(SHA256)` (the TypeScript core) against node:crypto's createHmac, over key and
 * message lengths around the block boundaries, in one part and split in parts.
 */
import { createHmac } from "node:crypto";
import { assertEquals } from "../../tests/assert.ts";
import { HmacKey, SHA256 } from "./hmac.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("HmacKey(SHA256) equals node:crypto's HMAC-SHA256 for keys and messages of every length around 0..200", () => {
  const keyLengths = [0, 1, 16, 31, 32, 33, 55, 56, 63, 64, 65, 80, 100, 128, 129, 200];
  for (const kl of keyLengths) {
    const key = crypto.getRandomValues(new Uint8Array(kl));
    const h = new HmacKey(SHA256, key);
    for (let ml = 0; ml <= 200; ml++) {
      const msg = crypto.getRandomValues(new Uint8Array(ml));
      const want = createHmac("sha256", key).update(msg).digest("hex");
      assertEquals(hex(h.mac(msg)), want, `key ${kl}, message ${ml}`);
      // The same message in three parts (straddling blocks), and into a buffer at an offset.
      const a = Math.floor(ml / 3), b = Math.floor((2 * ml) / 3);
      assertEquals(hex(h.mac(msg.subarray(0, a), msg.subarray(a, b), msg.subarray(b))), want, `parts ${kl}/${ml}`);
      const out = new Uint8Array(40);
      h.macInto(out, 5, msg);
      assertEquals(hex(out.subarray(5, 37)), want, `macInto ${kl}/${ml}`);
    }
    // A view with an offset into a larger buffer, and the incremental form.
    const big = crypto.getRandomValues(new Uint8Array(300));
    const view = big.subarray(37, 37 + 150);
    assertEquals(hex(h.mac(view)), createHmac("sha256", key).update(view).digest("hex"), `key ${kl}, view`);
    assertEquals(
      hex(h.create().update(view.subarray(0, 70)).update(view.subarray(70)).digest()),
      createHmac("sha256", key).update(view).digest("hex"),
      `key ${kl}, incremental`,
    );
  }
});

Deno.test("HmacKey(SHA256) matches RFC 4231 test case 2", () => {
  const h = new HmacKey(SHA256, new TextEncoder().encode("Jefe"));
  assertEquals(
    hex(h.mac(new TextEncoder().encode("what do ya want for nothing?"))),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});
