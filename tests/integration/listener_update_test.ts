/**
 * Listener updates while traffic flows (Envoy's LDS semantics through `Server.addOrUpdateListener`): wrk through an
 * HTTP listener that is updated mid-run (zero failed requests; new connections see the new config; the old
 * config's connections are gone within the drain time), and a TCP proxy listener whose open connection keeps its
 * chain while new connections get the new one.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { freePort } from "../fakes/ports.ts";
import { curl, itOpts, sleep, startFerry, startRawServer, startUpstream } from "./_harness.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/** An HTTP listener "web" on port 0 routing to cluster "up", each response tagged `x-config: <version>`. */
function webListener(version: string) {
  return {
    name: "web",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: "web",
          route_config: {
            response_headers_to_add: [{ header: { key: "x-config", value: version } }],
            virtual_hosts: [{
              name: "all",
              domains: ["*"],
              routes: [{ match: { prefix: "/" }, route: { cluster: "up" } }],
            }],
          },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
    }],
  };
}

/** A TCP proxy listener "tcp" on port 0 to `cluster`. */
function tcpListener(cluster: string) {
  return {
    name: "tcp",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.tcp_proxy",
        typed_config: { "@type": TCP_PROXY, stat_prefix: "tcp", cluster },
      }],
    }],
  };
}

/** Counts wrk's responses by `x-config` (per thread state, summed in `done`). */
const WRK_SCRIPT = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) v1 = 0; v2 = 0; other = 0 end
function response(status, headers, body)
  local v = headers["x-config"] or headers["X-Config"]
  if status ~= 200 then other = other + 1
  elseif v == "v1" then v1 = v1 + 1
  elseif v == "v2" then v2 = v2 + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("v1"); b = b + t:get("v2"); c = c + t:get("other") end
  io.write(string.format("counts v1=%d v2=%d other=%d\\n", a, b, c))
end
`;

Deno.test(
  "listener update under wrk: zero failed requests, new config for new connections, old drained",
  itOpts,
  async () => {
    const up = await startUpstream(() => new Response("ok"));
    const f = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: { listeners: [], clusters: [staticClusterObject("up", up.port)] },
    });
    const drainTimeMs = 2000;
    f.server.listenerManager.drainTimeMs = drainTimeMs;
    const script = await Deno.makeTempFile({ suffix: ".lua" });
    try {
      assertEquals(await f.server.addOrUpdateListener(webListener("v1")), "added");
      const l = f.server.listener("web")!;
      const port = l.port;
      assertEquals((await curl(`http://127.0.0.1:${port}/`)).headers["x-config"], "v1");
      await Deno.writeTextFile(script, WRK_SCRIPT);
      const wrk = new Deno.Command("wrk", {
        args: ["-t1", "-c8", "-d4s", "-s", script, `http://127.0.0.1:${port}/`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      await sleep(1500);
      const busy = l.connections;
      const t0 = performance.now();
      assertEquals(await f.server.addOrUpdateListener(webListener("v2")), "updated");
      assertEquals(f.server.listener("web"), l, "the socket is kept");
      assertEquals(l.port, port);
      // The old config's connections get connection: close on their next response and go.
      let drainedAfter = -1;
      while (performance.now() - t0 < drainTimeMs + 500) {
        if (l.drainingConnections === 0) {
          drainedAfter = performance.now() - t0;
          break;
        }
        await sleep(10);
      }
      const fresh = await curl(`http://127.0.0.1:${port}/`);
      const out = await wrk;
      const text = new TextDecoder().decode(out.stdout);
      console.log(`wrk (listener updated at 1.5 s with ${busy} connections open):\n${text.trim()}`);
      console.log(`old connections drained ${drainedAfter.toFixed(0)} ms after the update`);
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assert(!/Socket errors/.test(text), text);
      assert(!/Non-2xx or 3xx responses/.test(text), text);
      const m = /counts v1=(\d+) v2=(\d+) other=(\d+)/.exec(text);
      assert(m, text);
      const [v1, v2, other] = [Number(m[1]), Number(m[2]), Number(m[3])];
      assertEquals(other, 0);
      assert(v1 > 0 && v2 > 0, text);
      const total = Number(/(\d+) requests in/.exec(text)?.[1]);
      assertEquals(v1 + v2, total, "every request answered 200 with a config tag");
      assert(drainedAfter >= 0 && drainedAfter < drainTimeMs, `drained after ${drainedAfter} ms`);
      assertEquals(fresh.status, 200);
      assertEquals(fresh.headers["x-config"], "v2");
    } finally {
      await Deno.remove(script).catch(() => {});
      await f.stop();
      await up.close();
    }
  },
);

Deno.test(
  "tcp_proxy listener update: an open connection keeps the old chain, a new one gets the new",
  itOpts,
  async () => {
    const echo = (tag: string) =>
      startRawServer(async (c) => {
        const buf = new Uint8Array(1024);
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          await c.write(new TextEncoder().encode(`${tag}:${new TextDecoder().decode(buf.subarray(0, n))}`));
        }
        c.close();
      });
    const a = echo("A");
    const b = echo("B");
    const f = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [],
        clusters: [staticClusterObject("a", a.port), staticClusterObject("b", b.port)],
      },
    });
    const drainTimeMs = 600;
    f.server.listenerManager.drainTimeMs = drainTimeMs;
    const conns: Deno.TcpConn[] = [];
    const roundTrip = async (c: Deno.TcpConn, s: string) => {
      await c.write(new TextEncoder().encode(s));
      const buf = new Uint8Array(1024);
      const n = await c.read(buf);
      return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
    };
    try {
      assertEquals(await f.server.addOrUpdateListener(tcpListener("a")), "added");
      const port = f.server.listener("tcp")!.port;
      const old = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(old);
      assertEquals(await roundTrip(old, "1"), "A:1");
      assertEquals(await f.server.addOrUpdateListener(tcpListener("b")), "updated");
      const t0 = performance.now();
      // The open connection keeps flowing on its chain (cluster a) ...
      assertEquals(await roundTrip(old, "2"), "A:2");
      // ... while a new one gets the new chain (cluster b), on the same port.
      assertEquals(f.server.listener("tcp")!.port, port);
      const fresh = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(fresh);
      assertEquals(await roundTrip(fresh, "x"), "B:x");
      assertEquals(await roundTrip(old, "3"), "A:3");
      // TCP has no graceful end: the old connection is closed at the end of the drain time.
      const buf = new Uint8Array(16);
      const eof = await old.read(buf).catch(() => null);
      const after = performance.now() - t0;
      assertEquals(eof, null);
      assert(after >= drainTimeMs - 50 && after < drainTimeMs + 1000, `closed after ${after} ms`);
      assertEquals(await roundTrip(fresh, "y"), "B:y");
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await f.stop();
      a.close();
      b.close();
    }
  },
);

Deno.test(
  "Server.addOrUpdateListener errors are ConfigError lines naming the path; static listeners stay",
  itOpts,
  async () => {
    const up = await startUpstream();
    const f = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [{ ...webListener("v1"), name: "static" }],
        clusters: [staticClusterObject("up", up.port)],
      },
    });
    const reject = async (raw: unknown): Promise<ConfigError> => {
      try {
        await f.server.addOrUpdateListener(raw);
      } catch (e) {
        assert(e instanceof ConfigError, String(e));
        return e;
      }
      throw new Error("expected a ConfigError");
    };
    try {
      const noPort = webListener("v1");
      delete (noPort.address.socket_address as { port_value?: number }).port_value;
      assertEquals((await reject(noPort)).message, "config: listener.address.socket_address.port_value: is required");
      const badCluster = webListener("v1");
      badCluster.filter_chains[0]!.filters[0]!.typed_config.route_config.virtual_hosts[0]!.routes[0]!.route.cluster =
        "nope";
      assertEquals(
        (await reject(badCluster)).message,
        `config: listener.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope"`,
      );
      const e = await reject({ ...webListener("v2"), name: "static" });
      assertEquals(
        e.message,
        `config: listener.name: listener "static": cannot be updated: it is statically configured`,
      );
      const busyPort = f.server.listener("static")!.port;
      const clash = webListener("v1");
      clash.address.socket_address.port_value = busyPort;
      assertMatch((await reject(clash)).message, /^config: listener\.address: listener "web": has the address/);
      assertEquals(f.server.listeners.map((l) => l.config.name), ["static"]);
      // A runtime listener shows in /config_dump as a dynamic listener, and goes away with removeListener.
      assertEquals(await f.server.addOrUpdateListener(webListener("v1")), "added");
      assertEquals(await f.server.addOrUpdateListener(webListener("v1")), "unchanged");
      assertEquals(f.server.listeners.map((l) => l.config.name), ["static", "web"]);
      const dump = await (await fetch(`${f.adminUrl}/config_dump`)).json() as {
        configs: { static_listeners?: { listener: { name: string } }[]; dynamic_listeners?: { name: string }[] }[];
      };
      const ld = dump.configs.find((c) => c.static_listeners)!;
      assertEquals(ld.static_listeners!.map((x) => x.listener.name), ["static"]);
      assertEquals(ld.dynamic_listeners!.map((x) => x.name), ["web"]);
      const listed = await (await fetch(`${f.adminUrl}/listeners`)).text();
      assert(listed.includes("web::127.0.0.1:") || listed.includes("web"), listed);
      assertEquals(await f.server.removeListener("web"), true);
      assertEquals(await f.server.removeListener("web"), false);
      await assertRejectsConfig(() => f.server.removeListener("static"), "config: listener.name:");
    } finally {
      await f.stop();
      await up.close();
    }
  },
);

async function assertRejectsConfig(fn: () => Promise<unknown>, prefix: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof ConfigError && e.message.startsWith(prefix), String(e));
    return;
  }
  throw new Error("expected a ConfigError");
}

/** `staticCluster` as an object (the bootstraps here are objects). */
function staticClusterObject(name: string, port: number) {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

/** A listener on 0.0.0.0 with one chain per destination address (127.0.0.1, 127.0.0.2), each answering its body. */
function twoChainListener(port: number, bodyA: string, bodyB: string) {
  const chain = (ip: string, body: string) => ({
    filter_chain_match: { prefix_ranges: [{ address_prefix: ip, prefix_len: 32 }] },
    filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": HCM,
        stat_prefix: "two",
        route_config: {
          virtual_hosts: [{
            name: "all",
            domains: ["*"],
            routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }],
          }],
        },
        http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
      },
    }],
  });
  return {
    name: "two",
    address: { socket_address: { address: "0.0.0.0", port_value: port } },
    filter_chains: [chain("127.0.0.1", bodyA), chain("127.0.0.2", bodyB)],
  };
}

/** One HTTP/1.1 keep-alive request on `conn`: the raw response head and body. */
async function get(conn: Deno.Conn): Promise<{ head: string; body: string }> {
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed mid-response: ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const len = Number(text.slice(0, end).match(/content-length:\s*(\d+)/i)?.[1] ?? "0");
    if (text.length >= end + 4 + len) return { head: text.slice(0, end), body: text.slice(end + 4, end + 4 + len) };
  }
}

Deno.test(
  "listener update that changes one filter chain drains only that chain's connections (Envoy's filter-chain-only update)",
  itOpts,
  async () => {
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: { clusters: [] },
    });
    try {
      const port = freePort();
      await ferry.server.addOrUpdateListener(twoChainListener(port, "a1", "b1"));
      const a = await Deno.connect({ hostname: "127.0.0.1", port });
      const b = await Deno.connect({ hostname: "127.0.0.2", port });
      assertEquals((await get(a)).body, "a1");
      assertEquals((await get(b)).body, "b1");
      // Only chain B changes.
      assertEquals(await ferry.server.addOrUpdateListener(twoChainListener(port, "a1", "b2")), "updated");
      const ra = await get(a);
      const rb = await get(b);
      assertEquals(ra.body, "a1");
      assert(!/connection: close/i.test(ra.head), `the unchanged chain's connection was told to close:\n${ra.head}`);
      assertEquals(rb.body, "b1", "a draining connection keeps its config");
      assertMatch(rb.head, /connection: close/i);
      b.close();
      // Past the drain time (2 s in the harness), the unchanged chain's connection still serves.
      await sleep(2300);
      assertEquals((await get(a)).body, "a1");
      const fresh = await Deno.connect({ hostname: "127.0.0.2", port });
      assertEquals((await get(fresh)).body, "b2");
      fresh.close();
      // A later change of chain A drains that connection too.
      await ferry.server.addOrUpdateListener(twoChainListener(port, "a3", "b2"));
      assertMatch((await get(a)).head, /connection: close/i);
      a.close();
    } finally {
      await ferry.stop();
    }
  },
);
