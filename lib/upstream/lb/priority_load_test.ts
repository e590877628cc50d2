import type { ClusterInfo, Host } from "../../api/upstream.ts";
import { assert, assertBetween, assertEquals } from "../../../tests/assert.ts";
import type { HostSource, LbHost } from "./_common.ts";
import { createLoadBalancer } from "./mod.ts";
import { choosePriority, computePriorityLoad, type PriorityCounts } from "./priority_load.ts";

/** A priority of 100 hosts with the given percentages healthy and degraded (the rest unhealthy). */
function pct(healthy: number, degraded = 0, excluded = 0): PriorityCounts {
  return { total: 100, healthy, degraded, excluded };
}

function loads(ps: PriorityCounts[], opts = {}): { healthy: number[]; degraded: number[] } {
  const l = computePriorityLoad(ps, opts);
  return { healthy: l.healthyLoad, degraded: l.degradedLoad };
}

Deno.test("computePriorityLoad matches Envoy's two-priority table (P=1 fully healthy)", () => {
  // docs: intro/arch_overview/upstream/load_balancing/priority (overprovisioning factor 1.4).
  const table: [number, number, number][] = [[100, 100, 0], [72, 100, 0], [71, 99, 1], [50, 70, 30], [25, 35, 65], [
    0,
    0,
    100,
  ]];
  for (const [p0, t0, t1] of table) {
    assertEquals(loads([pct(p0), pct(100)]).healthy, [t0, t1], `P0 ${p0}% healthy`);
  }
});

Deno.test("computePriorityLoad normalizes when the total health is below 100, as Envoy's tables", () => {
  // The docs' tables leave panic aside (below 50 % healthy every priority would panic): threshold 0.
  const noPanic = { panicThreshold: 0 };
  const two: [number, number, number, number][] = [
    [100, 100, 100, 0],
    [72, 72, 100, 0],
    [71, 71, 99, 1],
    [50, 50, 70, 30],
    [25, 100, 35, 65],
    [25, 25, 50, 50],
  ];
  for (const [p0, p1, t0, t1] of two) {
    assertEquals(loads([pct(p0), pct(p1)], noPanic).healthy, [t0, t1], `${p0}/${p1}`);
  }
  const three: [number, number, number, number[]][] = [
    [100, 100, 100, [100, 0, 0]],
    [72, 72, 100, [100, 0, 0]],
    [71, 71, 100, [99, 1, 0]],
    [50, 50, 100, [70, 30, 0]],
    [25, 100, 100, [35, 65, 0]],
    [25, 25, 100, [35, 35, 30]],
    // The docs print 36/36/28 (35.7 rounded); Envoy's integer code gives the 2 % remainder to the first healthy
    // priority: 35 + 2 / 35 / 28.
    [25, 25, 20, [37, 35, 28]],
  ];
  for (const [p0, p1, p2, t] of three) {
    assertEquals(loads([pct(p0), pct(p1), pct(p2)], noPanic).healthy, t, `${p0}/${p1}/${p2}`);
  }
});

Deno.test("computePriorityLoad sends to degraded hosts only what healthy hosts cannot take (Envoy's table)", () => {
  // docs: load_balancing/degraded — P=0 healthy/degraded/unhealthy → traffic to healthy, to degraded.
  const table: [number, number, number, number][] = [
    [100, 0, 100, 0],
    [71, 0, 100, 0],
    [71, 29, 99, 1],
    [25, 65, 35, 65],
    [5, 0, 100, 0],
  ];
  for (const [h, d, th, td] of table) {
    const l = loads([pct(h, d)]);
    assertEquals([l.healthy[0], l.degraded[0]], [th, td], `${h}/${d}`);
  }
  // Envoy's source comment: health 10/20/10 %, degraded 20/10/0 % → 16/28/14 healthy, 28/14/0 degraded.
  const l = computePriorityLoad([
    { total: 140, healthy: 10, degraded: 20, excluded: 0 },
    { total: 140, healthy: 20, degraded: 10, excluded: 0 },
    { total: 140, healthy: 10, degraded: 0, excluded: 0 },
  ], { panicThreshold: 0 });
  assertEquals(l.health, [10, 20, 10]);
  assertEquals(l.healthyLoad, [16, 28, 14]);
  assertEquals(l.degradedLoad, [28, 14, 0]);
});

Deno.test("computePriorityLoad panics per priority below the threshold, and by host counts in total panic", () => {
  // P0 40 % healthy (< 50 %): in panic, with its 56 % of the load; P1 healthy.
  let l = computePriorityLoad([pct(40), pct(100)]);
  assertEquals(l.healthyLoad, [56, 44]);
  assertEquals(l.panic, [true, false]);
  // Degraded hosts count towards the threshold.
  assertEquals(computePriorityLoad([pct(30, 30), pct(100)]).panic, [false, false]);
  // Every priority in panic: split by total host counts (30 and 10 hosts → 75/25).
  l = computePriorityLoad([{ total: 30, healthy: 3, degraded: 0, excluded: 0 }, {
    total: 10,
    healthy: 1,
    degraded: 0,
    excluded: 0,
  }]);
  assertEquals(l.panic, [true, true]);
  assertEquals(l.healthyLoad, [75, 25]);
  // Nothing healthy anywhere: total panic too.
  l = computePriorityLoad([pct(0), pct(0)]);
  assertEquals([l.panic, l.healthyLoad], [[true, true], [50, 50]]);
  // Threshold 0 disables panic: P0 gets the load (and finds no host).
  l = computePriorityLoad([pct(0), pct(0)], { panicThreshold: 0 });
  assertEquals([l.panic, l.healthyLoad], [[false, false], [100, 0]]);
  // Threshold 100: anything short of fully healthy panics.
  assertEquals(computePriorityLoad([pct(99), pct(100)], { panicThreshold: 100 }).panic, [true, false]);
  // No hosts at all.
  assertEquals(computePriorityLoad([]).healthyLoad, [100]);
});

Deno.test("computePriorityLoad leaves excluded hosts out of both sides of the ratios", () => {
  // 10 hosts, 5 excluded (EDS DRAINING), the other 5 healthy: fully healthy, no panic.
  const l = computePriorityLoad([{ total: 10, healthy: 5, degraded: 0, excluded: 5 }, pct(100)]);
  assertEquals([l.health[0], l.healthyLoad, l.panic], [100, [100, 0], [false, false]]);
  // All of P0 excluded: P1 takes everything.
  assertEquals(computePriorityLoad([{ total: 4, healthy: 0, degraded: 0, excluded: 4 }, pct(100)]).healthyLoad, [
    0,
    100,
  ]);
});

Deno.test("computePriorityLoad uses the overprovisioning factor and weighted_priority_health", () => {
  // Factor 100: 80 % healthy is 80 % of the load.
  assertEquals(loads([pct(80), pct(100)], { overprovisioningFactor: 100 }).healthy, [80, 20]);
  // Factor 200: 50 % healthy is enough.
  assertEquals(loads([pct(50), pct(100)], { overprovisioningFactor: 200 }).healthy, [100, 0]);
  // Weighted: 1 healthy host of weight 1 and 1 unhealthy of weight 3 → 25 % · 1.4 = 35 %, not 50 % · 1.4 = 70 %.
  const p0: PriorityCounts = { total: 2, healthy: 1, degraded: 0, excluded: 0, totalWeight: 4, healthyWeight: 1 };
  assertEquals(loads([p0, pct(100)]).healthy, [70, 30]);
  assertEquals(loads([p0, pct(100)], { weightedPriorityHealth: true }).healthy, [35, 65]);
});

Deno.test("choosePriority walks the healthy loads, then the degraded loads", () => {
  const l = computePriorityLoad([pct(25, 65), pct(100)]);
  assertEquals([l.healthyLoad, l.degradedLoad], [[35, 65], [0, 0]]);
  assertEquals(choosePriority(l, 0), { priority: 0, degraded: false });
  assertEquals(choosePriority(l, 34), { priority: 0, degraded: false });
  assertEquals(choosePriority(l, 35), { priority: 1, degraded: false });
  const d = computePriorityLoad([pct(25, 65)]);
  assertEquals(choosePriority(d, 35), { priority: 0, degraded: true });
  assertEquals(choosePriority(d, 199), { priority: 0, degraded: true });
});

// The balancers over hosts with priorities, health and localities.

let nextIp = 1;
function host(o: Partial<LbHost> & { healthy?: boolean } = {}): LbHost & { healthy: boolean } {
  const i = nextIp++;
  return {
    address: `10.0.${i >> 8}.${i & 255}`,
    port: 80,
    hostname: undefined,
    weight: 1,
    key: `10.0.${i >> 8}.${i & 255}:80`,
    cluster: {} as ClusterInfo,
    healthy: true,
    activeRequests: 0,
    ...o,
  };
}

function source(hosts: Host[], extra: Partial<HostSource> = {}): HostSource {
  return { hosts, hostsVersion: 1, ...extra };
}

/** A deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POLICIES = ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"] as const;

function share(hosts: readonly Host[], picks: readonly (Host | undefined)[]): number {
  const set = new Set(hosts);
  return picks.filter((h) => h !== undefined && set.has(h)).length / picks.length;
}

Deno.test("every balancer spills from a half-healthy P0 to P1 by the priority load (70/30)", () => {
  for (const policy of POLICIES) {
    const p0 = [host(), host(), host({ healthy: false }), host({ healthy: false })];
    const p1 = [host({ priority: 1 }), host({ priority: 1 })];
    const lb = createLoadBalancer(policy, source([...p0, ...p1]), { random: seeded(1) });
    const rnd = seeded(2);
    const picks = Array.from({ length: 4000 }, () => lb.chooseHost({ hashKey: Math.floor(rnd() * 2 ** 52) }));
    assertBetween(share(p0, picks), 0.66, 0.74, policy);
    assertBetween(share(p1, picks), 0.26, 0.34, policy);
    assertEquals(share([p0[2]!, p0[3]!], picks), 0, `${policy}: no unhealthy P0 host`);
  }
});

Deno.test("balancers keep all traffic on P0 while it is at least 72 % healthy, and move it all when P0 is down", () => {
  const p0 = Array.from({ length: 4 }, () => host());
  const p1 = [host({ priority: 1 })];
  const src = { hosts: [...p0, ...p1] as Host[], hostsVersion: 1 };
  const lb = createLoadBalancer("ROUND_ROBIN", src, { random: seeded(3) });
  // 3 of 4 healthy: 75 % · 1.4 > 100.
  p0[0]!.healthy = false;
  src.hostsVersion++;
  for (let i = 0; i < 200; i++) assert(p1[0] !== lb.chooseHost());
  for (const h of p0) h.healthy = false;
  src.hostsVersion++;
  for (let i = 0; i < 50; i++) assert(lb.chooseHost() === p1[0]);
});

Deno.test("balancers use degraded hosts only for the load healthy hosts cannot take, and never excluded hosts", () => {
  for (const policy of POLICIES) {
    // 1 healthy, 2 degraded, 1 unhealthy (4 hosts): health 35 %, degraded 70 % → 35 % healthy, 65 % degraded.
    const healthy = host();
    const degraded = [host({ healthy: false, degraded: true }), host({ healthy: false, degraded: true })];
    const draining = host({ healthy: false, excluded: true });
    const lb = createLoadBalancer(policy, source([healthy, ...degraded, host({ healthy: false }), draining]), {
      random: seeded(4),
    });
    const rnd = seeded(5);
    const picks = Array.from({ length: 4000 }, () => lb.chooseHost({ hashKey: Math.floor(rnd() * 2 ** 52) }));
    // Excluded: 1 of 5 hosts out of the ratios → 1/4 healthy.
    assertBetween(share([healthy], picks), 0.30, 0.40, policy);
    assertBetween(share(degraded, picks), 0.60, 0.70, policy);
    assertEquals(share([draining], picks), 0, policy);
  }
});

Deno.test("balancers count lb_healthy_panic and use all of a panicking priority's hosts except excluded ones", () => {
  for (const policy of POLICIES) {
    const hosts = [
      host(),
      host({ healthy: false }),
      host({ healthy: false }),
      host({ healthy: false, excluded: true }),
    ];
    let panics = 0;
    const lb = createLoadBalancer(policy, source(hosts), { random: seeded(6), onPanic: () => panics++ });
    const rnd = seeded(7);
    const picks = Array.from({ length: 600 }, () => lb.chooseHost({ hashKey: Math.floor(rnd() * 2 ** 52) }));
    assertEquals(panics, 600, policy);
    for (const h of hosts.slice(0, 3)) assert(share([h], picks) > 0.2, `${policy}: ${h.key} used in panic`);
    assertEquals(share([hosts[3]!], picks), 0, `${policy}: the excluded host is not`);
  }
});

Deno.test("locality-weighted balancing picks a locality by weight × health, then a host in it", () => {
  const a = [host({ localityKey: "a", localityWeight: 1 }), host({ localityKey: "a", localityWeight: 1 })];
  const b = [host({ localityKey: "b", localityWeight: 3 }), host({ localityKey: "b", localityWeight: 3 })];
  const none = [host({ localityKey: "c" })];
  for (const policy of POLICIES) {
    const src = { hosts: [...a, ...b, ...none] as Host[], hostsVersion: 1 };
    const lb = createLoadBalancer(policy, src, { random: seeded(8), localityWeighted: true });
    const rnd = seeded(9);
    const pick = () => Array.from({ length: 4000 }, () => lb.chooseHost({ hashKey: Math.floor(rnd() * 2 ** 52) }));
    let picks = pick();
    assertBetween(share(a, picks), 0.22, 0.28, policy);
    assertBetween(share(b, picks), 0.72, 0.78, policy);
    assertEquals(share(none, picks), 0, `${policy}: a locality without weight gets nothing`);
    // Half of b unhealthy: b's weight 3 · min(1, 1.4 · 1/2) = 2.1 against a's 1 → 68 %.
    b[0]!.healthy = false;
    src.hostsVersion++;
    picks = pick();
    assertBetween(share(b, picks), 0.64, 0.72, policy);
    assertEquals(share([b[0]!], picks), 0, policy);
    b[0]!.healthy = true;
    // Without locality_weighted_lb_config the weights are ignored: hosts share evenly.
    const plain = createLoadBalancer(policy, source([...a, ...b]), { random: seeded(10) });
    const even = Array.from({ length: 4000 }, () => plain.chooseHost({ hashKey: Math.floor(rnd() * 2 ** 52) }));
    assertBetween(share(a, even), 0.44, 0.56, policy);
  }
});

Deno.test("balancers follow the source's overprovisioning factor", () => {
  const p0 = [host(), host(), host(), host({ healthy: false })];
  const p1 = [host({ priority: 1 })];
  const src = { hosts: [...p0, ...p1] as Host[], hostsVersion: 1, overprovisioningFactor: 100 };
  const lb = createLoadBalancer("RANDOM", src, { random: seeded(11) });
  const picks = Array.from({ length: 4000 }, () => lb.chooseHost());
  // 75 % healthy at factor 1.0: 75/25.
  assertBetween(share(p1, picks), 0.22, 0.28);
});
