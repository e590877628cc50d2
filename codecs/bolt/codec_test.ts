import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { StreamDecoder, StreamEncoder } from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { BoltClientCodec, BoltServerCodec } from "./codec.ts";
import { BoltDecoder } from "./decoder.ts";
import { crc32, encodeFrame } from "./encoder.ts";
import { boltLocalReply, hessianMethodName, hessianString } from "./mapping.ts";
import { BoltStatus, CMD_HEARTBEAT, CMD_RESPONSE, TYPE_ONEWAY, TYPE_RESPONSE } from "./types.ts";
import type { BoltFrame } from "./types.ts";
import { boltFrame } from "../../tests/helpers/bolt_frames.ts";
import { assertThrows } from "../../tests/assert.ts";

/** Every frame the decoder yields from `b` (copied). */
function frames(b: Uint8Array): BoltFrame[] {
  const out: BoltFrame[] = [];
  new BoltDecoder((f) => out.push({ ...f, content: f.content.slice() })).push(b);
  return out;
}

interface Seen {
  headers: HeaderMap;
  body: Uint8Array;
  encoder: StreamEncoder;
  reset?: string;
}

function server(opts: ConstructorParameters<typeof BoltServerCodec>[2] = {}) {
  const out: Uint8Array[] = [];
  const seen: Seen[] = [];
  const codec = new BoltServerCodec((b) => out.push(b.slice()), {
    newStream(encoder) {
      const s: Seen = { headers: new HeaderMap(), body: new Uint8Array(0), encoder };
      seen.push(s);
      const d: StreamDecoder = {
        decodeHeaders(h) {
          s.headers = h;
        },
        decodeData(b) {
          s.body = b.slice();
        },
        decodeTrailers() {},
        onReset(r) {
          s.reset = r;
        },
      };
      return d;
    },
  }, opts);
  return { codec, out, seen };
}

const v1Request = boltFrame("v1_request");

Deno.test("BoltServerCodec maps a sofa-rpc-node request to routing headers, split at every byte", () => {
  for (let cut = 0; cut <= 40; cut++) {
    const { codec, seen } = server();
    const step = cut === 0 ? v1Request.length : cut;
    for (let i = 0; i < v1Request.length; i += step) codec.dispatch(v1Request.subarray(i, i + step));
    assertEquals(seen.length, 1, `cut ${cut}`);
    const h = seen[0]!.headers;
    assertEquals(h.get(":authority"), "com.alipay.test.EchoService");
    assertEquals(h.get(":path"), "/com.alipay.test.EchoService/echo");
    assertEquals(h.get("service"), "com.alipay.test.EchoService:1.0");
    assertEquals(h.get("version"), "1.0");
    assertEquals(h.get("method"), "echo");
    assertEquals(h.get("x-bolt-codec"), "hessian2");
    assertEquals(h.get("x-bolt-timeout"), "3000");
    assertEquals(h.get("x-bolt-request-id"), "7");
    assertEquals(h.get("x-bolt-class"), "com.alipay.sofa.rpc.core.request.SofaRequest");
    assertEquals(seen[0]!.body.length, frames(v1Request)[0]!.content.length);
  }
});

Deno.test("BoltDecoder checks the v2 CRC32 and rejects a corrupted one", () => {
  const b = boltFrame("v2_crc_request");
  const [f] = frames(b);
  assertEquals([f!.proto, f!.ver1, f!.switchCode, f!.requestId], [2, 1, 1, 9]);
  const bad = b.slice();
  bad[bad.length - 1]! ^= 1;
  const e = assertThrows(() => frames(bad), CodecError);
  assert(e.message.includes("CRC32"));
  // Our encoder writes the same CRC sofa-bolt-node does.
  assertEquals(encodeFrame(f!, f!.content), b);
  assertEquals(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("BoltServerCodec answers heartbeats itself and counts them", () => {
  let hb = 0;
  const stats = { request() {}, response() {}, decodeError() {}, heartbeat: () => hb++, active() {} };
  const { codec, out, seen } = server({ stats });
  codec.dispatch(boltFrame("v1_heartbeat"));
  assertEquals(seen.length, 0);
  assertEquals(hb, 1);
  const [ack] = frames(out[0]!);
  assertEquals([ack!.type, ack!.cmdCode, ack!.requestId, ack!.status], [TYPE_RESPONSE, CMD_HEARTBEAT, 3, 0]);
});

Deno.test("Bolt request through server and client codecs: new upstream id, same bytes, answer matched back", () => {
  const { codec, out, seen } = server();
  const up: Uint8Array[] = [];
  const client = new BoltClientCodec((b) => up.push(b.slice()));
  // A header key spelt with capitals keeps its spelling upstream.
  const [orig] = frames(v1Request);
  const withCase = encodeFrame({ ...orig!, header: [...orig!.header, "rpc_trace_context.sofaTraceId", "t1"] }, [
    orig!.content,
  ]);
  codec.dispatch(withCase);
  const s = seen[0]!;
  s.headers.set("x-forwarded-proto", "http");
  s.headers.set("x-envoy-expected-rq-timeout-ms", "100");
  let got: HeaderMap | undefined;
  let gotBody: Uint8Array | undefined;
  const enc = client.newStream({
    decodeHeaders(h) {
      got = h;
    },
    decodeData(b) {
      gotBody = b.slice();
    },
    decodeTrailers() {},
  });
  enc.encodeHeaders(s.headers, false);
  enc.encodeData(s.body, true);
  const [upFrame] = frames(up[0]!);
  assertEquals(upFrame!.requestId, 1);
  assertEquals(upFrame!.header, [
    "service",
    "com.alipay.test.EchoService:1.0",
    "rpc_trace_context.sofaTraceId",
    "t1",
  ]);
  assertEquals(upFrame!.content, orig!.content);
  assertEquals([upFrame!.timeout, upFrame!.codec, upFrame!.className], [3000, 1, orig!.className]);
  // The upstream answers id 1; the downstream gets id 7.
  const answer = hessianString("hello");
  client.dispatch(encodeFrame({
    ...upFrame!,
    type: TYPE_RESPONSE,
    cmdCode: CMD_RESPONSE,
    status: 0,
    className: "com.alipay.sofa.rpc.core.response.SofaResponse",
    header: [],
  }, answer));
  assertEquals(got!.get(":status"), "200");
  assertEquals(got!.get("x-bolt-status"), "0");
  assertEquals(client.activeStreams, 0);
  s.encoder.encodeHeaders(got!, false);
  s.encoder.encodeData(gotBody!, true);
  const [down] = frames(out[0]!);
  assertEquals([down!.type, down!.requestId, down!.status], [TYPE_RESPONSE, 7, 0]);
  assertEquals(down!.content, answer);
  assertEquals(down!.header, []);
  assertEquals(codec.idle, true);
});

Deno.test("BoltServerCodec: id reuse in flight, bad protocol code, huge lengths and responses are protocol errors", () => {
  const { codec } = server();
  codec.dispatch(v1Request);
  assertThrows(() => codec.dispatch(v1Request), CodecError, "reused");
  assertThrows(() => server().codec.dispatch(new Uint8Array([0x05, 1, 0, 1])), CodecError, "protocol code");
  const huge = v1Request.slice(0, 22);
  new DataView(huge.buffer).setInt32(18, 0x7fffff00);
  const e = assertThrows(() => server({ maxFrameBytes: 1 << 20 }).codec.dispatch(huge), CodecError);
  assertEquals(e.status, 413);
  const [f] = frames(v1Request);
  const resp = encodeFrame({ ...f!, type: TYPE_RESPONSE, cmdCode: CMD_RESPONSE, status: 0 }, []);
  assertThrows(() => server().codec.dispatch(resp), CodecError, "response");
});

Deno.test("BoltServerCodec: oneway requests get no response; a reset stream answers SERVER_EXCEPTION", () => {
  const [f] = frames(v1Request);
  const a = server();
  a.codec.dispatch(encodeFrame({ ...f!, type: TYPE_ONEWAY }, f!.content));
  assertEquals(a.seen[0]!.headers.get("x-bolt-type"), "oneway");
  a.seen[0]!.encoder.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(a.out.length, 0);
  const b = server();
  b.codec.dispatch(v1Request);
  b.seen[0]!.encoder.resetStream("local-reset");
  const [r] = frames(b.out[0]!);
  assertEquals([r!.requestId, r!.status], [7, BoltStatus.SERVER_EXCEPTION]);
});

Deno.test("boltLocalReply maps no route, timeout, overflow and resets to Bolt statuses with a hessian2 message", () => {
  const cases: [number, string, number][] = [
    [404, "route not found", BoltStatus.NO_PROCESSOR],
    [504, "upstream request timeout", BoltStatus.TIMEOUT],
    [503, "upstream connect error or disconnect/reset before headers. reset reason: overflow", 4],
    [503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", 2],
    [503, "no healthy upstream", BoltStatus.CONNECTION_CLOSED],
  ];
  for (const [status, body, want] of cases) {
    const r = boltLocalReply({ status, body }, undefined);
    assertEquals(r.headers.get("x-bolt-status"), String(want), body);
    assertEquals(r.body![0], 0x43, "Hessian 2.0 class definition");
    assert(new TextDecoder().decode(r.body!).includes(`ferry: ${body}`));
  }
});

Deno.test("hessianMethodName reads both the Hessian 2.0 and the draft form of SofaRequest", () => {
  const [f] = frames(v1Request);
  assertEquals(hessianMethodName(f!.content), "echo");
  const enc = new TextEncoder();
  const str = (s: string) => [s.length, ...enc.encode(s)];
  const cls = "com.alipay.sofa.rpc.core.request.SofaRequest";
  const java = new Uint8Array([
    0x43,
    ...[0x30, cls.length],
    ...enc.encode(cls),
    0x92,
    ...str("targetAppName"),
    ...str("methodName"),
    0x60,
    0x4e,
    ...str("sayHi"),
  ]);
  assertEquals(hessianMethodName(java), "sayHi");
  assertEquals(hessianMethodName(new Uint8Array([0x43, 0xff])), undefined);
  assertEquals(hessianMethodName(new Uint8Array(0)), undefined);
});

Deno.test("BoltClientCodec: late answers are dropped, heartbeats from the upstream answered, EOF resets", () => {
  const up: Uint8Array[] = [];
  const client = new BoltClientCodec((b) => up.push(b.slice()));
  const resets: string[] = [];
  const mk = () =>
    client.newStream({
      decodeHeaders() {
        throw new Error("no answer expected");
      },
      decodeData() {},
      decodeTrailers() {},
      onReset: (r) => resets.push(r),
    });
  const a = mk();
  a.encodeHeaders(new HeaderMap([":method", "POST", "x-bolt-class", "X"]), true);
  a.resetStream("local-reset");
  const [req] = frames(up[0]!);
  client.dispatch(encodeFrame({ ...req!, type: TYPE_RESPONSE, cmdCode: CMD_RESPONSE, status: 0 }, []));
  client.dispatch(boltFrame("v1_heartbeat"));
  assertEquals(frames(up[1]!)[0]!.cmdCode, CMD_HEARTBEAT);
  mk().encodeHeaders(new HeaderMap([":method", "POST"]), true);
  client.onEof();
  // Written, so maybe executed: a remote reset (retried only by policy), not a stale-connection replay.
  assertEquals(resets, ["remote-reset"]);
  assertEquals(client.activeStreams, 0);
});

Deno.test("BoltServerCodec: header-map keys cannot spoof the fixed fields or pseudo-headers", () => {
  const [f] = frames(v1Request);
  const { codec, seen } = server();
  codec.dispatch(encodeFrame({
    ...f!,
    header: ["x-bolt-timeout", "1", "X-Bolt-Class", "evil", ":authority", "evil", "", "x", "service", "com.a.B:3.0"],
  }, f!.content));
  const h = seen[0]!.headers;
  assertEquals([h.get("x-bolt-timeout"), h.get("x-bolt-class"), h.get(":authority")], [
    "3000",
    "com.alipay.sofa.rpc.core.request.SofaRequest",
    "com.a.B",
  ]);
  assertEquals(h.getAll("x-bolt-timeout").length, 1);
});

Deno.test("BoltClientCodec sends a heartbeat on an idle upstream connection, and stops when it closes", async () => {
  const up: Uint8Array[] = [];
  const client = new BoltClientCodec((b) => up.push(b.slice()), { heartbeatIntervalMs: 20 });
  for (let i = 0; i < 200 && up.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const [hb] = frames(up[0]!);
  assertEquals([hb!.type, hb!.cmdCode, hb!.proto], [1, CMD_HEARTBEAT, 1]);
  // The ack is dropped quietly.
  client.dispatch(encodeFrame({ ...hb!, type: TYPE_RESPONSE, status: 0 }, []));
  client.onConnectionClose();
  const n = up.length;
  await new Promise((r) => setTimeout(r, 100));
  assertEquals(up.length, n);
});

Deno.test("BoltServerCodec answers requests over maxRequestsInFlight with SERVER_THREADPOOL_BUSY at once", () => {
  const [f] = frames(v1Request);
  const { codec, out, seen } = server({ maxRequestsInFlight: 2 });
  for (const id of [1, 2, 3]) codec.dispatch(encodeFrame({ ...f!, requestId: id }, f!.content));
  assertEquals(seen.length, 2);
  const [busy] = frames(out[0]!);
  assertEquals([busy!.requestId, busy!.status], [3, BoltStatus.SERVER_THREADPOOL_BUSY]);
  assert(new TextDecoder().decode(busy!.content).includes("2 requests in flight"));
  // Once one is answered, the next is taken.
  seen[0]!.encoder.encodeHeaders(new HeaderMap([":status", "200"]), true);
  codec.dispatch(encodeFrame({ ...f!, requestId: 4 }, f!.content));
  assertEquals(seen.length, 3);
});
