/**
 * Upgrades end to end: a route's `upgrade_configs` overriding the connection manager's, the upgrade gauges, and
 * the connection-close stats (`downstream_cx_destroy_remote` / `_local`).
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { curl, hcmBootstrap, itOpts, rawRequest, startFerry, stat, staticCluster } from "./_harness.ts";
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
