/**
 * Upgrades end to end: a route's `upgrade_configs` overriding the connection manager's, the upgrade gauges, the
 * connection-close stats (`downstream_cx_destroy_remote` / `_local`), and what follows an upgrade request or CONNECT
 * in the same write: held until the upstream accepts, never forwarded when it declines.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  catchAllRoute,
  curl,
  hcmBootstrap,
  itOpts,
  rawRequest,
  readHead,
  sleep,
  startFerry,
  startRawServer,
  stat,
  staticCluster,
} from "./_harness.ts";
import type { TestFerry } from "./_harness.ts";

const WS_REQUEST = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** An echoing WebSocket upstream. */
function startWsUpstream(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
}

/** Opens a WebSocket through Ferry and waits for one echo. */
async function openEcho(f: TestFerry, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${f.port()}${path}`);
  const got = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("timeout")), 3000);
    ws.onopen = () => ws.send("hi");
    ws.onmessage = (e) => {
      clearTimeout(t);
      resolve(String(e.data));
    };
    ws.onerror = (e) => {
      clearTimeout(t);
      reject(new Error(`websocket error: ${(e as ErrorEvent).message}`));
    };
  });
  assertEquals(got, "echo:hi");
  return ws;
}

async function closeWs(ws: WebSocket): Promise<void> {
  const closed = new Promise<void>((r) => ws.onclose = () => r());
  ws.close();
  await closed;
}

/** Polls `name` until it equals `want` (stats settle after the close propagates). */
async function statSettles(f: TestFerry, name: string, want: number): Promise<void> {
  let v: number | undefined;
  for (let i = 0; i < 50; i++) {
    v = await stat(f, name);
    if (v === want) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals(v, want, name);
}

Deno.test(
  "upgrade a route's upgrade_configs enables WebSocket where the connection manager does not",
  itOpts,
  async () => {
    const srv = startWsUpstream();
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/ws" }
    route: { cluster: ws, upgrade_configs: [{ upgrade_type: websocket }] }
  - match: { prefix: "/" }
    route: { cluster: ws }`,
      clusters: staticCluster("ws", [srv.addr.port]),
    }));
    try {
      const ws = await openEcho(f, "/ws/chat");
      assertEquals(await stat(f, "http.test.downstream_cx_upgrades_total"), 1);
      assertEquals(await stat(f, "http.test.downstream_cx_upgrades_active"), 1);
      await closeWs(ws);
      await statSettles(f, "http.test.downstream_cx_upgrades_active", 0);
      const out = await rawRequest(f.port(), WS_REQUEST("/other"));
      assertMatch(out, /^HTTP\/1\.1 403/);
      assertEquals(await stat(f, "http.test.downstream_rq_ws_on_non_ws_route"), 1);
    } finally {
      await f.stop();
      await srv.shutdown();
    }
  },
);

Deno.test(
  "upgrade a route's upgrade_configs with enabled: false refuses what the connection manager enables",
  itOpts,
  async () => {
    const srv = startWsUpstream();
    const f = await startFerry(hcmBootstrap({
      routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/off" }
    route: { cluster: ws, upgrade_configs: [{ upgrade_type: websocket, enabled: false }] }
  - match: { prefix: "/" }
    route: { cluster: ws }`,
      clusters: staticCluster("ws", [srv.addr.port]),
      hcmExtra: "upgrade_configs: [{ upgrade_type: websocket }]",
    }));
    try {
      const out = await rawRequest(f.port(), WS_REQUEST("/off"));
      assertMatch(out, /^HTTP\/1\.1 403/);
      const ws = await openEcho(f, "/on");
      await closeWs(ws);
    } finally {
      await f.stop();
      await srv.shutdown();
    }
  },
);

Deno.test("connection manager counts closes by the peer and by Ferry apart", itOpts, async () => {
  const f = await startFerry(hcmBootstrap({
    routes:
      `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    direct_response: { status: 200 }`,
  }));
  try {
    // curl closes a kept-alive connection itself; `connection: close` makes Ferry close it.
    assertEquals((await curl(`http://127.0.0.1:${f.port()}/`)).status, 200);
    await statSettles(f, "http.test.downstream_cx_destroy", 1);
    assertEquals(await stat(f, "http.test.downstream_cx_destroy_remote"), 1);
    assertEquals(await stat(f, "http.test.downstream_cx_destroy_local"), 0);
    const r = await curl(`http://127.0.0.1:${f.port()}/`, ["-H", "connection: close"]);
    assertEquals(r.status, 200);
    await statSettles(f, "http.test.downstream_cx_destroy", 2);
    assertEquals(await stat(f, "http.test.downstream_cx_destroy_remote"), 1);
    assertEquals(await stat(f, "http.test.downstream_cx_destroy_local"), 1);
    assert((await stat(f, "http.test.downstream_cx_active")) === 0);
  } finally {
    await f.stop();
  }
});

/**
 * A raw upstream that answers the first request head of each connection with `answer`, then records every later
 * byte of that connection; `open` counts the connections it has not yet seen closed.
 */
function startDecliningUpstream(answer: string) {
  const heads: string[] = [];
  const after: string[] = [];
  let open = 0;
  const srv = startRawServer(async (c) => {
    open++;
    const i = after.push("") - 1;
    try {
      const got = await readHead(c);
      const end = got.indexOf("\r\n\r\n");
      heads.push(end < 0 ? got : got.slice(0, end + 4));
      if (end >= 0) after[i] += got.slice(end + 4);
      await c.write(new TextEncoder().encode(answer));
      const buf = new Uint8Array(4096);
      for (let n; (n = await c.read(buf)) !== null;) after[i] += new TextDecoder().decode(buf.subarray(0, n));
    } catch {
      /* closed */
    } finally {
      open--;
    }
  });
  return {
    ...srv,
    heads,
    after,
    get open() {
      return open;
    },
  };
}

/** Reads until EOF (or `ms` passes: then `timedOut`). */
async function readToEof(c: Deno.Conn, ms = 3000): Promise<{ text: string; timedOut: boolean }> {
  let text = "";
  const buf = new Uint8Array(16384);
  const timer = setTimeout(() => c.close(), ms);
  try {
    for (let n; (n = await c.read(buf)) !== null;) text += new TextDecoder().decode(buf.subarray(0, n));
    return { text, timedOut: false };
  } catch {
    return { text, timedOut: true };
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const SMUGGLED = "GET /second HTTP/1.1\r\nHost: x\r\nX-Envoy-Internal: true\r\n\r\n";

for (
  const [kind, request, route] of [
    ["an upgrade", WS_REQUEST("/ws"), `{ prefix: "/" }`],
    ["a CONNECT", "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", "{ connect_matcher: {} }"],
  ] as const
) {
  Deno.test(
    `${kind} the upstream declines: the bytes after it never reach the upstream, both connections close`,
    itOpts,
    async () => {
      const up = startDecliningUpstream("HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno such\r\n");
      const f = await startFerry(hcmBootstrap({
        routes: `- name: all\n  domains: ["*"]\n  routes:\n  - match: ${route}\n    route: { cluster: up }`,
        clusters: staticCluster("up", [up.port]),
        hcmExtra: "upgrade_configs: [{ upgrade_type: websocket }, { upgrade_type: CONNECT }]",
      }));
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
      try {
        // The request and a second one in one write.
        await c.write(new TextEncoder().encode(request + SMUGGLED));
        const { text, timedOut } = await readToEof(c);
        assert(!timedOut, `the downstream connection stayed open after ${JSON.stringify(text)}`);
        assertMatch(text, /^HTTP\/1\.1 404 Not Found\r\n/);
        assertMatch(text, /\r\nconnection: close\r\n/);
        assert(text.endsWith("\r\n\r\nno such\r\n"), JSON.stringify(text));
        // The upstream saw only the first request; not one byte of the second (raw or parsed).
        assertEquals(up.heads.length, 1);
        assertMatch(up.heads[0]!, kind === "a CONNECT" ? /^CONNECT db\.example:5432 / : /^GET \/ws /);
        assertEquals(up.after, [""]);
        // Its connection was closed by Ferry, not kept (busy forever) in the pool.
        await waitFor(() => up.open === 0, "the upstream connection to close");
        await waitFor(async () => (await stat(f, "cluster.up.upstream_cx_active")) === 0, "upstream_cx_active 0");
        assertEquals(await stat(f, "cluster.up.upstream_cx_destroy_local"), 1);
        assertEquals(await stat(f, "cluster.up.upstream_rq_active"), 0);
      } finally {
        try {
          c.close();
        } catch { /* closed */ }
        await f.stop();
        up.close();
      }
    },
  );
}

Deno.test("upgrade bytes sent with the request reach the upstream only after its 101", itOpts, async () => {
  const early: string[] = [];
  const got: string[] = [];
  const up = startRawServer(async (c) => {
    const head = await readHead(c);
    const end = head.indexOf("\r\n\r\n");
    early.push(head.slice(end + 4));
    // Anything more that came before the 101 would be an early forward.
    const buf = new Uint8Array(4096);
    const pending = c.read(buf);
    const more = await Promise.race([pending, sleep(200).then(() => "none" as const)]);
    if (more !== "none") early.push(more === null ? "<eof>" : new TextDecoder().decode(buf.subarray(0, more)));
    let all = "";
    await c.write(
      new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
    );
    if (more === "none") {
      // The read still in flight gets what follows the 101.
      const n = await pending;
      if (n !== null) all += new TextDecoder().decode(buf.subarray(0, n));
    }
    for (let n; !all.includes("frame-2") && (n = await c.read(buf)) !== null;) {
      all += new TextDecoder().decode(buf.subarray(0, n));
    }
    got.push(all);
    await c.write(new TextEncoder().encode("pong"));
  });
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [up.port]),
    hcmExtra: "upgrade_configs: [{ upgrade_type: websocket }]",
  }));
  const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
  try {
    await c.write(new TextEncoder().encode(WS_REQUEST("/ws") + "frame-1"));
    const buf = new Uint8Array(4096);
    const readUntil = async (text: string, done: (t: string) => boolean): Promise<string> => {
      while (!done(text)) {
        const n = await Promise.race([c.read(buf), sleep(3000).then(() => null)]);
        if (n === null) throw new Error(`no more data after ${JSON.stringify(text)}`);
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return text;
    };
    let text = await readUntil("", (t) => t.includes("\r\n\r\n"));
    assertMatch(text, /^HTTP\/1\.1 101 /);
    await c.write(new TextEncoder().encode("frame-2"));
    text = await readUntil(text, (t) => t.endsWith("pong"));
    assertEquals(early, [""]);
    assertEquals(got, ["frame-1frame-2"]);
  } finally {
    c.close();
    await f.stop();
    up.close();
  }
});
