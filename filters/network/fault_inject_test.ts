import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import type { NetConnection, NetworkFilterCallbacks, NetworkFilterContext } from "../../lib/api/network.ts";
import { StatsStore } from "../../lib/observe/stats.ts";
import { createNetworkFaultFactory, parseNetworkFaultConfig } from "./fault_inject.ts";

function fakeCallbacks() {
  const events: string[] = [];
  const connection = {
    close: (o?: { reason?: string }) => events.push(`close ${o?.reason}`),
  } as unknown as NetConnection;
  const cb: NetworkFilterCallbacks = { connection, continueReading: () => events.push("continue") };
  return { cb, events };
}

Deno.test("network fault: a drawn abort closes; a drawn delay stops until the timer continues reading", async () => {
  const stats = new StatsStore();
  const ctx = { stats } as unknown as NetworkFilterContext;
  const cfg = parseNetworkFaultConfig({ delay_percent: 50, delay: "0.01s", abort_percent: 10 }, "f");
  // Draws in order: abort (0.05 < 0.10: abort).
  let draws = [0.05];
  const random = () => draws.shift()!;
  const a = fakeCallbacks();
  const fa = createNetworkFaultFactory(cfg, ctx, random)(a.cb);
  assertEquals(fa.onData(new Uint8Array(1), false), "stop");
  assertEquals(a.events, ["close fault_inject_abort"]);
  // Abort missed (0.5), delay hit (0.2 < 0.5); a chunk while delayed draws nothing; then delay missed (0.9, 0.9).
  draws = [0.5, 0.2];
  const d = fakeCallbacks();
  const fd = createNetworkFaultFactory(cfg, ctx, random)(d.cb);
  assertEquals(fd.onData(new Uint8Array(1), false), "stop");
  assertEquals(fd.onData(new Uint8Array(1), false), "stop");
  assertEquals(draws.length, 0);
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(d.events, ["continue"]);
  draws = [0.9, 0.9];
  assertEquals(fd.onData(new Uint8Array(1), false), "continue");
  assertEquals(stats.counter("fault_inject.aborts_injected").value, 1);
  assertEquals(stats.counter("fault_inject.delays_injected").value, 1);
});

Deno.test("parseNetworkFaultConfig validates percentages and the delay", () => {
  assertEquals(parseNetworkFaultConfig({ abort_percent: 100, stat_prefix: "x" }, "f"), {
    delayFraction: 0,
    delayMs: 0,
    abortFraction: 1,
    statPrefix: "x",
  });
  const e = (raw: unknown) => assertThrows(() => parseNetworkFaultConfig(raw, "f"), ConfigError).message;
  assertEquals(e({ abort_percent: -1 }), "config: f.abort_percent: -1 is below the minimum 0");
  assertEquals(e({ delay_percent: 10 }), "config: f.delay: is required when delay_percent is set");
  assertEquals(e({ delay: "x" }).startsWith("config: f.delay:"), true);
});
