/**
 * The admin API, access logs and tcp_proxy on a real server, driven by curl and raw sockets.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  catchAllRoute,
  curl,
  hcmBootstrap,
  itOpts,
  readAll,
  startFerry,
  startRawServer,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";
import { flushAccessLogs } from "../../lib/observe/access_log.ts";

Deno.test(
  "admin: stats, prometheus, clusters, listeners, config_dump (redacted), logging, healthcheck",
  itOpts,
  async () => {
    const up = await startUpstream();
    const f = await startFerry(hcmBootstrap({
      routes: catchAllRoute("{ cluster: up }"),
      clusters: staticCluster("up", [up.port]),
    }));
    try {
      assertEquals((await curl(`http://127.0.0.1:${f.port()}/x`)).status, 200);
      const text = (await curl(`${f.adminUrl}/stats`)).body;
      for (
        const name of [
          `listener.127.0.0.1_0.downstream_cx_total: 1`,
          "http.test.downstream_rq_total: 1",
          "http.test.downstream_rq_2xx: 1",
          "cluster.up.upstream_rq_total: 1",
          "cluster.up.upstream_rq_2xx: 1",
          "cluster.up.upstream_cx_total: 1",
          "cluster.up.membership_total: 1",
        ]
      ) assert(text.includes(name), `/stats lacks ${name}`);
      const filtered = (await curl(`${f.adminUrl}/stats?filter=^cluster\\.up\\.upstream_rq_2xx$`)).body.trim();
      assertEquals(filtered, "cluster.up.upstream_rq_2xx: 1");
      const prom = (await curl(`${f.adminUrl}/stats/prometheus`)).body;
      assertMatch(prom, /envoy_cluster_upstream_rq_total\{envoy_cluster_name="up"\} 1/);
      assertMatch(prom, /# TYPE envoy_http_downstream_rq_total counter/);
      const clusters = (await curl(`${f.adminUrl}/clusters`)).body;
      assertMatch(clusters, new RegExp(`up::127\\.0\\.0\\.1:${up.port}::health_flags::healthy`));
      const listeners = JSON.parse((await curl(`${f.adminUrl}/listeners?format=json`)).body);
      assertEquals(listeners.listener_statuses[0].name, "test");
      assertEquals(listeners.listener_statuses[0].local_address.socket_address.port_value, f.port());
      const dump = (await curl(`${f.adminUrl}/config_dump`)).body;
      assertMatch(dump, /BootstrapConfigDump/);
      assertMatch(dump, /"stat_prefix": ?"test"/);
      // Mutations need POST, as in Envoy.
      assertEquals((await curl(`${f.adminUrl}/logging?level=debug`)).status, 405);
      assertEquals((await curl(`${f.adminUrl}/logging?level=warn`, ["-X", "POST"])).status, 200);
      // As Envoy: failing health checks makes the server DRAINING (Server::Utility::serverState), so /ready is 503
      // with that state as text, and /server_info says so; requests are still served.
      assertEquals((await curl(`${f.adminUrl}/healthcheck/fail`, ["-X", "POST"])).status, 200);
      const notReady = await curl(`${f.adminUrl}/ready`);
      assertEquals([notReady.status, notReady.body], [503, "DRAINING\n"]);
      assertEquals(JSON.parse((await curl(`${f.adminUrl}/server_info`)).body).state, "DRAINING");
      assertEquals((await curl(`http://127.0.0.1:${f.port()}/x`)).status, 200);
      assertEquals((await curl(`${f.adminUrl}/healthcheck/ok`, ["-X", "POST"])).status, 200);
      const ready = await curl(`${f.adminUrl}/ready`);
      assertEquals([ready.status, ready.body], [200, "LIVE\n"]);
      const info = JSON.parse((await curl(`${f.adminUrl}/server_info`)).body);
      assertEquals(info.state, "LIVE");
    } finally {
      await f.stop();
      await up.close();
    }
  },
);

Deno.test("admin: config_dump redacts inline secrets", itOpts, async () => {
  // A direct_response body in the config is not a secret; a field named like one is.
  const f = await startFerry(hcmBootstrap({
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/" }
    direct_response: { status: 200, body: { inline_string: visible-body } }`,
  }));
  try {
    const dump = (await curl(`${f.adminUrl}/config_dump`)).body;
    assertMatch(dump, /visible-body/);
    assert(!/"private_key":\s*\{\s*"inline_string"/.test(dump));
  } finally {
    await f.stop();
  }
});

Deno.test("admin: drain_listeners stops accepting and quitquitquit stops the server", itOpts, async () => {
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    direct_response: { status: 200 }`,
  }));
  const port = f.port();
  assertEquals((await curl(`http://127.0.0.1:${port}/`)).status, 200);
  assertEquals((await curl(`${f.adminUrl}/drain_listeners`, ["-X", "POST"])).status, 200);
  const r = await curl(`http://127.0.0.1:${port}/`);
  assertEquals(r.status, 0, "the listener still accepted after drain_listeners");
  assertEquals((await curl(`${f.adminUrl}/quitquitquit`, ["-X", "POST"])).status, 200);
  assertEquals(await f.server.exited, 0);
});

Deno.test("access logs: Envoy's default format and a JSON format, to files", itOpts, async () => {
  const up = await startUpstream(() => new Response("body!", { status: 201 }));
  const dir = await Deno.makeTempDir();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: `access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${dir}/text.log
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${dir}/json.log
    log_format:
      json_format: { code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%", up: "%UPSTREAM_HOST%", flags: "%RESPONSE_FLAGS%", bytes: "%BYTES_SENT%" }`,
  }));
  try {
    assertEquals((await curl(`http://127.0.0.1:${f.port()}/logged?q=1`, ["-A", "test-agent"])).status, 201);
    await flushAccessLogs();
    const text = await Deno.readTextFile(`${dir}/text.log`);
    assertMatch(
      text,
      new RegExp(
        `^\\[\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\] "GET /logged\\?q=1 HTTP/1\\.1" 201 - 0 5 \\d+ \\d+ "-" "test-agent" "[0-9a-f-]{36}" "127\\.0\\.0\\.1:\\d+" "127\\.0\\.0\\.1:${up.port}"\\n$`,
      ),
    );
    const j = JSON.parse(await Deno.readTextFile(`${dir}/json.log`));
    assertEquals(j, { code: 201, path: "/logged?q=1", up: `127.0.0.1:${up.port}`, flags: "-", bytes: 5 });
  } finally {
    await f.stop();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "tcp_proxy: bytes both ways, half-close, stats, and a refused upstream closes the client",
  itOpts,
  async () => {
    // An upstream that echoes upper-cased until the client half-closes, then says bye and closes.
    const echo = startRawServer(async (c) => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        await c.write(new TextEncoder().encode(new TextDecoder().decode(buf.subarray(0, n)).toUpperCase()));
      }
      await c.write(new TextEncoder().encode("BYE"));
      c.close();
    });
    const dead = freePort();
    const f = await startFerry(`
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
static_resources:
  listeners:
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: echo }
  - name: tcp_dead
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: d, cluster: dead }
  clusters:
${staticCluster("echo", [echo.port]).split("\n").map((x) => "  " + x).join("\n")}
${staticCluster("dead", [dead]).split("\n").map((x) => "  " + x).join("\n")}
`);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port("tcp") });
      await c.write(new TextEncoder().encode("hello "));
      assertEquals(await readAll(c, 300), "HELLO ");
      const big = "x".repeat(200_000);
      await c.write(new TextEncoder().encode(big));
      let got = "";
      while (got.length < big.length) {
        const part = await readAll(c, 500);
        if (part === "") break;
        got += part;
      }
      assertEquals(got.length, big.length);
      await c.closeWrite();
      assertEquals(await readAll(c, 1000), "BYE");
      c.close();
      assertEquals(await stat(f, "tcp.t.downstream_cx_total"), 1);
      const d = await Deno.connect({ hostname: "127.0.0.1", port: f.port("tcp_dead") });
      assertEquals(await readAll(d, 2000), "");
      d.close();
      assertEquals(await stat(f, "cluster.dead.upstream_cx_connect_fail"), 1);
    } finally {
      await f.stop();
      echo.close();
    }
  },
);
