/**
 * EDS update micro-benchmark: the cost of endpoint pushes (`ClusterManagerImpl.updateHosts`) and of the balancer
 * rebuild they cause, in-process, no sockets.
 *
 *   deno run -A bench/eds_update.ts [--updates 5000] [--clusters 10000]
 *
 * 1. One cluster of N endpoints (10, 100, 1,000, 10,000) over two priorities: `--updates` pushes, each changing
 *    one endpoint (its health, weight, or replacing it with a new address), each followed by one `chooseHost` (the
 *    balancer rebuilds lazily on the first pick after a change). Prints pushes per second (update + pick), and
 *    separately the cost of parsing the ClusterLoadAssignment JSON of that size (`parseLoadAssignment`, what
 *    `Server.updateClusterHosts` does before the push).
 * 2. `--clusters` EDS clusters of one endpoint each: build time and heap, one push to every cluster, one pick from
 *    every cluster, then pushes to a single cluster with all the others present (a push must not cost O(all
 *    hosts)). Not a test.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LbEndpoint, LocalityLbEndpoints } from "../lib/api/upstream.ts";
import { StatsStore } from "../lib/observe/stats.ts";
import { ClusterManagerImpl } from "../lib/upstream/cluster_manager.ts";
import { parseCluster, parseLoadAssignment } from "../lib/upstream/config.ts";

const args = parseArgs({ args: Deno.args, options: { updates: { type: "string" }, clusters: { type: "string" } } });
const UPDATES = Number(args.values.updates ?? 5000);
const CLUSTERS = Number(args.values.clusters ?? 10000);

function edsCluster(name: string) {
  return parseCluster({
    name,
    connect_timeout: "1s",
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {} } },
  }, "bench");
}

function ip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function endpoint(i: number, extra: Partial<LbEndpoint> = {}): LbEndpoint {
  return { address: ip(i), port: 8080, weight: 1, healthStatus: "HEALTHY", ...extra };
}

function heapMiB(): number {
  return Deno.memoryUsage().heapUsed / 1024 / 1024;
}

// 1. One cluster, N endpoints, one endpoint changing per push.
console.log(`# one cluster: ${UPDATES} pushes, each changing one endpoint, each followed by one pick`);
for (const n of [10, 100, 1000, 10_000]) {
  const cm = new ClusterManagerImpl([edsCluster("svc")], { stats: new StatsStore() });
  const eps: LbEndpoint[] = Array.from({ length: n }, (_, i) => endpoint(i));
  const split = Math.floor(n * 0.8);
  const groups = (): LocalityLbEndpoints[] => [
    { priority: 0, endpoints: eps.slice(0, split) },
    { priority: 1, endpoints: eps.slice(split) },
  ];
  cm.updateHosts("svc", groups());
  const c = cm.get("svc")!;
  let next = n;
  const updates = n >= 10_000 ? Math.min(UPDATES, 1000) : UPDATES;
  const t0 = performance.now();
  for (let u = 0; u < updates; u++) {
    const i = (u * 7919) % n;
    const e = eps[i]!;
    switch (u % 3) {
      case 0:
        eps[i] = { ...e, healthStatus: e.healthStatus === "HEALTHY" ? "UNHEALTHY" : "HEALTHY" };
        break;
      case 1:
        eps[i] = { ...e, weight: e.weight === 1 ? 2 : 1 };
        break;
      default:
        eps[i] = endpoint(next++);
    }
    cm.updateHosts("svc", groups());
    if (c.chooseHost() === undefined) throw new Error("no host");
  }
  const ms = performance.now() - t0;
  const raw = {
    cluster_name: "svc",
    endpoints: groups().map((g) => ({
      priority: g.priority,
      lb_endpoints: g.endpoints.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        health_status: e.healthStatus,
      })),
    })),
  };
  const parses = Math.max(20, Math.floor(200_000 / n));
  const tp = performance.now();
  for (let i = 0; i < parses; i++) parseLoadAssignment(raw, "cla", "EDS");
  const parseUs = (performance.now() - tp) * 1000 / parses;
  console.log(
    `endpoints ${String(n).padStart(6)}: ${(updates / (ms / 1000)).toFixed(0).padStart(7)} pushes/s, ` +
      `${(ms * 1000 / updates).toFixed(1)} µs per push + pick; parsing the assignment ${parseUs.toFixed(1)} µs`,
  );
  cm.shutdown();
}

// 2. Many clusters of one endpoint.
console.log(`\n# ${CLUSTERS} EDS clusters of one endpoint each`);
const heap0 = heapMiB();
let t = performance.now();
const names = Array.from({ length: CLUSTERS }, (_, i) => `c${i}`);
const cm = new ClusterManagerImpl(names.map(edsCluster), { stats: new StatsStore() });
console.log(`build: ${(performance.now() - t).toFixed(0)} ms, heap +${(heapMiB() - heap0).toFixed(1)} MiB`);
t = performance.now();
for (let i = 0; i < CLUSTERS; i++) cm.updateHosts(names[i]!, [{ priority: 0, endpoints: [endpoint(i)] }]);
let ms = performance.now() - t;
console.log(`first push to every cluster: ${ms.toFixed(0)} ms (${(ms * 1000 / CLUSTERS).toFixed(1)} µs each)`);
t = performance.now();
for (const name of names) if (cm.get(name)!.chooseHost() === undefined) throw new Error("no host");
ms = performance.now() - t;
console.log(`first pick from every cluster: ${ms.toFixed(0)} ms (${(ms * 1000 / CLUSTERS).toFixed(2)} µs each)`);
t = performance.now();
for (let r = 0; r < 10; r++) for (const name of names) cm.get(name)!.chooseHost();
ms = performance.now() - t;
console.log(`steady picks: ${(ms * 1e6 / (10 * CLUSTERS)).toFixed(0)} ns each`);
console.log(`heap with hosts: +${(heapMiB() - heap0).toFixed(1)} MiB`);
const one = cm.get("c0")!;
t = performance.now();
for (let u = 0; u < UPDATES; u++) {
  cm.updateHosts("c0", [{ priority: 0, endpoints: [endpoint(u % 2 === 0 ? 1_000_000 : 0)] }]);
  one.chooseHost();
}
ms = performance.now() - t;
console.log(
  `pushes to one cluster among ${CLUSTERS}: ${(UPDATES / (ms / 1000)).toFixed(0)} pushes/s ` +
    `(${(ms * 1000 / UPDATES).toFixed(1)} µs per push + pick)`,
);
cm.shutdown();
