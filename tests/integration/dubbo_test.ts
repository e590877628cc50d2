/**
 * Dubbo through Ferry's RPC proxy with real peers run by `node`: sofa-rpc-node providers and consumer over
 * js-remoting-for-apache-dubbo, and dubbo2.js (DirectlyDubbo) as a second consumer (`tests/integration/dubbo/`,
 * installed by `.ci/run` with `npm ci`). Raw sockets for heartbeats and malformed frames.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { encodeFrame, encodeHeartbeatRequest } from "../../codecs/dubbo/encoder.ts";
import { DubboFrameDecoder } from "../../codecs/dubbo/decoder.ts";
import { Hessian2Reader } from "../../codecs/dubbo/hessian2.ts";
import { itOpts, sleep, startFerry, stat } from "./_harness.ts";
import { spawnNodePeer } from "../helpers/rpc_peers.ts";

const PEERS = new URL("./dubbo/", import.meta.url).pathname;
const NODE = "/usr/bin/node";
const ECHO = "com.ferry.EchoService";
const OTHER = "com.ferry.OtherService";

function peersInstalled(): void {
  try {
    Deno.statSync(`${PEERS}node_modules/sofa-rpc-node`);
  } catch {
    throw new Error(`dubbo peers missing: run "npm ci" in ${PEERS} (.ci/run does)`);
  }
}

/** A running node provider. */
interface Provider {
  readonly port: number;
  kill(): Promise<void>;
}

async function startProvider(tag: string, services: string): Promise<Provider> {
  const peer = await spawnNodePeer([`${PEERS}provider.mjs`, tag, services], {
    ready: /PORT (\d+)/,
    what: `provider ${tag}`,
    node: NODE,
    cwd: PEERS,
    stdin: "null",
    stderr: "null",
  });
  return { port: Number(peer.ready[1]), kill: () => peer.kill() };
}

/** What a consumer script prints. */
interface Result {
  ok: number;
  mismatched: number;
  errors: Record<string, number>;
  answers: Record<string, number>;
  ms: number;
}

async function consume(script: "consumer.mjs" | "dubbo2_consumer.mjs", args: (string | number)[]): Promise<Result> {
  const out = await new Deno.Command(NODE, {
    args: [`${PEERS}${script}`, ...args.map(String)],
    cwd: PEERS,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const last = text.split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as Result;
  } catch {
    throw new Error(
      `${script} ${args.join(" ")}: no result (exit ${out.code}): ${text}\n` +
        new TextDecoder().decode(out.stderr),
    );
  }
}

/** Ferry from `yaml`, with its listener ports by name and its stats by name. */
async function startRpcFerry(yaml: string) {
  const ferry = await startFerry(yaml);
  return {
    port: (name: string) => ferry.port(name),
    stats: (name: string) => stat(ferry, name),
    stop: () => ferry.stop(),
  };
}

function cluster(name: string, port: number): string {
  return `
  - name: ${name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: ${name}
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } }`;
}

function listener(name: string, protocol: string, extra = ""): string {
  return `
  - name: ${name}
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: ferry.filters.network.rpc_proxy
        typed_config:
          "@type": type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy
          stat_prefix: ${name}
          protocol: ${protocol}
${extra}
          route_config:
            name: ${name}
            virtual_hosts:
            - name: echo
              domains: ["${ECHO}"]
              routes:
              - match: { prefix: "/", headers: [{ name: version, string_match: { exact: "2.0.0" } }] }
                route: { cluster: v2 }
              - match: { prefix: "/${ECHO}/slow" }
                route: { cluster: slow, timeout: 0s }
              - match: { prefix: "/" }
                route: { cluster: v1 }
            - name: other
              domains: ["${OTHER}"]
              routes: [{ match: { prefix: "/" }, route: { cluster: other } }]`;
}

/** Three providers: A (EchoService 1.0.0), B (EchoService 2.0.0), C (OtherService 1.0.0); D for slow/kill. */
async function setup() {
  peersInstalled();
  const [a, b, c, d] = await Promise.all([
    startProvider("A", `${ECHO}:1.0.0`),
    startProvider("B", `${ECHO}:2.0.0`),
    startProvider("C", `${OTHER}:1.0.0`),
    startProvider("D", `${ECHO}:1.0.0`),
  ]);
  const ferry = await startRpcFerry(`
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:${listener("dubbo", "DUBBO")}${listener("auto", "AUTO")}${
    listener("short", "DUBBO", "          request_timeout: 0.3s")
  }
  clusters:${cluster("v1", a.port)}${cluster("v2", b.port)}${cluster("other", c.port)}${cluster("slow", d.port)}
`);
  return {
    ferry,
    providers: { a, b, c, d },
    async stop() {
      await ferry.stop();
      await Promise.all([a, b, c, d].map((p) => p.kill()));
    },
  };
}

/** Runs `body` against a fresh {@link setup}, stopped afterwards whatever happened. */
async function withSetup(body: (env: Awaited<ReturnType<typeof setup>>) => Promise<void>): Promise<void> {
  const env = await setup();
  try {
    await body(env);
  } finally {
    await env.stop();
  }
}

Deno.test(
  "dubbo: sofa-rpc-node consumer, 10,000 calls at concurrency 100 through Ferry, answers matched",
  itOpts,
  async () => {
    await withSetup(async (env) => {
      const host = `127.0.0.1:${env.ferry.port("dubbo")}`;
      const r = await consume("consumer.mjs", [host, ECHO, "1.0.0", 10_000, 100]);
      assertEquals(r.errors, {});
      assertEquals([r.ok, r.mismatched, r.answers], [10_000, 0, { A: 10_000 }]);
      assertEquals(await env.ferry.stats("dubbo.downstream_rq_total"), 10_000);
      assertEquals(await env.ferry.stats("dubbo.dubbo.request"), 10_000);
      assertEquals(await env.ferry.stats("dubbo.dubbo.response_ok"), 10_000);
      assertEquals(await env.ferry.stats("dubbo.dubbo.request_active"), 0);
      // Multiplexed: a few upstream connections carry all of them.
      const cx = (await env.ferry.stats("cluster.v1.upstream_cx_total")) ?? 0;
      assert(cx >= 1 && cx <= 4, `upstream connections: ${cx}`);
      console.log(`sofa-rpc-node via Ferry: 10,000 calls at 100 in ${r.ms} ms over ${cx} upstream connection(s)`);
    });
  },
);

Deno.test(
  "dubbo: dubbo2.js DirectlyDubbo, 10,000 calls at concurrency 100 through the AUTO listener",
  itOpts,
  async () => {
    await withSetup(async (env) => {
      const host = `127.0.0.1:${env.ferry.port("auto")}`;
      const r = await consume("dubbo2_consumer.mjs", [host, ECHO, "1.0.0", 10_000, 100]);
      assertEquals(r.errors, {});
      assertEquals([r.ok, r.mismatched, r.answers], [10_000, 0, { A: 10_000 }]);
      console.log(`dubbo2.js via Ferry: 10,000 calls at 100 in ${r.ms} ms`);
    });
  },
);

Deno.test(
  "dubbo: routing by service and version to different providers; unknown service → SERVICE_NOT_FOUND",
  itOpts,
  async () => {
    await withSetup(async (env) => {
      const host = `127.0.0.1:${env.ferry.port("dubbo")}`;
      const [v1, v2, other, d2v2, none] = await Promise.all([
        consume("consumer.mjs", [host, ECHO, "1.0.0", 50, 5]),
        consume("consumer.mjs", [host, ECHO, "2.0.0", 50, 5]),
        consume("consumer.mjs", [host, OTHER, "1.0.0", 50, 5]),
        consume("dubbo2_consumer.mjs", [host, ECHO, "2.0.0", 50, 5]),
        consume("consumer.mjs", [host, "com.ferry.Missing", "1.0.0", 3, 1]),
      ]);
      assertEquals(v1.answers, { A: 50 });
      assertEquals(v2.answers, { B: 50 });
      assertEquals(other.answers, { C: 50 });
      assertEquals(d2v2.answers, { B: 50 });
      assertEquals(none.ok, 0);
      assertEquals(Object.keys(none.errors), ["ferry: no route for service com.ferry.Missing:1.0.0 method echo"]);
      assertEquals(await env.ferry.stats("dubbo.dubbo.response_service_not_found"), 3);
    });
  },
);

Deno.test(
  "dubbo: an upstream killed mid-call → in-protocol SERVICE_ERROR, then errors, never a hang",
  itOpts,
  async () => {
    await withSetup(async (env) => {
      const host = `127.0.0.1:${env.ferry.port("dubbo")}`;
      // 20 calls of slow(2 s) in flight on D, which is killed once all 20 are in flight through Ferry.
      const pending = consume("consumer.mjs", [host, ECHO, "1.0.0", 20, 20, "slow", 10_000]);
      const active = async () => (await env.ferry.stats("dubbo.dubbo.request_active")) ?? 0;
      for (let i = 0; i < 400 && (await active()) < 20; i++) await sleep(25);
      assertEquals(await active(), 20);
      await env.providers.d.kill();
      const r = await pending;
      assertEquals(r.ok, 0);
      const msgs = Object.keys(r.errors);
      assertEquals(Object.values(r.errors).reduce((a, b) => a + b, 0), 20);
      // Every call was written to D: each may have run there, so none is re-sent (no retry policy on the route).
      assertEquals(msgs, [
        "ferry: upstream connect error or disconnect/reset before headers. reset reason: remote-reset",
      ]);
      assertEquals(await env.ferry.stats("dubbo.dubbo.response_service_error"), 20);
      console.log(`killed upstream: ${JSON.stringify(r.errors)} after ${r.ms} ms`);
      assert(r.ms < 5000, `answered after ${r.ms} ms`);
      // With D gone, calls fail at once in the protocol (connect failure), still no hang.
      const after = await consume("consumer.mjs", [host, ECHO, "1.0.0", 5, 5, "slow", 10_000]);
      assertEquals(after.ok, 0);
      assert(after.ms < 5000, `answered after ${after.ms} ms`);
      console.log(`after the kill: ${JSON.stringify(after.errors)} after ${after.ms} ms`);
      // Other services are unaffected.
      assertEquals((await consume("consumer.mjs", [host, ECHO, "1.0.0", 20, 5])).answers, { A: 20 });
      assertEquals(await env.ferry.stats("dubbo.dubbo.response_service_error"), 25);
    });
  },
);

Deno.test("dubbo: request_timeout answers SERVER_TIMEOUT before the consumer's own deadline", itOpts, async () => {
  await withSetup(async (env) => {
    const host = `127.0.0.1:${env.ferry.port("short")}`;
    const r = await consume("consumer.mjs", [host, ECHO, "1.0.0", 5, 5, "slow", 10_000]);
    assertEquals(r.ok, 0);
    assertEquals(Object.values(r.errors).reduce((a, b) => a + b, 0), 5);
    assert(Object.keys(r.errors).every((m) => m.includes("timeout")), Object.keys(r.errors).join(" | "));
    assert(r.ms < 2000, `answered after ${r.ms} ms`);
    console.log(`timeout: ${JSON.stringify(r.errors)} after ${r.ms} ms`);
    assertEquals(await env.ferry.stats("short.dubbo.response_server_timeout"), 5);
  });
});

/** Raw frames: sends `data`, reads frames until `want` arrived or the peer closed; returns them and whether closed. */
async function exchange(port: number, data: Uint8Array, want: number, idleMs = 3000) {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const frames: { flag: number; status: number; id: number; body: Uint8Array }[] = [];
  const dec = new DubboFrameDecoder();
  let closed = false;
  try {
    await c.write(data);
    const buf = new Uint8Array(65536);
    while (frames.length < want) {
      const n = await Promise.race([c.read(buf), sleep(idleMs).then(() => -1)]);
      if (n === -1) break;
      if (n === null) {
        closed = true;
        break;
      }
      dec.feed(buf.subarray(0, n), (flag, status, hi, lo, body) => {
        frames.push({ flag, status, id: hi * 2 ** 32 + lo, body: body.slice() });
      });
    }
    if (!closed && want === 0) {
      const n = await Promise.race([c.read(buf), sleep(idleMs).then(() => -1)]);
      closed = n === null;
    }
  } catch {
    closed = true;
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
  return { frames, closed };
}

const CAPTURE = Deno.readFileSync(new URL("../../codecs/dubbo/testdata/sofa_echo_requests.bin", import.meta.url));
/** The first captured request (echo("c0") to EchoService 1.0.0, id 1). */
const REQUEST = CAPTURE.subarray(0, 0xb3);

Deno.test(
  "dubbo: heartbeats answered by Ferry; malformed frames close or answer that connection only",
  itOpts,
  async () => {
    await withSetup(async (env) => {
      const port = env.ferry.port("dubbo");
      // Heartbeat then a request on one connection.
      const hb = await exchange(port, new Uint8Array([...encodeHeartbeatRequest(0, 42), ...REQUEST]), 2);
      assertEquals(hb.frames.map((f) => [f.id, f.flag, f.status]), [[42, 0x22, 20], [1, 0x02, 20]]);
      assertEquals(new Hessian2Reader(hb.frames[1]!.body, 1).readString(), "A:c0");
      assertEquals(await env.ferry.stats("dubbo.dubbo.heartbeat"), 1);

      // A load runs on other connections meanwhile and must not notice.
      const load = consume("consumer.mjs", [`127.0.0.1:${port}`, ECHO, "1.0.0", 2000, 20]);
      // Bad magic: closed.
      const bad = await exchange(port, new Uint8Array([0xca, 0xfe, ...REQUEST.subarray(2)]), 0);
      assertEquals([bad.frames.length, bad.closed], [0, true]);
      // Huge length: closed.
      const huge = REQUEST.slice(0, 16);
      huge.set([0x7f, 0xff, 0xff, 0xff], 12);
      const big = await exchange(port, huge, 0);
      assertEquals([big.frames.length, big.closed], [0, true]);
      // Truncated hessian: BAD_REQUEST for that id, and the connection carries on.
      const cut = encodeFrame(0xc2, 0, 0, 9, REQUEST.subarray(16, 60));
      const tr = await exchange(port, new Uint8Array([...cut, ...REQUEST]), 2);
      assertEquals(tr.frames.map((f) => [f.id, f.status]), [[9, 40], [1, 20]]);
      // The same id twice in flight: closed (answers could not be told apart).
      const reuse = await exchange(port, new Uint8Array([...REQUEST, ...REQUEST]), 2, 1500);
      assertEquals(reuse.closed, true);
      const r = await load;
      assertEquals([r.ok, r.errors], [2000, {}]);
      assert(((await env.ferry.stats("dubbo.dubbo.request_decoding_error")) ?? 0) >= 3);
    });
  },
);
