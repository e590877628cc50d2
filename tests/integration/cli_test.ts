/**
 * The command line: validate mode, config errors naming the field path, the embedded default, and a graceful
 * SIGTERM drain of a real process.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { defaultBootstrap } from "../../lib/config/default.ts";
import {
  catchAllRoute,
  curl,
  directResponseRoutes,
  hcmBootstrap,
  itOpts,
  rawRequest,
  readAll,
  runFerry,
  spawnFerry,
  startFerry,
  startRawServer,
  startUpstream,
  staticCluster,
} from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";

async function validate(yaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return await runFerry(["--mode", "validate", "--config-yaml", yaml]);
}

const LISTENER = (filters: string) => `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
${filters}`;

const HCM = (extra: string) => `
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          route_config: { virtual_hosts: [{ name: v, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: c } }] }] }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
${extra}`;

Deno.test("cli --mode validate prints OK for a good config and exits 0", itOpts, async () => {
  const r = await runFerry(["--mode", "validate", "-c", new URL("../../examples/dev.yaml", import.meta.url).pathname]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^OK/);
});

Deno.test("cli config errors are one line naming the field path, exit 1", itOpts, async () => {
  const cases: [string, string][] = [
    [
      `static_resources:\n  clusters:\n  - { name: a, connect_timeout: 1s }\n  - { name: b, lb_policy: CLUSTER_PROVIDED }`,
      `config: static_resources.clusters[1].lb_policy: "CLUSTER_PROVIDED" is not supported`,
    ],
    [
      `static_resources:\n  clusters:\n  - { name: a, bogus_field: 1 }`,
      `config: static_resources.clusters[0].bogus_field: unknown field`,
    ],
    [
      `static_resources:\n  clusters:\n  - { name: a, connect_timeout: five }`,
      `config: static_resources.clusters[0].connect_timeout:`,
    ],
    [
      LISTENER(HCM("          codec_type: HTTP3")),
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.codec_type: "HTTP3" is not supported`,
    ],
    [
      LISTENER(HCM("          stream_idle_timeout: -1s")),
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stream_idle_timeout: "-1s" must not be negative`,
    ],
    [
      `admin: { address: { socket_address: { address: 127.0.0.1 } } }`,
      `config: admin.address.socket_address.port_value: is required`,
    ],
    [`dynamic_resources: { ads_config: {} }`, `config: dynamic_resources.ads_config.api_type: is required`],
    [
      `dynamic_resources: { ads_config: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: xds } }] } }`,
      `config: dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown cluster "xds" (an xDS server must be reached through a static cluster)`,
    ],
    [
      `static_resources: { listeners: [ { address: { socket_address: { address: 127.0.0.1, port_value: 1 } }, filter_chains: [] } ] }`,
      `config: static_resources.listeners[0].filter_chains: must have at least one entry`,
    ],
    [
      LISTENER(HCM("")) + `\n  clusters: [{ name: other, load_assignment: { cluster_name: other, endpoints: [] } }]`,
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "c"`,
    ],
    [
      LISTENER(`
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          route_config:
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
              - { match: { prefix: "/d" }, direct_response: { status: 200 } }
              - { match: { prefix: "/" }, route: { weighted_clusters: { clusters: [{ name: c, weight: 1 }, { name: w, weight: 1 }] } } }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]`) +
      `\n  clusters: [{ name: c, load_assignment: { cluster_name: c, endpoints: [] } }]`,
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[1].name: unknown cluster "w"`,
    ],
    [
      LISTENER(`
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: nope }`),
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.cluster: unknown cluster "nope"`,
    ],
    [
      LISTENER(`
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          weighted_clusters: { clusters: [{ name: nope, weight: 1 }] }`),
      `config: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.weighted_clusters.clusters[0].name: unknown cluster "nope"`,
    ],
  ];
  for (const [yaml, want] of cases) {
    const r = await validate(yaml);
    assertEquals(r.code, 1, `${want}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const line = r.stderr.trim();
    assert(!line.includes("\n"), `more than one line: ${line}`);
    assert(line.startsWith(want), `want ${JSON.stringify(want)}, got ${JSON.stringify(line)}`);
  }
});

Deno.test("cli --mode validate parses layered_runtime (no warning) and names a bad layer's path", itOpts, async () => {
  const r = await validate(
    `layered_runtime: { layers: [{ name: s, static_layer: { a: 1 } }, { name: a, admin_layer: {} }] }`,
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr.trim(), "");
  assertMatch(r.stdout, /^OK/);
  const bad = await validate(`layered_runtime: { layers: [{ name: d, disk_layer: { symlink_root: /x } }] }`);
  assertEquals(bad.code, 1);
  assertMatch(bad.stderr, /layered_runtime\.layers\[0\]\.disk_layer/);
});

Deno.test("cli static secrets: a bad secret or reference is one line naming its path", itOpts, async () => {
  const ref = (common: string) =>
    `static_resources:
  secrets:
  - { name: ca, validation_context: { trusted_ca: { filename: /nonexistent } } }
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context: ${common}
      filters: []`;
  const at = "config: static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context";
  const cases: Array<[string, string]> = [
    [`static_resources: { secrets: [{ name: s }] }`, "config: static_resources.secrets[0]: one of tls_certificate"],
    [
      `static_resources: { secrets: [{ name: s, generic_secret: {} }] }`,
      "config: static_resources.secrets[0].generic_secret: is not supported",
    ],
    [
      `static_resources: { secrets: [{ name: s, validation_context: {} }, { name: s, validation_context: {} }] }`,
      'config: static_resources.secrets[1].name: secret "s" is already defined at static_resources.secrets[0]',
    ],
    [
      ref(`{ tls_certificate_sds_secret_configs: [{ name: nope }] }`),
      `${at}.tls_certificate_sds_secret_configs[0].name: no secret named "nope" in static_resources.secrets`,
    ],
    [
      ref(`{ tls_certificate_sds_secret_configs: [{ name: ca }] }`),
      `${at}.tls_certificate_sds_secret_configs[0].name: secret "ca" (static_resources.secrets[0]) is a ` +
      "validation_context, not a tls_certificate",
    ],
    [
      ref(`{ tls_certificate_sds_secret_configs: [{ name: ca, sds_config: { ads: {} } }] }`),
      `${at}.tls_certificate_sds_secret_configs[0].sds_config: is not supported`,
    ],
  ];
  for (const [yaml, want] of cases) {
    const r = await validate(yaml);
    assertEquals(r.code, 1, yaml);
    const line = r.stderr.trim();
    assert(!line.includes("\n"), `more than one line: ${line}`);
    assert(line.startsWith(want), `want ${JSON.stringify(want)}, got ${JSON.stringify(line)}`);
  }
});

Deno.test("cli validate_clusters: false lets a route name a cluster that is not defined", itOpts, async () => {
  const yaml = LISTENER(HCM("")).replace("route_config: { ", "route_config: { validate_clusters: false, ");
  const r = await validate(yaml);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^OK/);
});

Deno.test("cli rejects unknown flags and bad YAML clearly", itOpts, async () => {
  const a = await runFerry(["--no-such-flag"]);
  assertEquals(a.code, 2);
  assertMatch(a.stderr, /no-such-flag/);
  const b = await validate("static_resources: [");
  assertEquals(b.code, 1);
  assertMatch(b.stderr, /not valid YAML or JSON/);
  const c = await runFerry(["-c", "/nonexistent/ferry.yaml", "--mode", "validate"]);
  assertEquals(c.code, 1);
  assertMatch(c.stderr, /cannot read \/nonexistent\/ferry.yaml/);
});

Deno.test("the embedded default answers a page that says Ferry is up and where the admin is", itOpts, async () => {
  const d = defaultBootstrap() as {
    admin: { address: { socket_address: { port_value: number } } };
    static_resources: { listeners: { address: { socket_address: { port_value: number } } }[] };
  };
  d.admin.address.socket_address.port_value = 0;
  d.static_resources.listeners[0]!.address.socket_address.port_value = 0;
  const f = await startFerry(d);
  try {
    const r = await curl(`http://127.0.0.1:${f.port()}/`);
    assertEquals(r.status, 200);
    assertMatch(r.body, /Ferry is up/);
    assertMatch(r.body, /127\.0\.0\.1:9901/);
    const ready = await curl(`${f.adminUrl}/ready`);
    assertEquals(ready.status, 200);
  } finally {
    await f.stop();
  }
});

Deno.test("a listener that cannot bind fails start-up naming the listener", itOpts, async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const r = await runFerry([
      "--config-yaml",
      `
static_resources:
  listeners:
  - name: busy_one
    address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c }
  clusters: [{ name: c, load_assignment: { cluster_name: c, endpoints: [] } }]`,
    ]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /listener "busy_one": cannot bind 127\.0\.0\.1:\d+/);
  } finally {
    taken.close();
  }
});

Deno.test("SIGTERM drains: in-flight requests finish, new connections are refused, exit 0", itOpts, async () => {
  // An upstream that answers after 600 ms.
  const up = startRawServer(async (c) => {
    await c.read(new Uint8Array(4096));
    await new Promise((r) => setTimeout(r, 600));
    await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"));
    c.close();
  });
  const yaml = `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
${HCM("")}
  clusters:
  - name: c
    load_assignment: { cluster_name: c, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${up.port} } } } }] }] }`;
  const ferry = await spawnFerry(["--config-yaml", yaml, "--drain-time-s", "5"]);
  try {
    // Find the bound port in the log.
    const port = Number((await ferry.waitForLog(/accepting on 127\.0\.0\.1:(\d+)/))[1]);
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 100));
    const stopped = ferry.stop();
    const res = await readAll(c, 2000);
    c.close();
    assertMatch(res, /^HTTP\/1\.1 200 OK/);
    assertMatch(res, /connection: close/i);
    assertMatch(res, /slow$/);
    assertEquals((await stopped).code, 0);
  } finally {
    await ferry.kill();
    up.close();
  }
});

Deno.test(
  "--concurrency 2 serves one port from two event loops and the admin API adds up their stats",
  itOpts,
  async () => {
    const port = freePort();
    const admin = freePort();
    const routes = directResponseRoutes("hi");
    const ferry = await spawnFerry(
      ["--concurrency", "2", "--drain-time-s", "1", "--config-yaml", hcmBootstrap({ routes, port, adminPort: admin })],
      { adminPort: admin },
    );
    try {
      await ferry.waitForLog("worker thread(s) started");
      // New connections each time, so SO_REUSEPORT spreads them over both event loops.
      for (let i = 0; i < 40; i++) assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "hi");
      const stats = (await curl(`http://127.0.0.1:${admin}/stats?filter=^http\\.test\\.downstream_rq_total$`)).body;
      assertEquals(stats.trim(), "http.test.downstream_rq_total: 40");
      assertEquals((await ferry.stop()).code, 0);
    } finally {
      await ferry.kill();
    }
  },
);

for (const io of ["epoll", "deno"] as const) {
  Deno.test(
    `socket engine ${io}: HTTP and TCP proxying, keep-alive and a refused upstream, over real sockets`,
    itOpts,
    async () => {
      const up = await startUpstream((r) => new Response(`from ${r.url.pathname}`));
      const dead = freePort();
      const [http, tcp, deadTcp] = [freePort(), freePort(), freePort()];
      const tcpListener = (name: string, port: number, cluster: string) => `
  - name: ${name}
    address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: ${name}
          cluster: ${cluster}`;
      const yaml = hcmBootstrap({
        port: http,
        routes: catchAllRoute("{ cluster: c }"),
        clusters: [staticCluster("c", [up.port]), staticCluster("gone", [dead])].join("\n"),
      }).replace(
        "  clusters:",
        `${tcpListener("tcp", tcp, "c")}${tcpListener("dead_tcp", deadTcp, "gone")}\n  clusters:`,
      );
      const ferry = await spawnFerry(["--config-yaml", yaml, "--drain-time-s", "1"], {
        env: io === "deno" ? { FERRY_IO: "deno" } : {},
      });
      try {
        // The start-up log names the engine of each listener.
        await ferry.waitForLog(new RegExp(`listener "dead_tcp" accepting on 127\\.0\\.0\\.1:${deadTcp} \\(${io}\\)`));
        assertMatch(ferry.stderr, new RegExp(`listener "test" accepting on 127\\.0\\.0\\.1:${http} \\(${io}\\)`));
        // Two requests on one keep-alive connection (pipelined), answered in order, then through the TCP proxy.
        const two = await rawRequest(http, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        assertMatch(two, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nfrom \/aHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nfrom \/b$/);
        const t = await curl(`http://127.0.0.1:${tcp}/through-tcp`);
        assertEquals(t.body, "from /through-tcp");
        // A large body both ways: integrity through the engine's partial writes.
        const bigFile = await Deno.makeTempFile();
        const big = "0123456789abcdef".repeat(192 * 1024);
        await Deno.writeTextFile(bigFile, big);
        try {
          const posted = await curl(`http://127.0.0.1:${tcp}/post`, ["--data-binary", `@${bigFile}`]);
          assertEquals(posted.status, 200);
          assert(up.requests.at(-1)?.body === big, "the 3 MiB body arrived intact");
        } finally {
          await Deno.remove(bigFile);
        }
        // The TCP proxy to a refused port closes the client's connection, and Ferry carries on.
        const refused = await rawRequest(deadTcp, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 300);
        assertEquals(refused, "");
        assertEquals((await curl(`http://127.0.0.1:${http}/after`)).body, "from /after");
        assertEquals((await ferry.stop()).code, 0);
      } finally {
        await ferry.kill();
        await up.close();
      }
    },
  );
}

for (const io of ["epoll", "deno"] as const) {
  Deno.test(
    `socket engine ${io}: out of descriptors, accepts wait and resume; open connections keep being served`,
    itOpts,
    async () => {
      const port = freePort();
      const ferry = await spawnFerry(
        [
          "--drain-time-s",
          "1",
          "--config-yaml",
          hcmBootstrap({ routes: directResponseRoutes("hi"), port, admin: false }),
        ],
        io === "deno" ? { env: { FERRY_IO: "deno" } } : {},
      );
      const conns: Deno.TcpConn[] = [];
      const ask = async (c: Deno.TcpConn, ms: number): Promise<string> => {
        await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        return await readAll(c, ms);
      };
      try {
        await ferry.waitForLog(/accepting on/);
        // Room for about 20 more descriptors than the process holds at rest.
        const pid = ferry.child.pid;
        const inUse = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
        const limit = await new Deno.Command("prlimit", { args: ["--pid", String(pid), `--nofile=${inUse + 20}`] })
          .output();
        assert(limit.success, new TextDecoder().decode(limit.stderr));
        // More connections than descriptors: the kernel completes every handshake, Ferry accepts what it can.
        for (let i = 0; i < 40; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        const first = await ask(conns[0]!, 300);
        assertMatch(first, /^HTTP\/1\.1 200 OK[^]*hi$/);
        await ferry.waitForLog(/listener "test": accept failed: (accept: )?Too many open files/);
        // The last ones wait in the backlog, unanswered, while the process stays up.
        const waiting = conns.slice(-5);
        const silent = await Promise.all(waiting.map((c) => ask(c, 300)));
        assertEquals(silent, ["", "", "", "", ""]);
        assertMatch(await ask(conns[1]!, 300), /^HTTP\/1\.1 200 OK[^]*hi$/);
        // Free descriptors: the waiting connections are accepted and their requests answered.
        for (const c of conns.slice(2, 30)) c.close();
        const answered = await Promise.all(waiting.map((c) => readAll(c, 1500)));
        for (const a of answered) assertMatch(a, /^HTTP\/1\.1 200 OK[^]*hi$/);
        assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "hi");
      } finally {
        for (const c of conns) {
          try {
            c.close();
          } catch { /* closed above */ }
        }
        await ferry.kill();
      }
    },
  );
}
