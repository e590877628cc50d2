/**
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT) translated to and from HTTP/1.1 upgrades, as Envoy does:
 * - an HTTP/2 client (python3-h2) sends `CONNECT` with `:protocol: websocket` to an AUTO listener with
 *   `allow_connect`; an HTTP/1.1 upstream sees `GET` with `upgrade: websocket`, answers 101, and the client gets 200
 *   and a byte-transparent tunnel both ways;
 * - an HTTP/1.1 client sends a WebSocket upgrade to a cluster that speaks HTTP/2; a `node:http2` upstream with
 *   `enableConnectProtocol` sees the extended CONNECT, answers 200, and the client gets 101 and the tunnel;
 * - without `allow_connect` the extended CONNECT is refused (RST_STREAM, the connection carries on).
 *
 * Needs /usr/bin/python3 with python3-h2 and node (both installed by CI).
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  catchAllRoute,
  hcmBootstrap,
  itOpts,
  readHead,
  startFerry,
  startRawServer,
  staticCluster,
} from "./_harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Python: one extended CONNECT, "ping-1", "ping-2" as DATA, prints the status and what came back, as JSON. */
const PY_CLIENT = `
import json, socket, sys, time
import h2.config, h2.connection, h2.events
port = int(sys.argv[1])
sock = socket.create_connection(("127.0.0.1", port), timeout=5)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
out = {"status": None, "body": "", "reset": None, "settings_connect": None, "settings": False, "error": None}
def pump(until):
    deadline = time.monotonic() + 5
    while not until() and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                out["settings"] = True
                for k, v in ev.changed_settings.items():
                    if int(k) == 8:
                        out["settings_connect"] = v.new_value
            elif isinstance(ev, h2.events.ResponseReceived):
                out["status"] = dict(ev.headers).get(":status")
            elif isinstance(ev, h2.events.DataReceived):
                out["body"] += ev.data.decode()
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                out["reset"] = ev.error_code
        sock.sendall(conn.data_to_send())
pump(lambda: out["settings"])
sid = conn.get_next_available_stream_id()
try:
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                            (":path", "/chat"), (":authority", "ferry.test"), ("sec-websocket-version", "13")])
except Exception as e:
    out["error"] = type(e).__name__
    print(json.dumps(out))
    sys.exit(0)
sock.sendall(conn.data_to_send())
pump(lambda: out["status"] is not None or out["reset"] is not None)
if out["status"] == "200":
    conn.send_data(sid, b"ping-1")
    sock.sendall(conn.data_to_send())
    pump(lambda: "ping-1" in out["body"])
    conn.send_data(sid, b"ping-2")
    sock.sendall(conn.data_to_send())
    pump(lambda: "ping-2" in out["body"])
print(json.dumps(out))
`;

async function runPython(port: number): Promise<Record<string, unknown>> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/client.py`, PY_CLIENT);
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [`${dir}/client.py`, String(port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = dec.decode(out.stdout).trim();
    assert(out.success, `python: ${dec.decode(out.stderr)}`);
    return JSON.parse(text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An HTTP/1.1 upstream that accepts a WebSocket upgrade (any request with `upgrade`), then echoes raw bytes. */
function startH1UpgradeEcho(seen: string[]) {
  return startRawServer(async (c) => {
    const head = await readHead(c);
    seen.push(head);
    await c.write(enc.encode("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"));
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      await c.write(buf.slice(0, n));
    }
    c.close();
  });
}

function bootstrap(clusterPort: number, extraCluster = "", allowConnect = true): string {
  return hcmBootstrap({
    routes: catchAllRoute("{ cluster: up }"),
    clusters: staticCluster("up", [clusterPort], extraCluster),
    hcmExtra: `upgrade_configs: [{ upgrade_type: websocket }]\n` +
      (allowConnect ? `http2_protocol_options: { allow_connect: true }` : ""),
  });
}

Deno.test(
  "websocket over HTTP/2: extended CONNECT downstream becomes an HTTP/1.1 upgrade upstream",
  itOpts,
  async () => {
    const seen: string[] = [];
    const up = startH1UpgradeEcho(seen);
    const f = await startFerry(bootstrap(up.port));
    try {
      const r = await runPython(f.port());
      assertEquals(r.settings_connect, 1, "SETTINGS_ENABLE_CONNECT_PROTOCOL advertised");
      assertEquals(r.status, "200");
      assertEquals(r.reset, null);
      assertEquals(r.body, "ping-1ping-2");
      assertEquals(seen.length, 1);
      assertMatch(seen[0]!, /^GET \/chat HTTP\/1\.1\r\n/);
      assertMatch(seen[0]!, /\r\nupgrade: websocket\r\n/i);
      assertMatch(seen[0]!, /\r\nconnection: upgrade\r\n/i);
      assertMatch(seen[0]!, /\r\nhost: ferry\.test\r\n/i);
      assertMatch(seen[0]!, /\r\nsec-websocket-version: 13\r\n/i);
    } finally {
      await f.stop();
      up.close();
    }
  },
);

Deno.test("websocket over HTTP/2: without allow_connect the extended CONNECT is refused", itOpts, async () => {
  const seen: string[] = [];
  const up = startH1UpgradeEcho(seen);
  const f = await startFerry(bootstrap(up.port, "", false));
  try {
    const r = await runPython(f.port());
    // No SETTINGS_ENABLE_CONNECT_PROTOCOL: python-h2 may refuse to send the request itself; if it does send it,
    // Ferry resets the stream (PROTOCOL_ERROR) and never forwards it.
    assertEquals(r.settings_connect, null, JSON.stringify(r));
    assertEquals(r.status, null, JSON.stringify(r));
    assert(r.error !== null || r.reset === 1, JSON.stringify(r));
    assertEquals(seen.length, 0);
  } finally {
    await f.stop();
    up.close();
  }
});

/** A node:http2 h2c upstream accepting extended CONNECT: 200, then echoes what the stream carries. */
const NODE_CONNECT_SERVER = `
const http2 = require("node:http2");
const s = http2.createServer({ settings: { enableConnectProtocol: true } });
s.on("stream", (st, h) => {
  console.error(JSON.stringify({ method: h[":method"], protocol: h[":protocol"], path: h[":path"] }));
  st.respond({ ":status": 200 });
  st.on("data", (d) => st.write(d));
  st.on("end", () => st.end());
});
s.listen(0, "127.0.0.1", () => console.log(s.address().port));
`;

Deno.test(
  "websocket over HTTP/2: an HTTP/1.1 upgrade becomes an extended CONNECT to an HTTP/2 upstream",
  itOpts,
  async () => {
    const child = new Deno.Command("node", { args: ["-e", NODE_CONNECT_SERVER], stdout: "piped", stderr: "piped" })
      .spawn();
    const reader = child.stdout.getReader();
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      line += dec.decode(value);
    }
    const upPort = Number(line.trim());
    const f = await startFerry(bootstrap(upPort, "http2_protocol_options: {}"));
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
      await c.write(enc.encode(
        "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      ));
      const head = await readHead(c);
      assertMatch(head, /^HTTP\/1\.1 101 /);
      assertMatch(head, /\r\nupgrade: websocket\r\n/i);
      await c.write(enc.encode("tunnel-bytes"));
      const buf = new Uint8Array(100);
      let got = "";
      const deadline = Date.now() + 5000;
      while (!got.includes("tunnel-bytes") && Date.now() < deadline) {
        const n = await c.read(buf);
        if (n === null) break;
        got += dec.decode(buf.subarray(0, n));
      }
      assertEquals(got, "tunnel-bytes");
      c.close();
    } finally {
      await f.stop();
      child.kill();
      const err = dec.decode((await child.output().catch(() => ({ stderr: new Uint8Array() }))).stderr);
      void err;
    }
  },
);
