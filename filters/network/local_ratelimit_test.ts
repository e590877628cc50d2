import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { parseNetworkLocalRateLimitConfig, TokenBucket } from "./local_ratelimit.ts";

Deno.test("TokenBucket starts full, refills tokens_per_fill per whole fill interval, capped at max_tokens", () => {
  let now = 1000;
  const b = new TokenBucket({ maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 100 }, () => now);
  assertEquals([b.tryConsume(), b.tryConsume(), b.tryConsume(), b.tryConsume()], [true, true, true, false]);
  now += 99;
  assertEquals(b.tryConsume(), false, "no refill before a whole interval");
  now += 1;
  assertEquals([b.tryConsume(), b.tryConsume(), b.tryConsume()], [true, true, false]);
  now += 10_000;
  assertEquals([b.tryConsume(), b.tryConsume(), b.tryConsume(), b.tryConsume()], [true, true, true, false]);
});

Deno.test("parseNetworkLocalRateLimitConfig reads Envoy's LocalRateLimit and names bad fields", () => {
  const cfg = parseNetworkLocalRateLimitConfig({
    stat_prefix: "s",
    token_bucket: { max_tokens: 5, fill_interval: "1s" },
    runtime_enabled: { default_value: false, runtime_key: "k" },
  }, "f");
  assertEquals(cfg, {
    statPrefix: "s",
    tokenBucket: { maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 1000 },
    enabled: false,
  });
  const e = (raw: unknown) => assertThrows(() => parseNetworkLocalRateLimitConfig(raw, "f"), ConfigError).message;
  assertEquals(e({ stat_prefix: "s" }), "config: f.token_bucket: is required");
  assertEquals(
    e({ stat_prefix: "s", token_bucket: { max_tokens: 0, fill_interval: "1s" } }).includes("f.token_bucket.max_tokens"),
    true,
  );
  assertEquals(
    e({ stat_prefix: "s", token_bucket: { max_tokens: 1, fill_interval: "1s" }, share_key: "x" }).includes(
      "f.share_key",
    ),
    true,
  );
});
