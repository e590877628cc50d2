import { assert, assertEquals } from "../../tests/assert.ts";
import { pendingTimers, RESOLUTION_MS, schedule, wheelFootprint } from "./timer_wheel.ts";

Deno.test("schedule fires callbacks in deadline order, not before their time", async () => {
  const fired: [string, number][] = [];
  const t0 = performance.now();
  schedule(60, () => fired.push(["c", performance.now() - t0]));
  schedule(20, () => fired.push(["a", performance.now() - t0]));
  schedule(40, () => fired.push(["b", performance.now() - t0]));
  await new Promise((r) => setTimeout(r, 120));
  assertEquals(fired.map((f) => f[0]), ["a", "b", "c"]);
  for (const [name, at] of fired) {
    const want = name === "a" ? 20 : name === "b" ? 40 : 60;
    assert(at >= want - 1, `${name} fired early at ${at} ms`);
  }
});

Deno.test("cancel prevents the callback and releases the entry", async () => {
  const before = pendingTimers();
  let fired = 0;
  const ts = Array.from({ length: 1000 }, (_, i) => schedule(30 + (i % 50), () => fired++));
  assertEquals(pendingTimers(), before + 1000);
  for (const t of ts) t.cancel();
  assertEquals(pendingTimers(), before);
  const kept = schedule(10, () => fired += 100);
  assert(kept.pending);
  await new Promise((r) => setTimeout(r, 100 + RESOLUTION_MS));
  assertEquals(fired, 100);
  assert(!kept.pending);
});

Deno.test("a timer scheduled from a callback for an earlier time still fires", async () => {
  const order: string[] = [];
  schedule(50, () => order.push("late"));
  schedule(5, () => {
    order.push("first");
    schedule(5, () => order.push("nested"));
  });
  await new Promise((r) => setTimeout(r, 90));
  assertEquals(order, ["first", "nested", "late"]);
});

Deno.test("cancelled long timers leave no buckets behind (a connection's idle timeout, cancelled at close)", async () => {
  const before = wheelFootprint();
  // An hour-long timeout armed and cancelled in 300 different ticks, as 300 short connections would.
  for (let i = 0; i < 300; i++) {
    schedule(3_600_000 + i * RESOLUTION_MS, () => {
      throw new Error("cancelled timer fired");
    }).cancel();
  }
  const after = wheelFootprint();
  assertEquals(after.buckets, before.buckets);
  assert(
    after.heap <= Math.max(64, 2 * after.buckets) + 1,
    `heap kept ${after.heap} ticks for ${after.buckets} buckets`,
  );
  // The wheel still works afterwards, including for a tick whose bucket was dropped and made again.
  let fired = false;
  const t = schedule(5, () => fired = true);
  await new Promise((r) => setTimeout(r, 40));
  assert(fired && !t.pending);
});
