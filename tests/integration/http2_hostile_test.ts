/**
 * Hostile HTTP/2 against a running Ferry (HCM `codec_type: AUTO` on plain TCP, h2c prior knowledge): floods
 * (rapid reset, CONTINUATION, PING, SETTINGS, empty DATA, PRIORITY, WINDOW_UPDATE), HPACK bomb, oversized header
 * lists, a zero-window stall, stream-id abuse, DATA beyond the window and a broken HPACK block. The attacks are
 * raw frames written by `h2/attack.py` (python3 + python3-hpack); a well-behaved bystander (`h2/client.py`,
 * python3-h2) keeps one HTTP/2 connection, opened before the first attack, and must get 200s during and after
 * each one.
 *
 * What each attack must get, following Envoy's codec and RFC 9113:
 * - floods end the connection with GOAWAY(ENHANCE_YOUR_CALM) and count `http2.<flood name>`; outbound floods
 *   (PING/SETTINGS acks piling up while the attacker does not read) close the connection and count
 *   `http2.outbound_control_flood` (a GOAWAY, if it gets out at all, says ENHANCE_YOUR_CALM);
 * - a header list over `max_request_headers_kb` / `max_headers_count` whose block HPACK could still decode
 *   (HPACK bomb, oversized list, too many fields) fails only its stream (431 or RST_STREAM), counts
 *   `http2.header_overflow`, and the same connection then serves a request;
 * - stream-id regression, reuse and even ids are connection errors PROTOCOL_ERROR (reuse of a closed stream may
 *   also be STREAM_CLOSED, RFC 9113 §5.1), an HPACK index past the table COMPRESSION_ERROR; each counts
 *   `http.test.downstream_cx_protocol_error`;
 * - DATA past a stream's window is a stream error FLOW_CONTROL_ERROR (RFC 9113 §6.9.1 allows either; nghttp2, so
 *   Envoy, resets the stream) and the connection serves on; streams whose upstream does not read stop getting
 *   window, so what Ferry accepts stays bounded. (The connection window cannot be overrun here: Ferry credits it
 *   as DATA arrives, and bounds memory by the stream windows instead.)
 * - a client that never opens its stream window gets its stream reset by the stream idle timeout while Ferry
 *   stops pulling the upstream's body (bounded buffering), and the connection stays up.
 *
 * Needs /usr/bin/python3 with python3-h2 (Debian's package; CI installs it).
 */
import { assert, assertEquals } from "../assert.ts";
import {
  hcmBootstrap,
  itOpts,
  startFerry,
  startRawServer,
  startUpstream,
  stat,
  staticCluster,
  type TestFerry,
} from "./_harness.ts";

const H2_DIR = new URL("./h2/", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";

/** What `attack.py` reports about the connection it attacked. */
interface AttackResult {
  attack: string;
  goaway: { code: string; last: number } | null;
  closed: boolean;
  rst: Record<string, string>;
  status: Record<string, string>;
  ping_acks: number;
  elapsed_s: number;
  [k: string]: unknown;
}

async function attack(name: string, port: number): Promise<AttackResult> {
  const out = await new Deno.Command(PYTHON, {
    args: [`${H2_DIR}attack.py`, name, String(port)],
    cwd: H2_DIR,
    // No __pycache__ in the source tree.
    env: { PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0 || !text) {
    throw new Error(`attack.py ${name} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text.split("\n").at(-1)!) as AttackResult;
}

/** The bystander: one HTTP/2 connection (python3-h2) kept across requests. */
interface Bystander {
  get(path: string): Promise<{ status: number | null; body: string; error?: string; reset?: number }>;
  close(): Promise<void>;
}

function startBystander(port: number): Bystander {
  const child = new Deno.Command(PYTHON, {
    args: [`${H2_DIR}client.py`, String(port)],
    cwd: H2_DIR,
    // No __pycache__ in the source tree.
    env: { PYTHONDONTWRITEBYTECODE: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let queue = Promise.resolve();
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const i = buffered.indexOf("\n");
      if (i >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        return line;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error("bystander exited");
      buffered += value;
    }
  };
  return {
    get(path) {
      // One request at a time: answers come back in order.
      const p = queue.then(async () => {
        await writer.write(new TextEncoder().encode(JSON.stringify({ method: "GET", path }) + "\n"));
        return JSON.parse(await nextLine());
      });
      queue = p.then(() => {}, () => {});
      return p;
    },
    async close() {
      await writer.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Counter deltas around `fn`. */
async function counting<T>(f: TestFerry, names: string[], fn: () => Promise<T>): Promise<[T, Record<string, number>]> {
  const before = await Promise.all(names.map((n) => stat(f, n)));
  const r = await fn();
  const after = await Promise.all(names.map((n) => stat(f, n)));
  const d: Record<string, number> = {};
  names.forEach((n, i) => d[n] = (after[i] ?? 0) - (before[i] ?? 0));
  return [r, d];
}

/** Bytes the `/big` response body has handed to Ferry so far (the upstream pulls 64 KiB at a time). */
let bigPulled = 0;
const BIG_TOTAL = 64 << 20;

function bigBody(): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(65536).fill(0x62);
  bigPulled = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (bigPulled >= BIG_TOTAL) return c.close();
      bigPulled += chunk.length;
      c.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

Deno.test(
  "http2 hostile: each attack ends its connection the Envoy way, is counted, and spares a bystander",
  itOpts,
  async (t) => {
    const up = await startUpstream((req) =>
      req.url.pathname === "/big" ? new Response(bigBody()) : new Response(`ok ${req.url.pathname}`)
    );
    // An upstream that accepts and never reads: request bodies sent to it back up into Ferry.
    const stall = startRawServer(async (c) => {
      await new Promise((r) => setTimeout(r, 30_000));
      c.close();
    });
    const routes = `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/big" }
    route: { cluster: up, idle_timeout: 1s }
  - match: { prefix: "/stall" }
    route: { cluster: stall, timeout: 0s }
  - match: { prefix: "/" }
    route: { cluster: up }`;
    const f = await startFerry(hcmBootstrap({
      routes,
      clusters: staticCluster("up", [up.port]) + "\n" + staticCluster("stall", [stall.port]),
      hcmExtra:
        "codec_type: AUTO\nmax_request_headers_kb: 16\ncommon_http_protocol_options: { max_headers_count: 100 }",
    }));
    const port = f.port();
    const by = startBystander(port);
    try {
      const first = await by.get("/before");
      assertEquals([first.status, first.body, first.error], [200, "ok /before", undefined], "bystander before");

      /** Runs the attack with a bystander request during it and one after it; returns the result and deltas. */
      const run = async (name: string, counters: string[]) => {
        const [[res, during], d] = await counting(f, counters, async () => {
          const a = attack(name, port);
          await new Promise((r) => setTimeout(r, 30));
          const during = await by.get(`/during-${name}`);
          return [await a, during] as const;
        });
        const after = await by.get(`/after-${name}`);
        const ctx = `${name}: ${JSON.stringify(res)} counters ${JSON.stringify(d)}`;
        assertEquals([during.status, during.error], [200, undefined], `bystander during ${ctx}`);
        assertEquals(
          [after.status, after.body, after.error],
          [200, `ok /after-${name}`, undefined],
          `bystander after ${ctx}`,
        );
        return { res, d, ctx };
      };

      const floods: [string, string][] = [
        ["rapid_reset", "http2.premature_reset"],
        ["continuation_flood", "http2.header_overflow"],
        ["continuation_empty_flood", "http2.inbound_empty_frames_flood"],
        ["empty_data_flood", "http2.inbound_empty_frames_flood"],
        ["priority_flood", "http2.inbound_priority_frames_flood"],
        ["window_update_flood", "http2.inbound_window_update_frames_flood"],
      ];
      for (const [name, counter] of floods) {
        await t.step(`${name}: GOAWAY(ENHANCE_YOUR_CALM), ${counter} counted`, async () => {
          const { res, d, ctx } = await run(name, [counter, "http2.goaway_sent"]);
          assertEquals(res.goaway?.code, "ENHANCE_YOUR_CALM", ctx);
          assert(res.closed, `connection not closed: ${ctx}`);
          assert(d[counter]! >= 1, `${counter} not counted: ${ctx}`);
          assert(d["http2.goaway_sent"]! >= 1, `goaway_sent not counted: ${ctx}`);
        });
      }

      for (const name of ["ping_flood", "settings_flood"]) {
        await t.step(`${name} while not reading: closed, http2.outbound_control_flood counted`, async () => {
          const { res, d, ctx } = await run(name, ["http2.outbound_control_flood"]);
          assert(res.closed, `connection not closed: ${ctx}`);
          assertEquals(res.blocked, false, `Ferry stopped reading instead of closing: ${ctx}`);
          if (res.goaway) assertEquals(res.goaway.code, "ENHANCE_YOUR_CALM", ctx);
          assert(d["http2.outbound_control_flood"]! >= 1, `not counted: ${ctx}`);
        });
      }

      for (const name of ["hpack_bomb", "oversized_headers", "too_many_headers"]) {
        await t.step(
          `${name}: the stream fails (431 or RST_STREAM), header_overflow counted, the connection serves on`,
          async () => {
            const { res, d, ctx } = await run(name, ["http2.header_overflow"]);
            assert(res.status["1"] === "431" || res.rst["1"] !== undefined, `stream 1 neither 431 nor reset: ${ctx}`);
            assertEquals(res.goaway, null, ctx);
            assertEquals(res.status["3"], "200", `the next request on the connection: ${ctx}`);
            assert(d["http2.header_overflow"]! >= 1, `not counted: ${ctx}`);
          },
        );
      }

      await t.step(
        "zero_window: the stalled stream is reset by the idle timeout, the upstream is not drained",
        async () => {
          const { res, d, ctx } = await run("zero_window", ["http.test.downstream_rq_idle_timeout"]);
          assertEquals(res.body_bytes, 0, ctx);
          assert(res.rst["1"] !== undefined, `stream 1 not reset: ${ctx}`);
          assert((res.reset_after_s as number) < 5, `reset too late: ${ctx}`);
          assertEquals(res.goaway, null, ctx);
          assert(res.ping_after, `connection dead after the reset: ${ctx}`);
          assert(d["http.test.downstream_rq_idle_timeout"]! >= 1, `idle timeout not counted: ${ctx}`);
          // Ferry buffers a bounded amount: far less than the 64 MiB the upstream would give.
          assert(bigPulled < 24 << 20, `upstream drained ${bigPulled} bytes for a client with window 0: ${ctx}`);
        },
      );

      const protocolErrors: [string, string[]][] = [
        ["stream_id_regression", ["PROTOCOL_ERROR"]],
        ["stream_id_reuse", ["PROTOCOL_ERROR", "STREAM_CLOSED"]],
        ["stream_id_even", ["PROTOCOL_ERROR"]],
        ["bad_hpack", ["COMPRESSION_ERROR"]],
      ];
      for (const [name, codes] of protocolErrors) {
        await t.step(`${name}: GOAWAY(${codes.join(" or ")}), protocol error counted`, async () => {
          const { res, d, ctx } = await run(name, ["http.test.downstream_cx_protocol_error"]);
          assert(res.goaway !== null && codes.includes(res.goaway.code), `GOAWAY ${res.goaway?.code}: ${ctx}`);
          assert(res.closed, `connection not closed: ${ctx}`);
          assert(d["http.test.downstream_cx_protocol_error"]! >= 1, `not counted: ${ctx}`);
        });
      }

      await t.step(
        "data_beyond_window: stalled streams stop getting window; DATA past a stream's window is RST_STREAM(FLOW_CONTROL_ERROR)",
        async () => {
          const { res, d, ctx } = await run("data_beyond_window", ["http2.tx_reset"]);
          assertEquals(res.unbounded, false, `Ferry kept opening the windows of streams it cannot forward: ${ctx}`);
          assert(res.target !== null, `no stream left to overrun: ${ctx}`);
          assertEquals(res.rst[String(res.target)], "FLOW_CONTROL_ERROR", ctx);
          assertEquals(res.goaway, null, ctx);
          assert(res.ping_after, `connection dead after the stream error: ${ctx}`);
          assert(d["http2.tx_reset"]! >= 1, `tx_reset not counted: ${ctx}`);
        },
      );

      const last = await by.get("/last");
      assertEquals(last.status, 200, "bystander at the end");
    } finally {
      await by.close();
      await f.stop();
      stall.close();
      await up.close();
    }
  },
);
