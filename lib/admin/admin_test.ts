import assert from "node:assert/strict";
import {
  type AdminContext,
  type AdminServer,
  type ClusterDescription,
  createAdminHandler,
  startAdmin,
} from "./admin.ts";
import { StatsStore } from "../observe/stats.ts";
import { getLogLevel, getLogLevels, type LogLevel, setLogLevel, setLogSink } from "../observe/log.ts";

/** A fake server: records every call. */
class FakeServer {
  state: "LIVE" | "DRAINING" | "PRE_INITIALIZING" = "LIVE";
  healthFailed = false;
  drains: { graceful: boolean; inboundOnly: boolean }[] = [];
  levels: LogLevel[] = [];
  quitCalled: Promise<void>;
  #resolveQuit!: () => void;
  stats = new StatsStore();

  constructor() {
    this.quitCalled = new Promise((r) => this.#resolveQuit = r);
    this.stats.scope("cluster.payments").counter("upstream_rq_total").inc(3);
    this.stats.scope("cluster.payments").counter("upstream_rq_200").inc(3);
    this.stats.scope("http.ingress").histogram("downstream_rq_time").record(12);
    this.stats.gauge("server.live").set(1);
    this.stats.counter("cluster.payments.upstream_cx_connect_fail");
  }

  context(): AdminContext {
    return {
      serverInfo: () => ({
        version: "ferry/0.1.0",
        state: this.state,
        hot_restart_version: "disabled",
        uptime_current_epoch: "5s",
        uptime_all_epochs: "5s",
        command_line_options: { config_path: "/etc/ferry.yaml" },
        healthcheck_failed: this.healthFailed,
      }),
      stats: () => this.stats,
      configDump: () => ({
        configs: [
          {
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            bootstrap: {
              static_resources: {
                secrets: [{
                  name: "server_cert",
                  tls_certificate: {
                    certificate_chain: { inline_string: "-----BEGIN CERTIFICATE-----" },
                    private_key: { inline_string: "-----BEGIN PRIVATE KEY-----SECRET" },
                    password: { inline_string: "hunter2" },
                  },
                }, { name: "hmac", generic_secret: { secret: { inline_bytes: "c2VjcmV0" } } }],
              },
            },
          },
          {
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            static_listeners: [{ listener: { name: "ingress" } }],
          },
          {
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            static_clusters: [{ cluster: { name: "payments" } }, { cluster: { name: "audit" } }],
          },
        ],
      }),
      clusters: (): ClusterDescription[] => [{
        name: "payments",
        addedViaApi: false,
        circuitBreakers: {
          DEFAULT: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
          HIGH: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
        },
        hosts: [
          { address: "10.0.0.1", port: 8080, weight: 1, healthFlags: "healthy", rqTotal: 7, cxActive: 2 },
          { address: "::1", port: 8081, weight: 2, healthFlags: "/failed_active_hc/failed_outlier_check" },
        ],
      }],
      listeners: () => [{ name: "ingress", address: "0.0.0.0:10000" }, { name: "v6", address: "[::]:10001" }],
      setLogLevel: (level) => {
        this.levels.push(level);
        setLogLevel(level);
        return true;
      },
      healthcheckFail: () => {
        this.healthFailed = true;
      },
      healthcheckOk: () => {
        this.healthFailed = false;
      },
      drainListeners: (opts) => {
        this.drains.push(opts);
        this.state = "DRAINING";
      },
      quit: () => this.#resolveQuit(),
      ready: () => this.state === "LIVE",
    };
  }
}

async function withAdmin(fn: (base: string, fake: FakeServer, admin: AdminServer) => Promise<void>): Promise<void> {
  const fake = new FakeServer();
  const admin = await startAdmin({ address: "127.0.0.1", port: 0, context: fake.context() });
  const prevSink = setLogSink(() => {});
  const prevLevel = getLogLevel();
  try {
    await fn(`http://127.0.0.1:${admin.port}`, fake, admin);
  } finally {
    setLogLevel(prevLevel);
    setLogSink(prevSink);
    await admin.close();
  }
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(url, init);
  return { status: r.status, body: await r.text(), type: r.headers.get("content-type") ?? "" };
}

async function curl(...args: string[]): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("/usr/bin/curl", { args: ["-s", "-w", "\n%{http_code}", ...args] }).output();
  const text = new TextDecoder().decode(out.stdout);
  const nl = text.lastIndexOf("\n");
  return { status: Number(text.slice(nl + 1)), body: text.slice(0, nl) };
}

Deno.test("startAdmin serves /ready, /server_info and the index over a real socket", async () => {
  await withAdmin(async (base, fake) => {
    assert.deepEqual(await curl(`${base}/ready`), { status: 200, body: "LIVE\n" });
    fake.state = "PRE_INITIALIZING";
    assert.deepEqual(await curl(`${base}/ready`), { status: 503, body: "PRE_INITIALIZING\n" });
    const info = await get(`${base}/server_info`);
    assert.equal(info.status, 200);
    assert.equal(info.type, "application/json");
    const j = JSON.parse(info.body);
    assert.equal(j.state, "PRE_INITIALIZING");
    assert.equal(j.hot_restart_version, "disabled");
    const index = await get(`${base}/`);
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(index.body, /<a href="\/stats">\/stats<\/a>/);
    assert.match(index.body, /<form action="\/quitquitquit" method="post">/);
    const help = await get(`${base}/help`);
    assert.match(help.body, /^admin commands are:\n/);
    assert.match(help.body, / {2}\/quitquitquit \(POST\): exit the server\n/);
  });
});

Deno.test("admin /stats serves text, json, prometheus with filter and usedonly", async () => {
  await withAdmin(async (base) => {
    const text = await curl(`${base}/stats`);
    assert.equal(text.status, 200);
    assert.match(text.body, /^cluster\.payments\.upstream_cx_connect_fail: 0\n/m);
    assert.match(text.body, /^cluster\.payments\.upstream_rq_total: 3$/m);
    assert.match(text.body, /^http\.ingress\.downstream_rq_time: P0\(nan,12\)/m);
    const used = await curl(`${base}/stats?usedonly`);
    assert.doesNotMatch(used.body, /upstream_cx_connect_fail/);
    const filtered = await curl(`${base}/stats?filter=rq_total`);
    assert.equal(filtered.body, "cluster.payments.upstream_rq_total: 3\n");
    const bad = await curl(`${base}/stats?filter=(`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /^Invalid regex/);
    const j = await get(`${base}/stats?format=json&filter=server`);
    assert.equal(j.type, "application/json");
    assert.deepEqual(JSON.parse(j.body), { stats: [{ name: "server.live", value: 1 }] });
    const prom = await get(`${base}/stats/prometheus`);
    assert.equal(prom.status, 200);
    assert.match(prom.type, /^text\/plain; version=0\.0\.4/);
    assert.match(prom.body, /^# TYPE envoy_cluster_upstream_rq_total counter$/m);
    assert.match(prom.body, /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="payments"\} 3$/m);
    assert.match(
      prom.body,
      /^envoy_http_downstream_rq_time_bucket\{envoy_http_conn_manager_prefix="ingress",le="25"\} 1$/m,
    );
    const prom2 = await get(`${base}/stats?format=prometheus&usedonly`);
    assert.doesNotMatch(prom2.body, /connect_fail/);
    assert.equal((await get(`${base}/stats?format=xml`)).status, 400);
  });
});

Deno.test("admin /config_dump redacts secrets and selects resources", async () => {
  await withAdmin(async (base) => {
    const r = await get(`${base}/config_dump`);
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes("SECRET"));
    assert.ok(!r.body.includes("hunter2"));
    assert.ok(!r.body.includes("c2VjcmV0"));
    const dump = JSON.parse(r.body);
    const secret = dump.configs[0].bootstrap.static_resources.secrets[0].tls_certificate;
    assert.deepEqual(secret, {
      certificate_chain: { inline_string: "-----BEGIN CERTIFICATE-----" },
      private_key: { inline_string: "[redacted]" },
      password: { inline_string: "[redacted]" },
    });
    const generic = dump.configs[0].bootstrap.static_resources.secrets[1].generic_secret;
    assert.deepEqual(generic, { secret: { inline_bytes: "[redacted]" } });
    const clusters = JSON.parse((await get(`${base}/config_dump?resource=static_clusters`)).body);
    assert.deepEqual(clusters.configs, [
      { "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster", cluster: { name: "payments" } },
      { "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster", cluster: { name: "audit" } },
    ]);
    assert.equal((await get(`${base}/config_dump?resource=dynamic_nothing`)).status, 404);
    const masked = JSON.parse((await get(`${base}/config_dump?mask=static_listeners`)).body);
    assert.deepEqual(masked.configs[1], {
      "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
      static_listeners: [{ listener: { name: "ingress" } }],
    });
    assert.deepEqual(masked.configs[0], { "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump" });
  });
});

Deno.test("admin /clusters and /listeners in text and json", async () => {
  await withAdmin(async (base) => {
    const text = (await curl(`${base}/clusters`)).body;
    assert.match(text, /^payments::default_priority::max_connections::1024$/m);
    assert.match(text, /^payments::added_via_api::false$/m);
    assert.match(text, /^payments::10\.0\.0\.1:8080::health_flags::healthy$/m);
    assert.match(text, /^payments::10\.0\.0\.1:8080::rq_total::7$/m);
    assert.match(text, /^payments::\[::1\]:8081::health_flags::\/failed_active_hc\/failed_outlier_check$/m);
    assert.match(text, /^payments::\[::1\]:8081::weight::2$/m);
    const j = JSON.parse((await get(`${base}/clusters?format=json`)).body);
    const hosts = j.cluster_statuses[0].host_statuses;
    assert.deepEqual(hosts[0].address, { socket_address: { address: "10.0.0.1", port_value: 8080 } });
    assert.deepEqual(hosts[0].health_status, { eds_health_status: "HEALTHY" });
    assert.deepEqual(hosts[1].health_status, {
      eds_health_status: "HEALTHY",
      failed_active_health_check: true,
      failed_outlier_check: true,
    });
    assert.deepEqual(hosts[0].stats.find((s: { name: string }) => s.name === "cx_active"), {
      name: "cx_active",
      type: "GAUGE",
      value: "2",
    });
    assert.equal((await curl(`${base}/listeners`)).body, "ingress::0.0.0.0:10000\nv6::[::]:10001\n");
    assert.deepEqual(JSON.parse((await get(`${base}/listeners?format=json`)).body), {
      listener_statuses: [
        { name: "ingress", local_address: { socket_address: { address: "0.0.0.0", port_value: 10000 } } },
        { name: "v6", local_address: { socket_address: { address: "::", port_value: 10001 } } },
      ],
    });
  });
});

Deno.test("admin mutating endpoints require POST", async () => {
  await withAdmin(async (base, fake) => {
    for (
      const path of ["/healthcheck/fail", "/healthcheck/ok", "/drain_listeners", "/quitquitquit", "/reset_counters"]
    ) {
      const r = await curl(`${base}${path}`);
      assert.equal(r.status, 405, path);
      assert.equal(r.body, "Method GET not allowed, POST required.");
    }
    assert.equal((await curl(`${base}/logging?level=debug`)).status, 405);
    assert.equal(fake.healthFailed, false);
    assert.deepEqual(fake.drains, []);
    assert.deepEqual(await curl("-X", "POST", `${base}/healthcheck/fail`), { status: 200, body: "OK\n" });
    assert.equal(fake.healthFailed, true);
    // Envoy's serverState: a LIVE server failing health checks is DRAINING, for /ready and /server_info alike.
    assert.deepEqual(await curl(`${base}/ready`), { status: 503, body: "DRAINING\n" });
    assert.equal(JSON.parse((await get(`${base}/server_info`)).body).state, "DRAINING");
    assert.deepEqual(await curl("-X", "POST", `${base}/healthcheck/ok`), { status: 200, body: "OK\n" });
    assert.equal(fake.healthFailed, false);
    assert.deepEqual(await curl(`${base}/ready`), { status: 200, body: "LIVE\n" });
    assert.equal(JSON.parse((await get(`${base}/server_info`)).body).state, "LIVE");
    assert.equal((await curl("-X", "POST", `${base}/drain_listeners?graceful&inboundonly`)).status, 200);
    assert.equal((await curl("-X", "POST", `${base}/drain_listeners`)).status, 200);
    assert.deepEqual(fake.drains, [{ graceful: true, inboundOnly: true }, { graceful: false, inboundOnly: false }]);
    assert.deepEqual(await curl(`${base}/ready`), { status: 503, body: "DRAINING\n" });
    assert.equal((await curl("-X", "POST", `${base}/reset_counters`)).status, 200);
    assert.equal(fake.stats.counter("cluster.payments.upstream_rq_total").value, 0);
    assert.deepEqual(await curl("-X", "POST", `${base}/quitquitquit`), { status: 200, body: "OK\n" });
    await fake.quitCalled;
  });
});

Deno.test("admin /logging lists and changes levels", async () => {
  await withAdmin(async (base, fake) => {
    setLogLevel("info");
    const list = await curl(`${base}/logging`);
    assert.equal(list.status, 200);
    assert.match(list.body, /^active loggers:\n/);
    assert.match(list.body, /^ {2}upstream: info$/m);
    const set = await curl("-X", "POST", `${base}/logging?level=debug`);
    assert.equal(set.status, 200);
    assert.match(set.body, /^ {2}upstream: debug$/m);
    assert.deepEqual(fake.levels, ["debug"]);
    assert.equal(getLogLevels().admin, "debug");
    const one = await curl("-X", "POST", `${base}/logging?router=trace`);
    assert.match(one.body, /^ {2}router: trace$/m);
    assert.match(one.body, /^ {2}http: debug$/m);
    const paths = await curl("-X", "POST", `${base}/logging?paths=http:warn,hc:error`);
    assert.match(paths.body, /^ {2}http: warn$/m);
    assert.match(paths.body, /^ {2}hc: error$/m);
    const bad = await curl("-X", "POST", `${base}/logging?level=verbose`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /^error: unknown logger level "verbose"/);
    assert.deepEqual(fake.levels, ["debug"]);
  });
});

Deno.test("admin answers 404 with the endpoint list, and /memory, /runtime", async () => {
  await withAdmin(async (base) => {
    const r = await curl(`${base}/nope`);
    assert.equal(r.status, 404);
    assert.match(r.body, /^invalid path\. admin commands are:\n/);
    assert.match(r.body, / {2}\/stats\/prometheus: print server stats in prometheus format\n/);
    const mem = JSON.parse((await get(`${base}/memory`)).body);
    assert.ok(Number(mem.allocated) > 0);
    assert.ok(Number(mem.total_physical_bytes) > 0);
    assert.deepEqual(JSON.parse((await get(`${base}/runtime`)).body), { layers: ["admin"], entries: {} });
    assert.equal((await get(`${base}/hot_restart_version`)).body, "disabled\n");
    assert.equal((await get(`${base}/stats`, { method: "DELETE" })).status, 405);
  });
});

Deno.test("admin turns a throwing context into a 500, and accepts merged snapshots", async () => {
  const fake = new FakeServer();
  const worker = new StatsStore();
  worker.counter("cluster.payments.upstream_rq_total").inc(4);
  const merged = new StatsStore();
  merged.merge(fake.stats.snapshot());
  merged.merge(worker.snapshot());
  const handler = createAdminHandler({
    ...fake.context(),
    stats: () => Promise.resolve(merged.snapshot()),
    clusters: () => {
      throw new Error("cluster manager is gone");
    },
  });
  const prev = setLogSink(() => {});
  try {
    const r = await handler(new Request("http://admin/clusters"));
    assert.equal(r.status, 500);
    assert.equal(await r.text(), "error: cluster manager is gone\n");
    const s = await handler(new Request("http://admin/stats?filter=upstream_rq_total"));
    assert.equal(await s.text(), "cluster.payments.upstream_rq_total: 7\n");
    const reset = await handler(new Request("http://admin/reset_counters", { method: "POST" }));
    assert.equal(reset.status, 501);
  } finally {
    setLogSink(prev);
  }
});

Deno.test("startAdmin rejects an address in use with a message naming it", async () => {
  await withAdmin(async (_base, fake, admin) => {
    await assert.rejects(
      startAdmin({ address: "127.0.0.1", port: admin.port, context: fake.context() }),
      (e: Error) => e.message.startsWith(`admin: cannot listen on 127.0.0.1:${admin.port}: `),
    );
  });
});
