import { assertEquals } from "../../tests/assert.ts";
import { TokenBucket } from "./local_ratelimit.ts";

Deno.test("TokenBucket starts full, empties, and refills in whole steps up to max_tokens", () => {
  let now = 1000;
  const b = new TokenBucket({ maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 1000 }, () => now);
  assertEquals([b.consume(), b.consume(), b.consume(), b.consume()], [true, true, true, false]);
  assertEquals(b.remaining, 0);
  now += 999;
  assertEquals(b.consume(), false);
  assertEquals(b.resetSeconds, 1);
  now += 1;
  assertEquals(b.remaining, 2);
  now += 10_000;
  // Capped at max_tokens however long the bucket was idle.
  assertEquals(b.remaining, 3);
});

Deno.test("TokenBucket resetSeconds counts to the next fill", () => {
  let now = 0;
  const b = new TokenBucket({ maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 60_000 }, () => now);
  b.consume();
  now = 15_000;
  assertEquals(b.resetSeconds, 45);
  now = 59_500;
  assertEquals(b.resetSeconds, 1);
  now = 60_000;
  assertEquals(b.remaining, 1);
});
