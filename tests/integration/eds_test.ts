/**
 * EDS semantics on a running server: an EDS cluster (`eds_cluster_config`, added at run time as CDS adds it)
 * takes its endpoints from
 * `Server.updateClusterHosts` (what the xDS client calls with each ClusterLoadAssignment). Traffic follows Envoy's
 * priority load (spill from a degraded P0 to P1), skips UNHEALTHY and DRAINING endpoints (which `/clusters` still
 * lists with their health flags), survives a CDS re-send of the same cluster, and loses no request while the
 * endpoints churn under concurrent load.
 */
import { assert, assertBetween, assertEquals, assertMatch } from "../assert.ts";
import { parseCluster } from "../../lib/upstream/config.ts";
import { itOpts, sleep, startFerry, startUpstream, stat, type TestFerry, type TestUpstream } from "./_harness.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

const EDS_CLUSTER = {
  name: "svc",
  connect_timeout: "1s",
  type: "EDS",
  eds_cluster_config: { service_name: "svc-eds", eds_config: { ads: {}, resource_api_version: "V3" } },
};

/**
 * The bootstrap serves "svc" as an empty STATIC cluster (an EDS cluster in a bootstrap needs dynamic_resources and a
 * reachable xDS server); {@link startEds} then replaces it with the EDS cluster, as CDS would.
 */
function bootstrap() {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "web",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": HCM,
              stat_prefix: "web",
              route_config: {
                name: "routes",
                virtual_hosts: [{
                  name: "all",
                  domains: ["*"],
                  routes: [{ match: { prefix: "/" }, route: { cluster: "svc" } }],
                }],
              },
              http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
            },
          }],
        }],
      }],
      clusters: [{ name: "svc", connect_timeout: "1s", type: "STATIC" }],
    },
  };
}

interface Ep {
  port: number;
  status?: string;
}

/** A ClusterLoadAssignment with one locality per priority (`groups[p]` are the endpoints of priority p). */
function assignment(groups: Ep[][], policy?: Record<string, unknown>) {
  return {
    cluster_name: "svc-eds",
    endpoints: groups.map((eps, priority) => ({
      priority,
      lb_endpoints: eps.map((e) => ({
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: e.port } } },
        ...(e.status ? { health_status: e.status } : {}),
      })),
    })),
    ...(policy ? { policy } : {}),
  };
}

/** Ferry with the EDS cluster "svc" (added as CDS adds it) and no endpoints yet. */
async function startEds(): Promise<TestFerry> {
  const f = await startFerry(bootstrap());
  f.server.clusterManager.addOrUpdate(parseCluster(EDS_CLUSTER, "cds"));
  return f;
}

/** Starts `n` upstreams answering with their index (after `delayMs`, so that requests overlap updates). */
async function upstreams(n: number, delayMs = 0): Promise<TestUpstream[]> {
  const out: TestUpstream[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await startUpstream(async () => {
        if (delayMs > 0) await sleep(delayMs);
        return new Response(`u${i}`);
      }),
    );
  }
  return out;
}

/** Sends `n` GETs one after the other; the bodies by count. */
async function spread(f: TestFerry, n: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await fetch(f.url(`/${i}`));
    const body = r.status === 200 ? await r.text() : `status ${r.status} ${await r.text()}`;
    m.set(body, (m.get(body) ?? 0) + 1);
  }
  return m;
}

async function clustersText(f: TestFerry): Promise<string> {
  return await (await fetch(`${f.adminUrl}/clusters`)).text();
}

Deno.test(
  "EDS cluster: traffic follows the priority load and skips UNHEALTHY and DRAINING endpoints",
  itOpts,
  async () => {
    const u = await upstreams(5);
    const f = await startEds();
    try {
      // No assignment yet: no host.
      const none = await fetch(f.url("/"));
      assertEquals(none.status, 503);
      await none.body?.cancel();
      assertEquals(await stat(f, "cluster.svc.membership_total"), 0);

      // P0 = u0, u1; P1 = u2: P0 healthy takes everything.
      f.server.updateClusterHosts(
        "svc",
        assignment([[{ port: u[0]!.port }, { port: u[1]!.port }], [{ port: u[2]!.port }]]),
      );
      let m = await spread(f, 40);
      assertEquals((m.get("u0") ?? 0) + (m.get("u1") ?? 0), 40, JSON.stringify([...m]));
      assert((m.get("u0") ?? 0) > 0 && (m.get("u1") ?? 0) > 0);
      assertEquals(await stat(f, "cluster.svc.membership_total"), 3);
      assertEquals(await stat(f, "cluster.svc.update_success"), 1);

      // u0 UNHEALTHY, u1 DRAINING: P0 has no capacity, P1 takes everything; /clusters still lists both.
      f.server.updateClusterHosts(
        "svc",
        assignment([[{ port: u[0]!.port, status: "UNHEALTHY" }, { port: u[1]!.port, status: "DRAINING" }], [{
          port: u[2]!.port,
        }]]),
      );
      m = await spread(f, 30);
      assertEquals(m.get("u2"), 30, JSON.stringify([...m]));
      const text = await clustersText(f);
      assertMatch(text, new RegExp(`svc::127\\.0\\.0\\.1:${u[0]!.port}::health_flags::/failed_eds_health`));
      assertMatch(text, new RegExp(`svc::127\\.0\\.0\\.1:${u[1]!.port}::health_flags::/eds_status_draining`));
      assertMatch(text, new RegExp(`svc::127\\.0\\.0\\.1:${u[2]!.port}::priority::1`));
      assertEquals(await stat(f, "cluster.svc.membership_healthy"), 1);
      assertEquals(await stat(f, "cluster.svc.membership_excluded"), 1);
      const json = await (await fetch(`${f.adminUrl}/clusters?format=json`)).json() as {
        cluster_statuses: { name: string; host_statuses: { health_status: { eds_health_status: string } }[] }[];
      };
      const statuses = json.cluster_statuses.find((c) => c.name === "svc")!.host_statuses;
      assertEquals(statuses.map((h) => h.health_status.eds_health_status), ["UNHEALTHY", "DRAINING", "HEALTHY"]);

      // P0 = u0 healthy, u1 UNHEALTHY (50 % · 1.4 = 70 %), P1 = u2: about 70/30.
      f.server.updateClusterHosts(
        "svc",
        assignment([[{ port: u[0]!.port }, { port: u[1]!.port, status: "UNHEALTHY" }], [{ port: u[2]!.port }]]),
      );
      m = await spread(f, 200);
      assertEquals(m.get("u1"), undefined);
      assertBetween((m.get("u0") ?? 0) / 200, 0.55, 0.85, JSON.stringify([...m]));
      assertEquals((m.get("u0") ?? 0) + (m.get("u2") ?? 0), 200);

      // DEGRADED endpoints serve only the load healthy ones cannot: P1 with 3 of 4 healthy (3/4 · 1.4 > 1) keeps
      // its degraded endpoint idle.
      f.server.updateClusterHosts(
        "svc",
        assignment([[{ port: u[0]!.port, status: "UNHEALTHY" }], [
          { port: u[3]!.port, status: "DEGRADED" },
          { port: u[1]!.port },
          { port: u[2]!.port },
          { port: u[4]!.port },
        ]]),
      );
      m = await spread(f, 30);
      assertEquals(m.get("u3"), undefined, "the degraded host is idle");
      assertEquals((m.get("u1") ?? 0) + (m.get("u2") ?? 0) + (m.get("u4") ?? 0), 30);
      assertEquals(await stat(f, "cluster.svc.membership_degraded"), 1);
      f.server.updateClusterHosts(
        "svc",
        assignment([[{ port: u[0]!.port, status: "UNHEALTHY" }], [{ port: u[3]!.port, status: "DEGRADED" }]]),
      );
      m = await spread(f, 20);
      assertEquals(m.get("u3"), 20, "only degraded hosts left: they serve");

      // A CDS re-send of the same cluster keeps the pushed endpoints; a changed one starts with them.
      const same = f.server.clusterManager.addOrUpdate(parseCluster(EDS_CLUSTER, "cds"));
      assertEquals(same.hosts.length, 2);
      m = await spread(f, 5);
      assertEquals(m.get("u3"), 5);
      const rebuilt = f.server.clusterManager.addOrUpdate(
        parseCluster({ ...EDS_CLUSTER, connect_timeout: "2s" }, "cds"),
      );
      assert(rebuilt !== same, "a changed cluster is rebuilt");
      assertEquals(rebuilt.hosts.map((h) => h.port), [u[0]!.port, u[3]!.port]);
      m = await spread(f, 5);
      assertEquals(m.get("u3"), 5, "the rebuilt cluster serves the last EDS endpoints");
    } finally {
      await f.stop();
      for (const x of u) await x.close();
    }
  },
);

Deno.test(
  "EDS cluster: endpoint churn under 20 concurrent request loops loses no request",
  itOpts,
  async () => {
    // Each answer takes 5 ms: most pushes land while requests are in flight, some on hosts they remove.
    const u = await upstreams(6, 5);
    const f = await startEds();
    try {
      f.server.updateClusterHosts("svc", assignment([u.slice(0, 3).map((x) => ({ port: x.port }))]));
      let done = false;
      let updates = 0;
      /** Hosts removed while requests were in flight on them (those requests must still complete). */
      let removedBusy = 0;
      // Every few milliseconds: a random non-empty subset, spread over two priorities, some endpoints DRAINING or
      // UNHEALTHY (every upstream is up, so whatever the balancer picks answers).
      let seed = 42;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x80000000;
      };
      const churn = (async () => {
        const deadline = Date.now() + 60_000;
        while (!done && Date.now() < deadline) {
          const p0: Ep[] = [], p1: Ep[] = [];
          for (const x of u) {
            const r = rnd();
            if (r < 0.3) continue;
            const status = r < 0.4 ? "DRAINING" : r < 0.5 ? "UNHEALTHY" : r < 0.55 ? "DEGRADED" : undefined;
            (rnd() < 0.7 ? p0 : p1).push({ port: x.port, ...(status ? { status } : {}) });
          }
          if (p0.length + p1.length === 0) p0.push({ port: u[0]!.port });
          const cluster = f.server.clusterManager.get("svc")!;
          const busy = cluster.hosts.filter((h) => h.activeRequests > 0);
          f.server.updateClusterHosts("svc", assignment(p1.length > 0 ? [p0, p1] : [p0]));
          const kept = new Set(cluster.hosts);
          removedBusy += busy.filter((h) => !kept.has(h)).length;
          updates++;
          await sleep(3);
        }
      })();
      const failures: string[] = [];
      const seen = new Set<string>();
      let ok = 0;
      const loops = Array.from({ length: 20 }, async (_, w) => {
        for (let i = 0; i < 100; i++) {
          try {
            const r = await fetch(f.url(`/w${w}/${i}`));
            const body = await r.text();
            if (r.status === 200) {
              ok++;
              seen.add(body);
            } else failures.push(`${r.status} ${body}`);
          } catch (e) {
            failures.push(String(e));
          }
        }
      });
      await Promise.all(loops);
      done = true;
      await churn;
      assertEquals(failures.slice(0, 5), [], `${failures.length} failed of 2000`);
      assertEquals(ok, 2000);
      assert(updates >= 20, `only ${updates} updates during the load`);
      assert(removedBusy > 0, "some pushes removed hosts with requests in flight");
      assert(seen.size >= 4, `requests reached ${[...seen].join(", ")}`);
      assertEquals(await stat(f, "cluster.svc.update_rejected") ?? 0, 0);
      assert((await stat(f, "cluster.svc.membership_change"))! >= 10);
    } finally {
      await f.stop();
      for (const x of u) await x.close();
    }
  },
);
