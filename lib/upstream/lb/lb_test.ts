import type { ClusterInfo, Host } from "../../api/upstream.ts";
import { assert, assertBetween, assertEquals } from "../../../tests/assert.ts";
import type { HostSource } from "./_common.ts";
import { createLoadBalancer, LeastRequestLoadBalancer, RandomLoadBalancer, RoundRobinLoadBalancer } from "./mod.ts";

/** A deterministic PRNG (mulberry32) so distributions are reproducible. */
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

function mkHost(i: number, weight = 1, healthy = true): Host {
  return {
    address: `10.0.0.${i}`,
    port: 80,
    hostname: undefined,
    weight,
    key: `10.0.0.${i}:80`,
    cluster: {} as ClusterInfo,
    healthy,
    activeRequests: 0,
  };
}

class Source implements HostSource {
  hosts: Host[];
  hostsVersion = 1;
  constructor(hosts: Host[]) {
    this.hosts = hosts;
  }
  bump(): void {
    this.hostsVersion++;
  }
}

function count(pick: () => Host | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick();
    const k = h?.key ?? "none";
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

Deno.test("RoundRobinLoadBalancer rotates through equal-weight hosts", () => {
  const hosts = [mkHost(1), mkHost(2), mkHost(3)];
  const lb = new RoundRobinLoadBalancer(new Source(hosts), { random: () => 0 });
  const seq = Array.from({ length: 6 }, () => lb.chooseHost()!.key);
  assertEquals(seq, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
});

Deno.test("RoundRobinLoadBalancer follows weights smoothly", () => {
  const hosts = [mkHost(1, 5), mkHost(2, 1), mkHost(3, 1)];
  const lb = new RoundRobinLoadBalancer(new Source(hosts));
  const seq = Array.from({ length: 7 }, () => lb.chooseHost()!.key.slice(7, 8));
  // nginx's smooth WRR for {a:5, b:1, c:1}: a a b a c a a
  assertEquals(seq.join(""), "1121311");
  const m = count(() => lb.chooseHost(), 7000);
  assertEquals(m.get("10.0.0.1:80"), 5000);
  assertEquals(m.get("10.0.0.2:80"), 1000);
});

Deno.test("RandomLoadBalancer spreads picks uniformly", () => {
  const hosts = [mkHost(1), mkHost(2), mkHost(3), mkHost(4)];
  const lb = new RandomLoadBalancer(new Source(hosts), { random: seeded(7) });
  const m = count(() => lb.chooseHost(), 40000);
  for (const h of hosts) assertBetween(m.get(h.key)!, 9500, 10500, h.key);
});

Deno.test("LeastRequestLoadBalancer prefers less loaded hosts with equal weights", () => {
  const hosts = [mkHost(1), mkHost(2), mkHost(3), mkHost(4)];
  hosts[0]!.activeRequests = 10;
  hosts[1]!.activeRequests = 10;
  hosts[2]!.activeRequests = 10;
  const lb = new LeastRequestLoadBalancer(new Source(hosts), { random: seeded(3) });
  const m = count(() => lb.chooseHost(), 10000);
  // P2C: host 4 wins whenever it is one of two samples: 1 - (3/4)^2 = 43.75 %.
  assertBetween(m.get("10.0.0.4:80")!, 4100, 4650);
  const lb3 = new LeastRequestLoadBalancer(new Source(hosts), { random: seeded(3), choiceCount: 3 });
  // 1 - (3/4)^3 = 57.8 %
  assertBetween(count(() => lb3.chooseHost(), 10000).get("10.0.0.4:80")!, 5500, 6050);
});

Deno.test("LeastRequestLoadBalancer weighs by weight / (active + 1) ^ bias", () => {
  const hosts = [mkHost(1, 2), mkHost(2, 1)];
  const lb = new LeastRequestLoadBalancer(new Source(hosts));
  // Idle hosts: proportional to weight.
  const m = count(() => lb.chooseHost(), 3000);
  assertBetween(m.get("10.0.0.1:80")!, 1990, 2010);
  // Host 1 busy with 3 requests: effective 2/4 = 0.5 vs 1 → host 2 gets about two thirds.
  hosts[0]!.activeRequests = 3;
  const m2 = count(() => lb.chooseHost(), 3000);
  assertBetween(m2.get("10.0.0.2:80")!, 1900, 2100);
  // bias 0: plain weights again.
  const lb0 = new LeastRequestLoadBalancer(new Source(hosts), { activeRequestBias: 0 });
  assertBetween(count(() => lb0.chooseHost(), 3000).get("10.0.0.1:80")!, 1990, 2010);
});

Deno.test("load balancers skip unhealthy hosts", () => {
  for (const policy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"] as const) {
    const hosts = [mkHost(1), mkHost(2, 1, false), mkHost(3), mkHost(4, 3)];
    const src = new Source(hosts);
    const lb = createLoadBalancer(policy, src, { random: seeded(11) });
    const m = count(() => lb.chooseHost(), 1000);
    assertEquals(m.get("10.0.0.2:80"), undefined, policy);
    // Health changes are seen once the source's version moves.
    hosts[1]!.healthy = true;
    hosts[0]!.healthy = false;
    src.bump();
    const m2 = count(() => lb.chooseHost(), 1000);
    assertEquals(m2.get("10.0.0.1:80"), undefined, policy);
    assert((m2.get("10.0.0.2:80") ?? 0) > 0, policy);
  }
});

Deno.test("load balancers use all hosts in panic mode", () => {
  for (const policy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"] as const) {
    const hosts = [mkHost(1, 1, false), mkHost(2, 1, false)];
    let panics = 0;
    const lb = createLoadBalancer(policy, new Source(hosts), { random: seeded(5), onPanic: () => panics++ });
    const m = count(() => lb.chooseHost(), 100);
    assertEquals(m.size, 2, policy);
    assertEquals(panics, 100, policy);
  }
  // Below Envoy's default 50 % threshold: 1 healthy of 3 → all used.
  const hosts = [mkHost(1), mkHost(2, 1, false), mkHost(3, 1, false)];
  const lb = createLoadBalancer("ROUND_ROBIN", new Source(hosts));
  assertEquals(count(() => lb.chooseHost(), 90).size, 3);
  // Threshold 0 disables panic: only the healthy host.
  const lb0 = createLoadBalancer("ROUND_ROBIN", new Source(hosts), { panicThreshold: 0 });
  assertEquals([...count(() => lb0.chooseHost(), 90).keys()], ["10.0.0.1:80"]);
});

Deno.test("load balancers honour the avoid set", () => {
  for (const policy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"] as const) {
    const hosts = [mkHost(1), mkHost(2), mkHost(3, 5)];
    const lb = createLoadBalancer(policy, new Source(hosts), { random: seeded(9) });
    const avoid = new Set([hosts[0]!, hosts[2]!]);
    for (let i = 0; i < 200; i++) assertEquals(lb.chooseHost({ avoid })!.key, "10.0.0.2:80", policy);
    // Everything avoided: still answers.
    assert(lb.chooseHost({ avoid: new Set(hosts) }) !== undefined);
  }
});

Deno.test("load balancers return undefined without hosts", () => {
  for (const policy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"] as const) {
    assertEquals(createLoadBalancer(policy, new Source([])).chooseHost(), undefined);
  }
});
