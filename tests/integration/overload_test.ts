/**
 * The overload manager against floods, with Ferry as a real process (one event loop) and real sockets: a
 * connection flood against `max_active_downstream_connections`, and a slow-body flood through the `buffer` filter
 * against a `fixed_heap` limit. Health checks go to a listener with `bypass_overload_manager: true` and must be
 * answered throughout.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { freePort } from "../fakes/ports.ts";
import { curl, type FerryProcess, itOpts, sleep, spawnFerry, startUpstream, waitFor } from "./_harness.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const T = "type.googleapis.com/envoy.extensions.filters.http";
const HEAP = "envoy.resource_monitors.fixed_heap";
const CONNS = "envoy.resource_monitors.global_downstream_max_connections";
const enc = new TextEncoder();

interface Ports {
  readonly main: number;
  readonly health: number;
  readonly admin: number;
  readonly upstream: number;
}

function hcm(prefix: string, routes: unknown[], filters: unknown[]) {
  return {
    filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": HCM,
        stat_prefix: prefix,
        common_http_protocol_options: { idle_timeout: "60s" },
        route_config: { virtual_hosts: [{ name: prefix, domains: ["*"], routes }] },
        http_filters: [...filters, {
          name: "envoy.filters.http.router",
          typed_config: { "@type": `${T}.router.v3.Router` },
        }],
      },
    }],
  };
}

/**
 * Listener "main" (stat prefix `main`) answers 200 `ok` once a `buffer` filter has read the whole request body
 * (held in memory, as a proxy holds bodies bound for a slow upstream); listener "health" answers `/healthz` with the health_check filter and bypasses the overload manager.
 */
function bootstrap(p: Ports, overload: unknown): string {
  const addr = (port: number) => ({ socket_address: { address: "127.0.0.1", port_value: port } });
  return JSON.stringify({
    admin: { address: addr(p.admin) },
    ...(overload ? { overload_manager: overload } : {}),
    static_resources: {
      listeners: [
        {
          name: "main",
          stat_prefix: "main",
          address: addr(p.main),
          filter_chains: [hcm("main", [{
            match: { prefix: "/" },
            direct_response: { status: 200, body: { inline_string: "ok" } },
          }], [{
            name: "envoy.filters.http.buffer",
            typed_config: { "@type": `${T}.buffer.v3.Buffer`, max_request_bytes: 8 << 20 },
          }])],
        },
        {
          name: "health",
          stat_prefix: "health",
          address: addr(p.health),
          bypass_overload_manager: true,
          filter_chains: [hcm("health", [{ match: { prefix: "/" }, direct_response: { status: 404 } }], [{
            name: "envoy.filters.http.health_check",
            typed_config: {
              "@type": `${T}.health_check.v3.HealthCheck`,
              pass_through_mode: false,
              headers: [{ name: ":path", string_match: { exact: "/healthz" } }],
            },
          }])],
        },
      ],
      clusters: [{
        name: "up",
        type: "STATIC",
        connect_timeout: "2s",
        load_assignment: {
          cluster_name: "up",
          endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(p.upstream) } }] }],
        },
      }],
    },
  });
}

async function stats(adminPort: number, filter: string): Promise<Record<string, number>> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/stats?format=json&filter=${encodeURIComponent(filter)}`);
  const j = await r.json() as { stats: { name?: string; value?: number }[] };
  const out: Record<string, number> = {};
  for (const s of j.stats) if (s.name !== undefined && typeof s.value === "number") out[s.name] = s.value;
  return out;
}

/** Curls the health listener every `everyMs` until stopped; returns the statuses seen. */
function healthChecker(port: number, everyMs: number): { stop(): Promise<number[]> } {
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await curl(`http://127.0.0.1:${port}/healthz`, ["--max-time", "10"]);
      statuses.push(r.status);
      await sleep(everyMs);
    }
  })();
  return {
    /** Stops after at least 5 checks (a run can be shorter than 5 intervals on a fast machine). */
    async stop() {
      const deadline = performance.now() + 10_000;
      while (statuses.length < 5 && performance.now() < deadline) await sleep(everyMs);
      running = false;
      await loop;
      return statuses;
    },
  };
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) * 1024 : 0;
}

async function withFerry(
  overload: unknown,
  fn: (ferry: FerryProcess, p: Ports) => Promise<void>,
  env?: Record<string, string>,
): Promise<void> {
  const up = await startUpstream(() => new Response("ok"));
  const p: Ports = { main: freePort(), health: freePort(), admin: freePort(), upstream: up.port };
  const ferry = await spawnFerry(["--config-yaml", bootstrap(p, overload)], {
    adminPort: p.admin,
    timeoutMs: 20_000,
    ...(env ? { env } : {}),
  });
  try {
    await fn(ferry, p);
  } finally {
    await ferry.kill();
    await up.close();
  }
}

/** One held client connection with a read in flight from the start (EOF: Ferry closed it). */
interface Held {
  readonly conn: Deno.TcpConn;
  /** Resolves with the first bytes read as text, or null on EOF or error. */
  readonly first: Promise<string | null>;
  settled: boolean;
}

function hold(conn: Deno.TcpConn): Held {
  const buf = new Uint8Array(4096);
  const h: Held = {
    conn,
    first: conn.read(buf).then((n) => n === null ? null : new TextDecoder().decode(buf.subarray(0, n)), () => null),
    settled: false,
  };
  h.first.then(() => h.settled = true);
  return h;
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* closed */ }
}

Deno.test(
  "overload connection flood: 2,000 held connections against max_active_downstream_connections 500",
  itOpts,
  async () => {
    const LIMIT = 500, FLOOD = 2000;
    const overload = {
      refresh_interval: "0.1s",
      resource_monitors: [{
        name: CONNS,
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
          max_active_downstream_connections: LIMIT,
        },
      }],
    };
    await withFerry(overload, async (ferry, p) => {
      const health = healthChecker(p.health, 100);
      const held: Held[] = [];
      try {
        // Open the flood in batches of 100 (bounded: at most 30 s).
        const deadline = performance.now() + 30_000;
        while (held.length < FLOOD && performance.now() < deadline) {
          const batch = await Promise.all(
            Array.from({ length: 100 }, () => Deno.connect({ hostname: "127.0.0.1", port: p.main })),
          );
          for (const c of batch) held.push(hold(c));
        }
        assertEquals(held.length, FLOOD, "the flood was opened");
        await waitFor(
          `${FLOOD - LIMIT} connections closed by Ferry`,
          () => Promise.resolve(held.filter((h) => h.settled).length >= FLOOD - LIMIT),
          20_000,
        );
        await sleep(300);
        const alive = held.filter((h) => !h.settled);
        assertEquals(alive.length, LIMIT, "exactly the limit stays open");
        // The connections Ferry kept are served.
        await Promise.all(alive.map((h) => h.conn.write(enc.encode("GET /a HTTP/1.1\r\nhost: x\r\n\r\n"))));
        const answers = await Promise.all(alive.map((h) => h.first));
        assertEquals(answers.filter((a) => a !== null && a.startsWith("HTTP/1.1 200")).length, LIMIT);
        const s = await stats(p.admin, "overflow|overload|main.downstream_cx_active");
        assertEquals(s["listener.main.downstream_global_cx_overflow"], FLOOD - LIMIT);
        assertEquals(s["listener.main.downstream_cx_active"], LIMIT);
        assertEquals(s[`overload.${CONNS}.pressure`], 100);
        // Closing 100 frees 100 places: new connections are served again.
        for (const h of alive.slice(0, 100)) closeQuietly(h.conn);
        await waitFor("Ferry to see 100 connections close", async () => {
          return (await stats(p.admin, "main.downstream_cx_active"))["listener.main.downstream_cx_active"] ===
            LIMIT - 100;
        });
        const fresh = await Promise.all(
          Array.from({ length: 100 }, async () => hold(await Deno.connect({ hostname: "127.0.0.1", port: p.main }))),
        );
        held.push(...fresh);
        await Promise.all(fresh.map((h) => h.conn.write(enc.encode("GET /b HTTP/1.1\r\nhost: x\r\n\r\n"))));
        for (const a of await Promise.all(fresh.map((h) => h.first))) assertMatch(a ?? "closed", /^HTTP\/1\.1 200/);
        const s2 = await stats(p.admin, "overflow");
        assertEquals(s2["listener.main.downstream_global_cx_overflow"], FLOOD - LIMIT, "no new overflow");
      } finally {
        for (const h of held) closeQuietly(h.conn);
        const statuses = await health.stop();
        assert(statuses.length >= 5, `health checks ran (${statuses.length})`);
        assertEquals(
          statuses.filter((s) => s !== 200),
          [],
          `every health check answered 200 during the flood: ${statuses}`,
        );
      }
      assert(ferry.child.pid > 0);
    });
  },
);

/** What one slow-body request got. */
type Outcome = "200" | "503 overloaded" | "closed" | "other";

/**
 * Sends `POST /` with a `bodyBytes` body in 64 KiB chunks every `gapMs` on its own connection, stopping when a
 * response arrives; resolves with what came back (bounded: connect 3 s, the whole exchange 20 s).
 */
async function slowPost(port: number, bodyBytes: number, gapMs: number): Promise<Outcome> {
  const chunk = new Uint8Array(65536).fill(120);
  let conn: Deno.TcpConn;
  try {
    conn = await Promise.race([
      Deno.connect({ hostname: "127.0.0.1", port }),
      sleep(3000).then(() => Promise.reject(new Error("connect timeout"))),
    ]);
  } catch {
    return "closed";
  }
  let answer = "";
  let done = false;
  const reader = (async () => {
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      answer += new TextDecoder().decode(buf.subarray(0, n));
      if (/\r\n\r\n/.test(answer) && (answer.includes("envoy overloaded") || answer.endsWith("ok"))) break;
    }
    done = true;
  })();
  const deadline = performance.now() + 20_000;
  try {
    await conn.write(enc.encode(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${bodyBytes}\r\n\r\n`));
    for (let sent = 0; sent < bodyBytes && !done && performance.now() < deadline; sent += chunk.length) {
      await conn.write(chunk.subarray(0, Math.min(chunk.length, bodyBytes - sent)));
      await sleep(gapMs);
    }
  } catch { /* Ferry closed the connection */ }
  await Promise.race([reader, sleep(Math.max(0, deadline - performance.now()))]);
  closeQuietly(conn);
  if (answer.startsWith("HTTP/1.1 200")) return "200";
  if (answer.startsWith("HTTP/1.1 503") && answer.includes("envoy overloaded")) return "503 overloaded";
  return answer === "" ? "closed" : "other";
}

/**
 * 400 requests of 1 MiB each, started 5 ms apart, each sending its body in 64 KiB chunks over about 2 s (so that
 * most bodies are in Ferry's memory at once without an overload manager); samples Ferry's RSS every 25 ms.
 */
async function slowBodyFlood(pid: number, port: number): Promise<{ outcomes: Outcome[]; peakRss: number }> {
  let peakRss = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakRss = Math.max(peakRss, vmRssBytes(pid));
      await sleep(25);
    }
  })();
  const runs: Promise<Outcome>[] = [];
  for (let i = 0; i < 400; i++) {
    runs.push(slowPost(port, 1 << 20, 125));
    await sleep(5);
  }
  const outcomes = await Promise.all(runs);
  sampling = false;
  await sampler;
  return { outcomes, peakRss };
}

const HEAP_LIMIT = 96 << 20;

/**
 * Heap actions: collect at 50%; shed new requests from 50% (scaled to 70%); no keep-alive from 50%; end the
 * largest bodies in flight from 60% (scaled to 90%, 8 size classes from 64 KiB); stop accepting at 95%.
 */
const HEAP_OVERLOAD = {
  refresh_interval: "0.05s",
  resource_monitors: [{
    name: HEAP,
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
      max_heap_size_bytes: HEAP_LIMIT,
    },
  }],
  buffer_factory_config: { minimum_account_to_track_power_of_two: 16 },
  actions: [
    { name: "envoy.overload_actions.shrink_heap", triggers: [{ name: HEAP, threshold: { value: 0.5 } }] },
    {
      name: "envoy.overload_actions.stop_accepting_requests",
      triggers: [{ name: HEAP, scaled: { scaling_threshold: 0.5, saturation_threshold: 0.7 } }],
    },
    { name: "envoy.overload_actions.disable_http_keepalive", triggers: [{ name: HEAP, threshold: { value: 0.5 } }] },
    {
      name: "envoy.overload_actions.reset_high_memory_stream",
      triggers: [{ name: HEAP, scaled: { scaling_threshold: 0.6, saturation_threshold: 0.9 } }],
    },
    {
      name: "envoy.overload_actions.stop_accepting_connections",
      triggers: [{ name: HEAP, threshold: { value: 0.95 } }],
    },
  ],
};

Deno.test(
  "overload slow-body flood: sheds with 503 under a fixed_heap limit, RSS stays bounded, recovers",
  itOpts,
  async () => {
    const count = (o: Outcome[], k: Outcome) => o.filter((x) => x === k).length;
    // Control: the same flood without an overload manager goes past the bound the managed run must stay under.
    let controlRise = 0;
    await withFerry(undefined, async (ferry, p) => {
      const idle = vmRssBytes(ferry.child.pid);
      const { outcomes, peakRss } = await slowBodyFlood(ferry.child.pid, p.main);
      controlRise = peakRss - idle;
      console.log(
        `control flood: ${count(outcomes, "200")} served, ${count(outcomes, "closed")} closed, ` +
          `${count(outcomes, "other")} other; RSS idle ${idle >> 20} MiB, peak ${peakRss >> 20} MiB`,
      );
      assert(count(outcomes, "200") > outcomes.length / 2, `without overload manager: ${JSON.stringify(outcomes)}`);
    });
    assert(controlRise > HEAP_LIMIT, `the flood must be able to exceed the limit: RSS rose ${controlRise >> 20} MiB`);

    await withFerry(HEAP_OVERLOAD, async (ferry, p) => {
      const pid = ferry.child.pid;
      const idle = vmRssBytes(pid);
      const health = healthChecker(p.health, 100);
      let result: { outcomes: Outcome[]; peakRss: number };
      try {
        result = await slowBodyFlood(pid, p.main);
      } finally {
        const statuses = await health.stop();
        assert(statuses.length >= 5, `health checks ran (${statuses.length})`);
        assertEquals(
          statuses.filter((s) => s !== 200),
          [],
          `every health check answered 200 during the flood: ${statuses}`,
        );
      }
      const { outcomes, peakRss } = result;
      const shed = count(outcomes, "503 overloaded");
      const s = await stats(p.admin, "overload|main.downstream_rq");
      console.log(
        `overload flood: ${count(outcomes, "200")} served, ${shed} shed 503, ${count(outcomes, "closed")} closed, ` +
          `${count(outcomes, "other")} other; RSS idle ${idle >> 20} MiB, peak ${peakRss >> 20} MiB ` +
          `(rise ${(peakRss - idle) >> 20} MiB; control rise ${controlRise >> 20} MiB; limit ${HEAP_LIMIT >> 20} MiB)`,
      );
      // How many of the flood are served depends on timing (on a loaded machine, none): not asserted. Every request
      // is served, shed with the overload 503, or refused at connect (stop_accepting_connections); Ferry serves
      // normally once the flood is over (below).
      assert(shed > 0, "some requests were shed with 503 envoy overloaded");
      assertEquals(count(outcomes, "other"), 0, JSON.stringify(outcomes));
      const ended = s["overload.envoy.overload_actions.reset_high_memory_stream.count"] ?? 0;
      assertEquals(s["http.main.downstream_rq_overload_close"]! + ended, shed, "every 503 counted");
      // Bound: the configured limit over the idle process (the runtime's own footprint is the stated margin).
      assert(
        peakRss - idle < HEAP_LIMIT,
        `RSS rose ${(peakRss - idle) >> 20} MiB over idle, more than the ${HEAP_LIMIT >> 20} MiB limit`,
      );
      // Pressure falls once the flood is over; Ferry serves normally again.
      await waitFor("the heap pressure to fall below the shedding threshold", async () => {
        const g = await stats(p.admin, "stop_accepting_requests.scale_percent");
        return g["overload.envoy.overload_actions.stop_accepting_requests.scale_percent"] === 0;
      }, 15_000);
      const after = await curl(`http://127.0.0.1:${p.main}/after`, ["--data-binary", "x".repeat(100_000)]);
      assertEquals([after.status, after.body], [200, "ok"]);
    });
  },
);

/** A request on a new connection; resolves with the first bytes read ("" if none within `waitMs`). */
async function ask(port: number, waitMs: number): Promise<{ conn: Deno.TcpConn; held: Held; answer: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const held = hold(conn);
  await conn.write(enc.encode("GET /q HTTP/1.1\r\nhost: x\r\n\r\n"));
  const answer = await Promise.race([held.first.then((a) => a ?? "closed"), sleep(waitMs).then(() => "")]);
  return { conn, held, answer };
}

Deno.test(
  "overload stop_accepting_requests sheds health checks too, except on a bypass_overload_manager listener",
  itOpts,
  async () => {
    // Threshold 0: saturated from the first refresh, whatever the heap.
    const overload = {
      refresh_interval: "0.05s",
      resource_monitors: [{
        name: HEAP,
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
          max_heap_size_bytes: 1 << 30,
        },
      }],
      actions: [{
        name: "envoy.overload_actions.stop_accepting_requests",
        triggers: [{ name: HEAP, threshold: { value: 0 } }],
      }],
    };
    await withFerry(overload, async (_ferry, p) => {
      const shed = await curl(`http://127.0.0.1:${p.main}/healthz`);
      assertEquals([shed.status, shed.body], [503, "envoy overloaded"]);
      assertEquals((await curl(`http://127.0.0.1:${p.health}/healthz`)).status, 200, "bypass listener answers");
      assertEquals((await curl(`http://127.0.0.1:${p.admin}/ready`)).status, 200, "admin is never shed");
      const s = await stats(p.admin, "overload_close|stop_accepting_requests.active");
      assertEquals(s["http.main.downstream_rq_overload_close"], 1);
      assertEquals(s["http.health.downstream_rq_overload_close"], 0);
      assertEquals(s["overload.envoy.overload_actions.stop_accepting_requests.active"], 1);
    });
  },
);

for (const io of ["epoll", "deno"] as const) {
  Deno.test(
    `overload stop_accepting_connections leaves new connections in the backlog until pressure falls (${io} engine)`,
    itOpts,
    async () => {
      const overload = {
        refresh_interval: "0.05s",
        resource_monitors: [{
          name: CONNS,
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
            max_active_downstream_connections: 4,
          },
        }],
        actions: [{
          name: "envoy.overload_actions.stop_accepting_connections",
          triggers: [{ name: CONNS, threshold: { value: 0.5 } }],
        }],
      };
      await withFerry(overload, async (_ferry, p) => {
        const open: Deno.TcpConn[] = [];
        try {
          for (let i = 0; i < 2; i++) {
            const r = await ask(p.main, 5000);
            open.push(r.conn);
            assertMatch(r.answer, /^HTTP\/1\.1 200/);
          }
          await waitFor("stop_accepting_connections to saturate", async () => {
            const s = await stats(p.admin, "stop_accepting_connections.active");
            return s["overload.envoy.overload_actions.stop_accepting_connections.active"] === 1;
          });
          // The kernel completes the handshake; Ferry does not accept, so nothing answers.
          const waiting = await ask(p.main, 500);
          open.push(waiting.conn);
          assertEquals(waiting.answer, "", "a connection made while not accepting is not served");
          assertEquals((await curl(`http://127.0.0.1:${p.health}/healthz`)).status, 200, "bypass listener accepts");
          // One connection closes: pressure 1/4 < 0.5, accepting resumes and the waiting connection is served.
          closeQuietly(open.shift()!);
          const answer = await Promise.race([waiting.held.first, sleep(5000).then(() => "timeout")]);
          assertMatch(answer ?? "closed", /^HTTP\/1\.1 200/);
        } finally {
          for (const c of open) closeQuietly(c);
        }
      }, { FERRY_IO: io });
    },
  );
}

Deno.test(
  "overload reduce_timeouts closes idle keep-alive connections long before their 60 s idle_timeout",
  itOpts,
  async () => {
    // Threshold 0: saturated from the first refresh; connection idle timeouts shrink to 200 ms.
    const overload = {
      refresh_interval: "0.05s",
      resource_monitors: [{
        name: HEAP,
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
          max_heap_size_bytes: 1 << 30,
        },
      }],
      actions: [{
        name: "envoy.overload_actions.reduce_timeouts",
        triggers: [{ name: HEAP, threshold: { value: 0 } }],
        typed_config: {
          "@type": "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
          timer_scale_factors: [{ timer: "HTTP_DOWNSTREAM_CONNECTION_IDLE", min_timeout: "0.2s" }],
        },
      }],
    };
    await withFerry(overload, async (_ferry, p) => {
      await waitFor("reduce_timeouts to saturate", async () => {
        const s = await stats(p.admin, "reduce_timeouts.active");
        return s["overload.envoy.overload_actions.reduce_timeouts.active"] === 1;
      });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: p.main });
      try {
        await conn.write(enc.encode("GET /a HTTP/1.1\r\nhost: x\r\n\r\n"));
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        assertMatch(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200[^]*ok$/);
        // Idle now: Ferry closes the connection (EOF) well within the test's bound, far below 60 s.
        const next = await Promise.race([conn.read(buf).catch(() => null), sleep(10_000).then(() => "open")]);
        assertEquals(next, null, "the idle connection was closed");
        const s = await stats(p.admin, "main.downstream_cx_idle_timeout");
        assertEquals(s["http.main.downstream_cx_idle_timeout"], 1);
      } finally {
        closeQuietly(conn);
      }
    });
  },
);
