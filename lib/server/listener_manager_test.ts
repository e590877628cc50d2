/**
 * ListenerManager over real loopback sockets: add, update (socket kept, old connections drain and are closed after
 * the drain time), remove, the same config again, bind failures, static listeners.
 */
import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import { freePort } from "../../tests/fakes/ports.ts";
import type { ClusterManager } from "../api/upstream.ts";
import { type ListenerConfig, parseListener } from "../config/bootstrap.ts";
import { setLogLevel } from "../observe/log.ts";
import { StatsStore } from "../observe/stats.ts";
import { ListenerError } from "./listener.ts";
import { ListenerManager } from "./listener_manager.ts";
import { createRegistries } from "./registries.ts";

setLogLevel("warn");

const registries = createRegistries();
const noClusters: ClusterManager = { get: () => undefined, clusters: new Map() };

/** An Envoy listener answering every request 200 `body` (direct_response). */
function rawListener(name: string, body: string, extra: Record<string, unknown> = {}, port = 0) {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: name,
          route_config: {
            virtual_hosts: [{
              name: "all",
              domains: ["*"],
              routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }],
            }],
          },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
        },
      }],
    }],
    ...extra,
  };
}

function listener(name: string, body: string, extra: Record<string, unknown> = {}, port = 0): ListenerConfig {
  return parseListener(rawListener(name, body, extra, port), "listener", registries);
}

function manager(drainTimeMs = 5000): ListenerManager {
  const m = new ListenerManager({
    stats: new StatsStore(),
    clusterManager: noClusters,
    draining: () => false,
    drainTimeMs,
  });
  m.startAccepting();
  return m;
}

/** One keep-alive HTTP/1.1 client connection. */
class Client {
  readonly conn: Deno.TcpConn;
  #buf = "";
  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }
  static async open(port: number): Promise<Client> {
    return new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  /** Sends a GET and reads the response (content-length framed). */
  async get(): Promise<{ body: string; close: boolean }> {
    await this.conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: t\r\n\r\n"));
    const dec = new TextDecoder();
    const chunk = new Uint8Array(4096);
    for (;;) {
      const i = this.#buf.indexOf("\r\n\r\n");
      if (i >= 0) {
        const head = this.#buf.slice(0, i).toLowerCase();
        const len = Number(/content-length: *(\d+)/.exec(head)?.[1] ?? 0);
        if (this.#buf.length >= i + 4 + len) {
          const body = this.#buf.slice(i + 4, i + 4 + len);
          this.#buf = this.#buf.slice(i + 4 + len);
          return { body, close: /\r\nconnection: *close/.test(head) };
        }
      }
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error(`connection closed; got ${JSON.stringify(this.#buf)}`);
      this.#buf += dec.decode(chunk.subarray(0, n));
    }
  }
  /** Resolves true once the server closed the connection (EOF or reset). */
  async closedByPeer(): Promise<boolean> {
    try {
      return await this.conn.read(new Uint8Array(1)) === null;
    } catch {
      return true;
    }
  }
  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

async function getOnce(port: number): Promise<string> {
  const c = await Client.open(port);
  try {
    return (await c.get()).body;
  } finally {
    c.close();
  }
}

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

Deno.test("ListenerManager add binds, accepts, and lists the listener", async () => {
  const m = manager();
  try {
    assertEquals(m.addOrUpdate(listener("a", "v1")), "added");
    const l = m.get("a")!;
    assertEquals(m.list, [l]);
    assertEquals(await getOnce(l.port), "v1");
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager update keeps the socket: new connections get the new config, old ones drain", async () => {
  const m = manager();
  try {
    m.addOrUpdate(listener("a", "v1"));
    const l = m.get("a")!;
    const port = l.port;
    const c1 = await Client.open(port);
    assertEquals((await c1.get()).body, "v1");
    assertEquals(m.addOrUpdate(listener("a", "v2")), "updated");
    // The same socket (no rebind, no refused connection), now with the new config.
    assertEquals(m.get("a"), l);
    assertEquals(l.port, port);
    assertEquals(await getOnce(port), "v2");
    assertEquals(m.drainingConnections, 1);
    // The old connection keeps its chain, is told to go away, and is closed after that response.
    const r = await c1.get();
    assertEquals(r, { body: "v1", close: true });
    assert(await c1.closedByPeer());
    c1.close();
    for (let i = 0; i < 50 && m.drainingConnections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assertEquals(m.drainingConnections, 0);
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager update closes the old config's idle connections after the drain time", async () => {
  const m = manager(300);
  try {
    m.addOrUpdate(listener("a", "v1"));
    const port = m.get("a")!.port;
    const idle = await Client.open(port);
    assertEquals((await idle.get()).body, "v1");
    const t0 = performance.now();
    m.addOrUpdate(listener("a", "v2"));
    assert(await idle.closedByPeer());
    const took = performance.now() - t0;
    assert(took >= 250 && took < 2000, `closed after ${took} ms`);
    idle.close();
    assertEquals(await getOnce(port), "v2");
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager the same config again is a no-op", async () => {
  const m = manager();
  try {
    m.addOrUpdate(listener("a", "v1"));
    const l = m.get("a")!;
    const c = await Client.open(l.port);
    assertEquals((await c.get()).body, "v1");
    // Parsed again (another object, another field path): unchanged, nothing drains.
    const again = parseListener(rawListener("a", "v1"), "static_resources.listeners[3]", registries);
    assertEquals(m.addOrUpdate(again), "unchanged");
    assertEquals(m.get("a"), l);
    assertEquals(m.drainingConnections, 0);
    assertEquals(await c.get(), { body: "v1", close: false });
    c.close();
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager remove stops accepting, drains, and closes after the drain time", async () => {
  const m = manager(300);
  try {
    m.addOrUpdate(listener("a", "v1"));
    const port = m.get("a")!.port;
    const idle = await Client.open(port);
    assertEquals((await idle.get()).body, "v1");
    assert(m.remove("a"));
    assertEquals(m.get("a"), undefined);
    assertEquals(m.list.length, 0);
    assert(await refused(port));
    assertEquals(m.connections, 1);
    assert(await idle.closedByPeer());
    idle.close();
    assertEquals(m.remove("a"), false);
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager a bind failure names the listener and leaves nothing bound", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  const m = manager();
  try {
    const e = assertThrows(() => m.addOrUpdate(listener("b", "x", {}, port)), ListenerError);
    assertMatch(e.message, new RegExp(`^listener "b": cannot bind 127\\.0\\.0\\.1:${port}: `));
    assertEquals(e.field, "address");
    assertEquals(m.get("b"), undefined);
    assertEquals(m.list.length, 0);
    // An update that moves a listener to a busy address fails the same way; the old config keeps serving.
    m.addOrUpdate(listener("a", "v1"));
    const l = m.get("a")!;
    assertThrows(() => m.addOrUpdate(listener("a", "v2", {}, port)), ListenerError, `listener "a": cannot bind`);
    assertEquals(m.get("a"), l);
    assertEquals(await getOnce(l.port), "v1");
  } finally {
    m.closeAll();
    busy.close();
  }
});

Deno.test("ListenerManager a new address binds a new socket and the old one stops accepting", async () => {
  const m = manager(300);
  try {
    m.addOrUpdate(listener("a", "v1"));
    const oldPort = m.get("a")!.port;
    const held = await Client.open(oldPort);
    assertEquals((await held.get()).body, "v1");
    const newPort = freePort();
    assertEquals(m.addOrUpdate(listener("a", "v2", {}, newPort)), "updated");
    assertEquals(m.get("a")!.port, newPort);
    assertEquals(await getOnce(newPort), "v2");
    assert(await refused(oldPort));
    // The old listener's connection still answers on its chain, with connection: close.
    assertEquals(await held.get(), { body: "v1", close: true });
    held.close();
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager a change the socket must follow takes over the port on a second socket", async () => {
  const m = manager();
  try {
    m.addOrUpdate(listener("a", "v1"));
    const l = m.get("a")!;
    const port = l.port;
    // On the epoll engine the per-connection buffer limit is a socket setting: a new socket, same port.
    m.addOrUpdate(listener("a", "v2", { per_connection_buffer_limit_bytes: 65536 }));
    const next = m.get("a")!;
    assertEquals(next.port, port);
    if (l.engine === "epoll") assert(next !== l, "a new socket");
    assertEquals(await getOnce(port), "v2");
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager static listeners cannot be updated or removed through the API", () => {
  const m = manager();
  try {
    m.addOrUpdate(listener("s", "v1"), { addedViaApi: false });
    assertThrows(() => m.addOrUpdate(listener("s", "v2")), ListenerError, "statically configured");
    assertThrows(() => m.remove("s"), ListenerError, "statically configured");
    // The bootstrap's own path may (a reload through the same calls).
    assertEquals(m.addOrUpdate(listener("s", "v2"), { addedViaApi: false }), "updated");
  } finally {
    m.closeAll();
  }
});

Deno.test("ListenerManager rejects a second listener on a bound address", () => {
  const m = manager();
  try {
    m.addOrUpdate(listener("a", "v1"));
    const port = m.get("a")!.port;
    // SO_REUSEPORT would let a second socket bind the port "a" got: the manager must refuse.
    const e = assertThrows(() => m.addOrUpdate(listener("pinned", "v1", {}, port)), ListenerError);
    assertEquals(e.message, `listener "pinned": has the address 127.0.0.1:${port} of listener "a"`);
    assertEquals(m.get("pinned"), undefined);
  } finally {
    m.closeAll();
  }
});
