/**
 * All cores by default, and xDS reaching the workers: `main.ts` started with no `--concurrency` (one event loop
 * per core, as Envoy), driven by a real ADS server (`tests/xds/control_plane.ts`) and raw HTTP/1.1 and TLS clients.
 * Each request uses a new connection, so the kernel's SO_REUSEPORT hash spreads them over the event loops; the
 * per-worker listener counters (`listener.<prefix>.worker_<i>.downstream_cx_total`) show which loops took some,
 * and every response must show the config of the step. An update is ACKed only after every worker applied it, so
 * nothing waits between the ACK and the checks.
 */
import { assert, assertEquals } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { freePort } from "../fakes/ports.ts";
import { type ControlPlane, type SnapshotInput, startControlPlane } from "../xds/control_plane_client.ts";
import { directResponseRoutes, hcmBootstrap, itOpts, sleep, spawnFerry, startUpstream } from "./_harness.ts";
import { parseBootstrap } from "../../lib/config/bootstrap.ts";
import { setLogSink } from "../../lib/observe/log.ts";
import { createRegistries } from "../../lib/server/registries.ts";
import { Server } from "../../lib/server/server.ts";
import { parse as parseYaml } from "yaml";
import { TYPE, XdsManager } from "../../xds/mod.ts";
import type { WorkerConfigOp } from "../../lib/server/workers.ts";

type Obj = Record<string, unknown>;

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const ADS = { ads: {}, resource_api_version: "V3" };
const CORES = Math.max(1, Math.min(999, navigator.hardwareConcurrency || 1));

/** One request on a new connection (`Connection: close`): status, headers (lower-cased) and body. */
async function once(
  conn: Deno.Conn,
  path = "/",
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  try {
    await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const [head = "", ...rest] = text.split("\r\n\r\n");
    const [statusLine = "", ...lines] = head.split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: rest.join("\r\n\r\n") };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

/** `n` requests, each on its own connection, one after another. */
async function spread(port: number, n: number, tls?: { caCerts: string[] }) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const conn = tls
      ? await Deno.connectTls({ hostname: "localhost", port, caCerts: tls.caCerts })
      : await Deno.connect({ hostname: "127.0.0.1", port });
    out.push(await once(conn));
  }
  return out;
}

/** The merged stats as a name → value map (counters and gauges). */
async function stats(admin: number): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${admin}/stats?format=json`);
  const j = await r.json() as { stats: { name?: string; value?: number }[] };
  return new Map(j.stats.filter((s) => s.name !== undefined).map((s) => [s.name!, s.value ?? 0]));
}

/** Connections each event loop accepted on the listener on this port (index = worker id). */
async function perLoop(admin: number, port: number): Promise<number[]> {
  const out: number[] = [];
  const re = new RegExp(`^listener\\.127\\.0\\.0\\.1_${port}\\.worker_(\\d+)\\.downstream_cx_total$`);
  for (const [name, v] of await stats(admin)) {
    const m = re.exec(name);
    if (m) out[Number(m[1])] = v;
  }
  return Array.from(out, (v) => v ?? 0);
}

/** How many loops took at least one connection between two {@link perLoop} readings. */
function loopsUsed(before: number[], after: number[]): number {
  return after.filter((n, i) => n > (before[i] ?? 0)).length;
}

/** Process RSS in MiB from /proc (Linux), or NaN. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

Deno.test(
  "ferry with no --concurrency runs one event loop per core: server.concurrency, /server_info, every loop accepts",
  itOpts,
  async () => {
    const port = freePort();
    const admin = freePort();
    const cfg = hcmBootstrap({ routes: directResponseRoutes("hi"), port, adminPort: admin });
    const ferry = await spawnFerry(["--config-yaml", cfg, "--drain-time-s", "1"], {
      adminPort: admin,
      defaultConcurrency: true,
    });
    try {
      const s = await stats(admin);
      assertEquals(s.get("server.concurrency"), CORES);
      const info = await (await fetch(`http://127.0.0.1:${admin}/server_info`)).json();
      assertEquals(info.command_line_options.concurrency, CORES);
      if (CORES > 1) assert(ferry.stderr.includes(`${CORES - 1} worker thread(s) started`), ferry.stderr);
      const before = await perLoop(admin, port);
      const rs = await spread(port, 40);
      assertEquals(rs.map((r) => r.body), rs.map(() => "hi"));
      const after = await perLoop(admin, port);
      assertEquals(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0), 40);
      assert(loopsUsed(before, after) >= Math.min(CORES, 2), `connections per loop: ${after}`);
      console.log(`RSS with ${CORES} event loop(s): ${rssMiB(ferry.child.pid).toFixed(1)} MiB`);
      assertEquals((await ferry.stop()).code, 0);
    } finally {
      await ferry.kill();
    }
  },
);

const pkiOne = generateTestPki({ gm: false, hosts: ["localhost"], ips: ["127.0.0.1"] });
const pkiTwo = generateTestPki({ gm: false, hosts: ["localhost"], ips: ["127.0.0.1"] });

interface World {
  http: number;
  https: number;
  upstreams: number[];
}

/** LDS (http with RDS "routes", https with SDS "cert"), RDS, CDS (EDS cluster "web"), EDS, SDS. */
function snapshot(
  w: World,
  version: string,
  o: { endpoint?: number; pki?: Record<string, string>; cluster?: boolean } = {},
): SnapshotInput {
  const pki = o.pki ?? pkiOne;
  const listener = (name: string, port: number, extra: Obj = {}) => ({
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: name,
          rds: { route_config_name: "routes", config_source: ADS },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
      ...extra,
    }],
  });
  const withCluster = o.cluster ?? true;
  return {
    version,
    resources: {
      lds: [
        listener("http", w.http),
        listener("https", w.https, {
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": DOWNSTREAM_TLS,
              common_tls_context: { tls_certificate_sds_secret_configs: [{ name: "cert", sds_config: ADS }] },
            },
          },
        }),
      ],
      rds: [{
        name: "routes",
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster: "web", timeout: "5s" } }],
          response_headers_to_add: [{ header: { key: "x-route-version", value: version } }],
        }],
      }],
      cds: withCluster
        ? [{ name: "web", type: "EDS", connect_timeout: "1s", eds_cluster_config: { eds_config: ADS } }]
        : [],
      eds: withCluster
        ? [{
          cluster_name: "web",
          endpoints: [{
            lb_endpoints: [{
              endpoint: {
                address: { socket_address: { address: "127.0.0.1", port_value: o.endpoint ?? w.upstreams[0]! } },
              },
            }],
          }],
        }]
        : [],
      sds: [{
        name: "cert",
        tls_certificate: {
          certificate_chain: { inline_string: pki["server_ecdsa.crt"]! },
          private_key: { inline_string: pki["server_ecdsa.key"]! },
        },
      }],
    },
  };
}

function bootstrap(cpPort: number, admin: number): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: admin } } },
    node: { id: "ferry-workers", cluster: "test" },
    dynamic_resources: {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
      },
      lds_config: { ...ADS, initial_fetch_timeout: "10s" },
      cds_config: { ...ADS, initial_fetch_timeout: "10s" },
    },
    static_resources: {
      clusters: [{
        name: "xds",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
          cluster_name: "xds",
          endpoints: [{
            lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: cpPort } } } }],
          }],
        },
      }],
    },
  };
}

/** Runs wrk (8 keep-alive connections, so the kernel spreads them over the loops) for `seconds`. */
async function wrk(url: string, seconds: number): Promise<{ requests: number; bad: number; errors: string }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c8", `-d${seconds}s`, "--timeout", "3s", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const requests = Number(text.match(/(\d+) requests in/)?.[1] ?? "0");
  const bad = Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? "0");
  const errors = text.match(/Socket errors: .*/)?.[0] ?? "";
  return { requests, bad, errors };
}

async function acked(cp: ControlPlane, type: string, version: string): Promise<void> {
  const r = await cp.waitAcked(type, version, { timeoutMs: 15_000 });
  if (!("acked" in r)) throw new Error(`${type} ${version} was NACKed: ${r.nacked}`);
}

Deno.test(
  "ferry with no --concurrency under ADS: LDS, CDS, EDS, RDS and SDS changes reach every event loop",
  itOpts,
  async (t) => {
    const ups = await Promise.all([0, 1].map((i) => startUpstream(() => new Response(`up${i}`))));
    const w: World = { http: freePort(), https: freePort(), upstreams: ups.map((u) => u.port) };
    const admin = freePort();
    const cp = await startControlPlane({ snapshot: snapshot(w, "v1") });
    // On a one-core machine the default is one loop: name two so that the forwarding is still tested.
    const flags = CORES > 1 ? [] : ["--concurrency", "2"];
    const loops = Math.max(CORES, 2);
    const ferry = await spawnFerry(
      ["--config-yaml", JSON.stringify(bootstrap(cp.grpcPort, admin)), "--drain-time-s", "1", ...flags],
      { adminPort: admin, defaultConcurrency: true, timeoutMs: 30_000 },
    );
    const http = async (n = 30) => {
      const before = await perLoop(admin, w.http);
      const rs = await spread(w.http, n);
      const after = await perLoop(admin, w.http);
      assert(loopsUsed(before, after) >= 2, `connections per loop: ${before} → ${after}`);
      return rs;
    };
    try {
      assertEquals((await stats(admin)).get("server.concurrency"), loops);
      for (const type of ["lds", "cds", "eds", "rds", "sds"]) await acked(cp, type, "v1");

      await t.step("initial LDS + RDS + CDS + EDS: every loop routes to up0 with route v1", async () => {
        const rs = await http();
        assertEquals(rs.map((r) => [r.status, r.body, r.headers["x-route-version"]]), rs.map(() => [200, "up0", "v1"]));
      });

      await t.step("a route change reaches every loop by the time it is ACKed", async () => {
        await cp.setSnapshot(snapshot(w, "v2"));
        await acked(cp, "rds", "v2");
        const rs = await http();
        assertEquals(rs.map((r) => r.headers["x-route-version"]), rs.map(() => "v2"));
      });

      await t.step("an EDS change reaches every loop", async () => {
        await cp.setSnapshot(snapshot(w, "v3", { endpoint: w.upstreams[1]! }));
        await acked(cp, "eds", "v3");
        const rs = await http();
        assertEquals(rs.map((r) => [r.body, r.headers["x-route-version"]]), rs.map(() => ["up1", "v3"]));
      });

      await t.step("SDS rotation reaches new handshakes on every loop", async () => {
        const before = await perLoop(admin, w.https);
        const one = await spread(w.https, 10, { caCerts: [pkiOne["ca_ecdsa.crt"]!] });
        assertEquals(one.map((r) => r.status), one.map(() => 200));
        await cp.setSnapshot(snapshot(w, "v4", { endpoint: w.upstreams[1]!, pki: pkiTwo }));
        await acked(cp, "sds", "v4");
        // Trusting only the new CA: a loop still on the old certificate fails the handshake.
        const two = await spread(w.https, 30, { caCerts: [pkiTwo["ca_ecdsa.crt"]!] });
        assertEquals(two.map((r) => [r.status, r.body]), two.map(() => [200, "up1"]));
        assert(loopsUsed(before, await perLoop(admin, w.https)) >= 2);
      });

      await t.step("route and EDS changes under wrk: zero failed requests across the loops", async () => {
        const before = await perLoop(admin, w.http);
        const load = wrk(`http://127.0.0.1:${w.http}/`, 3);
        for (const [i, up] of [0, 1, 0, 1].entries()) {
          await sleep(500);
          await cp.setSnapshot(snapshot(w, `v5.${i}`, { endpoint: w.upstreams[up]!, pki: pkiTwo }));
          await acked(cp, "eds", `v5.${i}`);
        }
        const r = await load;
        assert(r.requests > 100, `wrk made ${r.requests} requests`);
        assertEquals(r.bad, 0);
        assertEquals(r.errors, "");
        assert(loopsUsed(before, await perLoop(admin, w.http)) >= 2);
        const rs = await http();
        assertEquals(rs.map((x) => [x.body, x.headers["x-route-version"]]), rs.map(() => ["up1", "v5.3"]));
      });

      await t.step("a cluster removal reaches every loop: 503 everywhere", async () => {
        await cp.setSnapshot(snapshot(w, "v6", { cluster: false, pki: pkiTwo }));
        await acked(cp, "cds", "v6");
        const rs = await http();
        assertEquals(rs.map((r) => r.status), rs.map(() => 503));
        assertEquals((await stats(admin)).get("server.worker_config_update_failed") ?? 0, 0);
      });
      console.log(`RSS with ${loops} event loops under ADS: ${rssMiB(ferry.child.pid).toFixed(1)} MiB`);
      assertEquals((await ferry.stop()).code, 0);
    } finally {
      await ferry.kill();
      await cp.kill();
      for (const u of ups) await u.close();
    }
  },
);

Deno.test(
  "Server.forwardToWorkers: a change that fails on a worker is logged with the worker's number and counted; " +
    "listenerFds lists every loop's socket",
  itOpts,
  async () => {
    const raw = parseYaml(hcmBootstrap({ routes: directResponseRoutes("hi"), admin: false }));
    const registries = createRegistries();
    const server = await Server.start(parseBootstrap(raw, registries), registries, {
      drainTimeMs: 200,
      workers: { count: 1, raw, logLevel: "warn" },
    });
    const logged: string[] = [];
    const previous = setLogSink((line) => logged.push(line));
    try {
      assertEquals(server.concurrency, 2);
      const cluster = {
        name: "extra",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: { cluster_name: "extra", endpoints: [] },
      };
      server.forwardToWorkers({ kind: "cluster", name: "extra", raw: cluster, path: "cluster" });
      server.forwardToWorkers({ kind: "hosts", cluster: "nope", raw: { cluster_name: "nope", endpoints: [] } });
      await server.workersApplied();
      assertEquals(server.stats.counter("server.worker_config_update_failed").value, 1);
      const errors = logged.filter((l) => l.includes("[error]"));
      assertEquals(errors.length, 1, logged.join(""));
      assert(
        errors[0]!.includes(
          'worker 1: endpoints of cluster "nope" applied on the main thread but failed on the worker',
        ),
        errors[0],
      );

      const fds = await server.listenerFds();
      assertEquals(fds.map((loop) => loop.map((l) => l.listener)), [["test"], ["test"]]);
      // Port 0 in the bootstrap: the worker bound the main thread's port (SO_REUSEPORT), not one of its own.
      assertEquals(fds[1]![0]!.address, fds[0]![0]!.address);
      const all = fds.flatMap((loop) => loop.flatMap((l) => l.fds));
      // On the epoll engine each loop has its own socket (one process, one descriptor table).
      if (all.length > 0) assertEquals(new Set(all).size, 2, `fds: ${all}`);
    } finally {
      setLogSink(previous);
      await server.drainAndStop(0);
    }
  },
);

Deno.test("XdsManager: an update resolves (the source ACKs) only after the workers applied it", itOpts, async () => {
  // A server without workers of its own; the workers' side is a promise the test settles.
  const raw = parseYaml(hcmBootstrap({ routes: directResponseRoutes("hi"), admin: false }));
  const registries = createRegistries();
  const server = await Server.start(parseBootstrap(raw, registries), registries, { drainTimeMs: 200 });
  const forwarded: WorkerConfigOp[] = [];
  let release!: () => void;
  const applied = new Promise<void>((r) => release = r);
  const unavailable = (): never => {
    throw new Error("no wire in this test");
  };
  const manager = new XdsManager({
    dynamic: { ads: undefined, lds: undefined, cds: undefined, raw: {} },
    server: {
      stats: server.stats,
      clusterManager: server.clusterManager,
      routeConfigs: server.routeConfigs,
      secrets: server.secrets,
      staticListenerNames: server.staticListenerNames,
      staticClusterNames: server.staticClusterNames,
      addOrUpdateListener: (r, path) => server.addOrUpdateListener(r, { path, validateClusters: false }),
      validateListener: (r, path) => server.validateListener(r, path),
      removeListener: (name) => server.removeListener(name),
      forwardToWorkers: (op) => void forwarded.push(op),
      workersApplied: () => applied,
    },
    node: {},
    grpcTarget: unavailable,
    wire: {
      encodeRequest: unavailable,
      decodeResponse: unavailable,
      encodeDeltaRequest: unavailable,
      decodeDeltaResponse: unavailable,
      decodeResource: unavailable,
    },
  });
  try {
    const rc = { name: "r1", virtual_hosts: [{ name: "a", domains: ["*"], routes: [] }] };
    let done = false;
    const update = manager.onUpdate({
      typeUrl: TYPE.route,
      resources: [{ name: "r1", version: "1", raw: rc, text: JSON.stringify(rc) }],
      removed: [],
      version: "1",
    }).then(() => done = true);
    // The main thread applied it and forwarded it, in the same turn; the update waits for the workers.
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    assertEquals(forwarded.map((o) => [o.kind, "name" in o ? o.name : ""]), [["route", "r1"]]);
    assertEquals(done, false);
    release();
    await update;
    assertEquals(done, true);
  } finally {
    manager.close();
    await server.drainAndStop(0);
  }
});
