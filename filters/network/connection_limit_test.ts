import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import type { NetConnection, NetworkFilterCallbacks, NetworkFilterContext } from "../../lib/api/network.ts";
import { StatsStore } from "../../lib/observe/stats.ts";
import { createConnectionLimitFactory, parseConnectionLimitConfig } from "./connection_limit.ts";

function fakeCallbacks() {
  const events: string[] = [];
  const connection = {
    close: (o?: { reason?: string }) => events.push(`close ${o?.reason}`),
    readDisable: (d: boolean) => events.push(`readDisable ${d}`),
  } as unknown as NetConnection;
  const cb: NetworkFilterCallbacks = { connection, continueReading: () => {} };
  return { cb, events };
}

Deno.test("connection_limit counts open connections, closes the extra ones and frees slots on close", () => {
  const stats = new StatsStore();
  const cfg = parseConnectionLimitConfig({ stat_prefix: "c", max_connections: 2 }, "f");
  const create = createConnectionLimitFactory(cfg, { stats } as unknown as NetworkFilterContext);
  const [a, b, c] = [fakeCallbacks(), fakeCallbacks(), fakeCallbacks()];
  const fa = create(a.cb), fb = create(b.cb), fc = create(c.cb);
  assertEquals([fa.onNewConnection!(), fb.onNewConnection!(), fc.onNewConnection!()], ["continue", "continue", "stop"]);
  assertEquals(c.events, ["close connection_limit"]);
  assertEquals(fc.onData(new Uint8Array(1), false), "stop");
  assertEquals(stats.gauge("connection_limit.c.active_connections").value, 2);
  assertEquals(stats.counter("connection_limit.c.limited_connections").value, 1);
  fc.onClose!("closed");
  fa.onClose!("closed");
  assertEquals(stats.gauge("connection_limit.c.active_connections").value, 1);
  const d = fakeCallbacks();
  assertEquals(create(d.cb).onNewConnection!(), "continue");
});

Deno.test("connection_limit with delay stops reading and closes after the delay; runtime_enabled false passes all", async () => {
  const stats = new StatsStore();
  const ctx = { stats } as unknown as NetworkFilterContext;
  const create = createConnectionLimitFactory(
    parseConnectionLimitConfig({ stat_prefix: "d", max_connections: 1, delay: "0.01s" }, "f"),
    ctx,
  );
  create(fakeCallbacks().cb).onNewConnection!();
  const x = fakeCallbacks();
  assertEquals(create(x.cb).onNewConnection!(), "stop");
  assertEquals(x.events, ["readDisable true"]);
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(x.events, ["readDisable true", "close connection_limit"]);
  const off = createConnectionLimitFactory(
    parseConnectionLimitConfig({
      stat_prefix: "o",
      max_connections: 1,
      runtime_enabled: { default_value: false, runtime_key: "k" },
    }, "f"),
    ctx,
  );
  assertEquals([off(fakeCallbacks().cb).onNewConnection!(), off(fakeCallbacks().cb).onNewConnection!()], [
    "continue",
    "continue",
  ]);
});

Deno.test("parseConnectionLimitConfig names bad fields", () => {
  const e = (raw: unknown) => assertThrows(() => parseConnectionLimitConfig(raw, "f"), ConfigError).message;
  assertEquals(e({ max_connections: 1 }), "config: f.stat_prefix: is required");
  assertEquals(e({ stat_prefix: "s", max_connections: 0 }), "config: f.max_connections: 0 is below the minimum 1");
  assertEquals(e({ stat_prefix: "s", max_connections: 1, bogus: true }), "config: f.bogus: unknown field");
});
