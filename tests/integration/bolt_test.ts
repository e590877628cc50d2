/**
 * Bolt (SOFARPC) end to end: `sofa-rpc-node` consumers → Ferry's RPC proxy → `sofa-rpc-node` providers, all real
 * processes run with `node` (peers in `tests/integration/rpc/`, installed by `.ci/run` or here with `npm ci`).
 * Covers 10,000 calls at concurrency 100 over a few upstream connections with every answer matched to its caller,
 * routing by service and by version with access logs, no route, an upstream killed under load (retried to the other host, never a
 * hang), route and frame timeouts answered as Bolt TIMEOUT, heartbeats answered by Ferry, malformed frames
 * closing only their own connection, v2 frames with CRC32, circuit-breaker overflow, and Bolt plus HTTP on one
 * `AUTO` port.
 */
import { assert, assertEquals } from "../assert.ts";
import { BoltDecoder } from "../../codecs/bolt/decoder.ts";
import type { BoltFrame } from "../../codecs/bolt/types.ts";
import { itOpts, sleep, startFerry, stat, type TestFerry } from "./_harness.ts";
import { FILE_ACCESS_LOG_TYPE, flushAccessLogs } from "../../lib/observe/access_log.ts";
import { boltCalls, type BoltProvider, startBoltProvider } from "../helpers/bolt_peers.ts";
import { boltFrame } from "../helpers/bolt_frames.ts";

function config(opts: {
  protocol?: string;
  routes: string;
  clusters: string;
  extra?: string;
}): string {
  return `
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: rpc
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: ferry.filters.network.rpc_proxy
        typed_config:
          "@type": type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy
          stat_prefix: rpc_in
          protocol: ${opts.protocol ?? "BOLT"}
${opts.extra ?? ""}
          route_config:
            name: rpc
            virtual_hosts:
${opts.routes}
  clusters:
${opts.clusters}
`;
}

function cluster(name: string, ports: number[], extra = ""): string {
  const eps = ports.map((p) =>
    `        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`
  ).join("\n");
  return `
  - name: ${name}
    connect_timeout: 1s
${extra}
    load_assignment:
      cluster_name: ${name}
      endpoints:
      - lb_endpoints:
${eps}`;
}

/** Sends `bytes` on a fresh connection; what came back before the peer closed or 1 s of silence, and whether it closed. */
async function raw(port: number, bytes: Uint8Array): Promise<{ got: Uint8Array; closed: boolean }> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(bytes);
  const chunks: number[] = [];
  const buf = new Uint8Array(4096);
  let closed = false;
  for (;;) {
    const t = setTimeout(() => {
      try {
        c.close();
      } catch { /* closed */ }
    }, 1000);
    let n: number | null;
    try {
      n = await c.read(buf);
    } catch {
      n = null;
      clearTimeout(t);
      break;
    }
    clearTimeout(t);
    if (n === null) {
      closed = true;
      break;
    }
    chunks.push(...buf.subarray(0, n));
  }
  try {
    c.close();
  } catch { /* closed */ }
  return { got: new Uint8Array(chunks), closed };
}

/** `config` routes: one virtual host "all" (domains `*`) whose one route takes prefix "/" to `route`. */
function allTo(route = "{ cluster: echo }"): string {
  return `
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: ${route}`;
}

/**
 * Starts a provider per `[name, services]` and Ferry from `yaml(their ports)`, runs `body`, then stops Ferry and
 * kills the providers whatever happened.
 */
async function withFerry(
  providers: readonly (readonly [name: string, services: string])[],
  yaml: (ports: number[]) => string,
  body: (ferry: TestFerry, providers: BoltProvider[]) => Promise<void>,
): Promise<void> {
  const started: BoltProvider[] = [];
  let ferry: TestFerry | undefined;
  try {
    for (const [name, services] of providers) started.push(await startBoltProvider(name, services));
    ferry = await startFerry(yaml(started.map((p) => p.port)));
    await body(ferry, started);
  } finally {
    await ferry?.stop();
    for (const p of started) await p.kill();
  }
}

/** One provider "p" of com.ferry.Echo 1.0. */
const ONE_ECHO = [["p", "com.ferry.Echo:1.0"]] as const;
/** Two providers "p1", "p2" of com.ferry.Echo 1.0. */
const TWO_ECHO = [["p1", "com.ferry.Echo:1.0"], ["p2", "com.ferry.Echo:1.0"]] as const;

Deno.test(
  "bolt: 10,000 sofa-rpc-node calls at concurrency 100 through Ferry, answers matched, few upstream connections",
  itOpts,
  async () => {
    await withFerry(
      TWO_ECHO,
      (ports) => config({ routes: allTo(), clusters: cluster("echo", ports) }),
      async (ferry) => {
        const r = await boltCalls(ferry.port(), { count: 10_000, concurrency: 100 });
        assertEquals([r.ok, r.mismatched, r.errors], [10_000, 0, 0], JSON.stringify(r.messages));
        assert((r.byProvider["p1"] ?? 0) > 0 && (r.byProvider["p2"] ?? 0) > 0, JSON.stringify(r.byProvider));
        const cx = await stat(ferry, "cluster.echo.upstream_cx_total");
        assert(cx !== undefined && cx >= 2 && cx <= 4, `upstream connections ${cx}`);
        assertEquals(await stat(ferry, "rpc_in.bolt.request"), 10_000);
        assertEquals(await stat(ferry, "rpc_in.bolt.response.success"), 10_000);
        assertEquals(await stat(ferry, "rpc_in.bolt.request_active"), 0);
      },
    );
  },
);

Deno.test(
  "bolt: routing by service and by version to different providers; no route is NO_PROCESSOR",
  itOpts,
  async () => {
    const accessLog = `${await Deno.makeTempDir({ prefix: "ferry-bolt-" })}/access.log`;
    const providers = [["v1", "com.ferry.Echo:1.0"], ["v2", "com.ferry.Echo:2.0"], [
      "other",
      "com.ferry.Other:1.0",
    ]] as const;
    const yaml = ([v1, v2, other]: number[]) =>
      config({
        extra: `          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": ${FILE_ACCESS_LOG_TYPE}
              path: ${accessLog}
              log_format:
                text_format_source:
                  inline_string: "%PROTOCOL% %REQ(SERVICE)% %REQ(METHOD)% %RESPONSE_CODE% %RESP(X-BOLT-STATUS)% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER%\\n"`,
        routes: `
            - name: echo
              domains: ["com.ferry.Echo"]
              routes:
              - match: { prefix: "/", headers: [{ name: version, string_match: { exact: "2.0" } }] }
                route: { cluster: v2 }
              - match: { prefix: "/" }
                route: { cluster: v1 }
            - name: other
              domains: ["*"]
              routes:
              - match: { prefix: "/", headers: [{ name: service, string_match: { exact: "com.ferry.Other:1.0" } }] }
                route: { cluster: other }`,
        clusters: cluster("v1", [v1!]) + cluster("v2", [v2!]) + cluster("other", [other!]),
      });
    await withFerry(providers, yaml, async (ferry) => {
      const port = ferry.port();
      const [a, b, c, none] = await Promise.all([
        boltCalls(port, { version: "1.0", count: 200, concurrency: 20 }),
        boltCalls(port, { version: "2.0", count: 200, concurrency: 20 }),
        boltCalls(port, { iface: "com.ferry.Other", count: 200, concurrency: 20 }),
        boltCalls(port, { iface: "com.ferry.Missing", count: 5, concurrency: 1 }),
      ]);
      assertEquals(a.byProvider, { v1: 200 });
      assertEquals(b.byProvider, { v2: 200 });
      assertEquals(c.byProvider, { other: 200 });
      assertEquals(none.errors, 5);
      assert(none.messages[0]!.includes("ferry: no route (service com.ferry.Missing:1.0)"), none.messages[0]);
      assertEquals(await stat(ferry, "rpc_in.bolt.response.no_processor"), 5);
      await flushAccessLogs();
      const lines = (await Deno.readTextFile(accessLog)).trim().split("\n");
      assertEquals(lines.length, 605);
      assert(lines.includes("Bolt com.ferry.Echo:2.0 echo 200 0 - v2"), lines.slice(0, 3).join("|"));
      assert(lines.includes("Bolt com.ferry.Missing:1.0 echo 404 6 NR -"), lines.slice(0, 3).join("|"));
    });
  },
);

Deno.test(
  "bolt: an upstream killed under load: calls retried to the other host, none hang; then errors are Bolt errors",
  itOpts,
  async () => {
    const yaml = (ports: number[]) =>
      config({
        routes: allTo(`
                  cluster: echo
                  retry_policy:
                    retry_on: "reset,connect-failure"
                    num_retries: 3
                    retry_host_predicate: [{ name: envoy.retry_host_predicates.previous_hosts }]
                    host_selection_retry_max_attempts: 5`),
        // Envoy's default of 3 concurrent retries per cluster would fail most of 100 calls in flight.
        clusters: cluster("echo", ports, "    circuit_breakers: { thresholds: [{ max_retries: 1000 }] }"),
      });
    await withFerry(TWO_ECHO, yaml, async (ferry, [p1, p2]) => {
      const port = ferry.port();
      const running = boltCalls(port, { method: "slow", arg: "20", count: 5000, concurrency: 100, timeoutMs: 10_000 });
      // Killed once both hosts have served calls for a while.
      for (let i = 0; i < 200 && (await stat(ferry, "rpc_in.bolt.response.success") ?? 0) < 1000; i++) await sleep(25);
      await p1!.kill();
      const r = await running;
      assertEquals(r.ok + r.errors + r.mismatched, 5000);
      assertEquals([r.ok, r.mismatched], [5000, 0], JSON.stringify(r.messages));
      assert((r.byProvider["p1"] ?? 0) > 0, "p1 served calls before it was killed");
      assert((await stat(ferry, "cluster.echo.upstream_rq_retry") ?? 0) > 0, "some calls were retried");
      // With no host left every call fails fast, in the protocol.
      await p2!.kill();
      const t0 = Date.now();
      const dead = await boltCalls(port, { count: 20, concurrency: 5, timeoutMs: 10_000 });
      assertEquals(dead.errors, 20);
      assert(dead.messages[0]!.includes("RpcServerException: ferry: "), dead.messages[0]);
      assert(Date.now() - t0 < 9000, "answered, not timed out");
    });
  },
);

Deno.test("bolt: route timeout and the frame's own timeout are answered as Bolt TIMEOUT", itOpts, async () => {
  const slowRoute = (ports: number[]) =>
    config({
      routes: `
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/com.ferry.Echo/slow", headers: [{ name: version, string_match: { exact: "1.0" } }] }
                route: { cluster: echo, timeout: 0.3s }`,
      clusters: cluster("echo", ports),
    });
  await withFerry(ONE_ECHO, slowRoute, async (ferry) => {
    const port = ferry.port();
    const routeTimeout = await boltCalls(port, {
      method: "slow",
      arg: "3000",
      count: 3,
      concurrency: 3,
      timeoutMs: 10_000,
    });
    assertEquals(routeTimeout.errors, 3);
    assert(routeTimeout.ms < 3000, `answered at ${routeTimeout.ms} ms`);
    assert(routeTimeout.messages[0]!.includes("upstream request timeout"), routeTimeout.messages[0]);
    assertEquals(await stat(ferry, "rpc_in.bolt.response.timeout"), 3);
    // Fast calls on the same route are unaffected.
    const fast = await boltCalls(port, { method: "slow", arg: "1", count: 50, concurrency: 10 });
    assertEquals(fast.ok, 50);
  });
  // The frame's timeout (the client's responseTimeout) bounds the wait when the route has none.
  const frameTimeout = (ports: number[]) =>
    config({
      routes: allTo("{ cluster: echo, timeout: 0s }"),
      clusters: cluster("echo", ports),
      extra: "          request_timeout: 30s",
    });
  await withFerry([["q", "com.ferry.Echo:1.0"]], frameTimeout, async (ferry) => {
    const r = await boltCalls(ferry.port(), { method: "slow", arg: "5000", count: 2, concurrency: 2, timeoutMs: 400 });
    assertEquals(r.errors, 2);
    // Ferry answers TIMEOUT when the frame's 400 ms pass (the client may report its own timeout first).
    for (let i = 0; i < 50 && (await stat(ferry, "rpc_in.bolt.response.timeout") ?? 0) < 2; i++) await sleep(50);
    assertEquals(await stat(ferry, "rpc_in.bolt.response.timeout"), 2);
    assertEquals(await stat(ferry, "rpc_in.bolt.request_active"), 0);
  });
});

Deno.test(
  "bolt: heartbeats answered by Ferry; malformed frames close only their connection, counted",
  itOpts,
  async () => {
    const yaml = (ports: number[]) =>
      config({ routes: allTo(), clusters: cluster("echo", ports), extra: "          max_frame_bytes: 65536" });
    await withFerry(ONE_ECHO, yaml, async (ferry) => {
      const port = ferry.port();
      const load = boltCalls(port, { count: 2000, concurrency: 50 });
      const hb = await raw(port, boltFrame("v1_heartbeat"));
      // An ack: response type, heartbeat command, the same id (3).
      assertEquals([hb.got[0], hb.got[1], hb.got[2], hb.got[3], hb.got[8]], [1, 0, 0, 0, 3]);
      assertEquals(hb.closed, false);
      const req = boltFrame("v1_request");
      const badMagic = await raw(port, new Uint8Array([0x07, ...req.subarray(1)]));
      const huge = req.slice(0, 22);
      new DataView(huge.buffer).setInt32(18, 1 << 30);
      const tooBig = await raw(port, huge);
      const twice = new Uint8Array([...req, ...req]);
      const reuse = await raw(port, twice);
      const truncated = await raw(port, req.subarray(0, 40));
      assertEquals([badMagic.closed, tooBig.closed, reuse.closed], [true, true, true]);
      assertEquals([badMagic.got.length, tooBig.got.length], [0, 0]);
      assertEquals(truncated.closed, false, "a partial frame waits for the rest");
      const r = await load;
      assertEquals([r.ok, r.errors], [2000, 0]);
      assertEquals(await stat(ferry, "rpc_in.bolt.heartbeat"), 1);
      assertEquals(await stat(ferry, "rpc_in.bolt.decode_error"), 3);
    });
  },
);

Deno.test("bolt: AUTO takes Bolt and HTTP on one port", itOpts, async () => {
  const yaml = (ports: number[]) =>
    config({
      protocol: "AUTO",
      routes: `
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/health" }
                direct_response: { status: 200, body: { inline_string: "ok" } }
              - match: { prefix: "/" }
                route: { cluster: echo }`,
      clusters: cluster("echo", ports),
    });
  await withFerry(ONE_ECHO, yaml, async (ferry) => {
    const r = await boltCalls(ferry.port(), { count: 500, concurrency: 20 });
    assertEquals(r.ok, 500);
    const res = await fetch(ferry.url("/health"));
    assertEquals([res.status, await res.text()], [200, "ok"]);
  });
});

Deno.test(
  "bolt: a v2 frame with CRC32 goes to a sofa provider and its v2 answer comes back checked; oneway gets none",
  itOpts,
  async () => {
    const yaml = (ports: number[]) =>
      config({
        routes: `
            - name: all
              domains: ["com.alipay.test.EchoService"]
              routes:
              - match: { prefix: "/com.alipay.test.EchoService/echo" }
                route: { cluster: echo }`,
        clusters: cluster("echo", ports),
      });
    await withFerry([["p", "com.alipay.test.EchoService:1.0"]], yaml, async (ferry) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: ferry.port() });
      try {
        await c.write(boltFrame("v2_crc_request"));
        const frames: BoltFrame[] = [];
        const dec = new BoltDecoder((f) => frames.push({ ...f, content: f.content.slice() }));
        const buf = new Uint8Array(4096);
        while (frames.length === 0) {
          const n = await c.read(buf);
          if (n === null) throw new Error("closed before the answer");
          dec.push(buf.subarray(0, n)); // throws on a bad CRC
        }
        const f = frames[0]!;
        assertEquals([f.proto, f.ver1, f.switchCode, f.type, f.requestId, f.status], [2, 1, 1, 0, 9, 0]);
        assert(new TextDecoder().decode(f.content).includes("p:hello"));
      } finally {
        c.close();
      }
      // A oneway request is forwarded and gets no answer; its stream ends at once.
      const req = boltFrame("v1_request");
      req[1] = 2; // type: oneway
      const oneway = await raw(ferry.port(), req);
      assertEquals([oneway.got.length, oneway.closed], [0, false]);
      assertEquals(await stat(ferry, "cluster.echo.upstream_rq_total"), 2);
      assertEquals(await stat(ferry, "rpc_in.bolt.request_active"), 0);
    });
  },
);

Deno.test("bolt: circuit-breaker overflow is answered as SERVER_THREADPOOL_BUSY", itOpts, async () => {
  const yaml = (ports: number[]) =>
    config({
      routes: allTo(),
      clusters: cluster(
        "echo",
        ports,
        "    circuit_breakers: { thresholds: [{ max_requests: 2, max_pending_requests: 1 }] }",
      ),
    });
  await withFerry(ONE_ECHO, yaml, async (ferry) => {
    const r = await boltCalls(ferry.port(), {
      method: "slow",
      arg: "300",
      count: 20,
      concurrency: 20,
      timeoutMs: 10_000,
    });
    assertEquals(r.ok + r.errors, 20);
    assert(r.ok >= 1 && r.errors > 0, JSON.stringify(r));
    assert(r.messages[0]!.includes("overflow"), r.messages[0]);
    assertEquals(await stat(ferry, "rpc_in.bolt.response.server_threadpool_busy"), r.errors);
  });
});
