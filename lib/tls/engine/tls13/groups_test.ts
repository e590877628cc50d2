/** Key-share groups: both sides derive the same secret; invalid shares are illegal_parameter. */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Tls13Fatal } from "./_codec.ts";
import { TLS13_GROUPS } from "./groups.ts";

for (const g of Object.values(TLS13_GROUPS)) {
  Deno.test(`TLS13_GROUPS.${g.name} agrees on a shared secret and rejects bad shares`, () => {
    const a = g.generate();
    const b = g.generate();
    const ab = a.deriveShared(b.publicKey);
    assertEquals(ab, b.deriveShared(a.publicKey));
    assertEquals(ab.length, 32);
    assertEquals(a.publicKey.length, g.name === "x25519" ? 32 : 65);
    const alert = (peer: Uint8Array) => {
      try {
        a.deriveShared(peer);
        return "none";
      } catch (e) {
        return e instanceof Tls13Fatal ? e.alert : "other";
      }
    };
    assertEquals(alert(b.publicKey.subarray(1)), "illegal_parameter"); // wrong length
    const offCurve = b.publicKey.slice();
    offCurve[offCurve.length - 1]! ^= 1; // y (or u) changed: off the curve, or for x25519 a different point
    if (g.name !== "x25519") assertEquals(alert(offCurve), "illegal_parameter");
    if (g.name === "x25519") assertEquals(alert(new Uint8Array(32)), "illegal_parameter"); // small order
  });
}
