import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import type { StreamDecoder, StreamEncoder, StreamResetReason } from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { createDubboCodecFactory } from "./codec.ts";
import { decodeInvocation, detect, DubboFrameDecoder } from "./decoder.ts";
import { encodeFrame, encodeHeartbeatRequest } from "./encoder.ts";
import { Hessian2Reader } from "./hessian2.ts";
import { dubboLocalReply } from "./mapping.ts";
import { createDubboStats, DubboStatus } from "./types.ts";
import { concat } from "../../tests/helpers/http2.ts";

const dir = new URL("./testdata/", import.meta.url);
const load = (name: string) => Deno.readFileSync(new URL(name, dir));

interface Frame {
  flag: number;
  status: number;
  id: number;
  body: Uint8Array;
}

function frames(bytes: Uint8Array): Frame[] {
  const out: Frame[] = [];
  new DubboFrameDecoder().feed(bytes, (flag, status, hi, lo, body) => {
    out.push({ flag, status, id: hi * 2 ** 32 + lo, body: body.slice() });
  });
  return out;
}

/** A counting stats scope. */
function statsScope() {
  const counts = new Map<string, number>();
  const scope = {
    counter: (n: string) => ({ inc: (k = 1) => counts.set(n, (counts.get(n) ?? 0) + k), value: () => counts.get(n) }),
    gauge: (n: string) => ({
      inc: (k = 1) => counts.set(n, (counts.get(n) ?? 0) + k),
      dec: (k = 1) => counts.set(n, (counts.get(n) ?? 0) - k),
      set: (v: number) => counts.set(n, v),
      value: () => counts.get(n),
    }),
    histogram: () => ({ record() {} }),
    scope: () => scope,
  };
  // deno-lint-ignore no-explicit-any
  return { stats: createDubboStats(scope as any), counts };
}

interface Got {
  headers: HeaderMap;
  body: Uint8Array;
  encoder: StreamEncoder;
}

/** A server codec whose streams are recorded; `answer` (if given) responds to each request when complete. */
function server(answer?: (g: Got) => void) {
  const out: Uint8Array[] = [];
  const got: Got[] = [];
  const { stats, counts } = statsScope();
  const codec = createDubboCodecFactory({ stats, maxBodyBytes: 4096 }).createServer((b) => out.push(b.slice()), {
    newStream(encoder) {
      let headers = new HeaderMap();
      return {
        decodeHeaders(h) {
          headers = h;
        },
        decodeData(d, end) {
          assert(end);
          const g = { headers, body: d.slice(), encoder };
          got.push(g);
          answer?.(g);
        },
        decodeTrailers() {},
      };
    },
  });
  return { codec, out, got, counts, written: () => frames(concat(out)) };
}

Deno.test("decodeInvocation reads the routing fields of sofa-rpc-node and dubbo2.js captures", () => {
  const sofa = frames(load("sofa_echo_requests.bin"));
  assertEquals(sofa.map((f) => f.id), [1, 2, 3]);
  const inv = decodeInvocation(sofa[0]!.body);
  assertEquals(inv.dubboVersion, "5.3.0");
  assertEquals(inv.path, "com.ferry.EchoService");
  assertEquals(inv.version, "1.0.0");
  assertEquals(inv.method, "echo");
  assertEquals(inv.parameterTypes, "Ljava/lang/String;");
  assertEquals(inv.attachments, [
    ["dubbo", "5.3.0"],
    ["group", "SOFA"],
    ["path", "com.ferry.EchoService"],
    ["service", "com.ferry.EchoService:1.0.0"],
    ["version", "1.0.0"],
  ]);
  const boom = decodeInvocation(frames(load("sofa_boom_request.bin"))[0]!.body);
  assertEquals([boom.method, boom.parameterTypes], ["boom", ""]);
  const d2 = decodeInvocation(frames(load("dubbo2js_echo_requests.bin"))[1]!.body);
  assertEquals(d2.dubboVersion, "2.0.2");
  assert(d2.attachments.some(([k, v]) => k === "interface" && v === "com.ferry.EchoService"));
});

Deno.test("DubboServerCodec maps captured requests to headers and forwards the body bytes unchanged", () => {
  const s = server();
  const input = load("sofa_echo_requests.bin");
  // One byte at a time: any split gives the same streams.
  for (let i = 0; i < input.length; i++) s.codec.dispatch(input.subarray(i, i + 1));
  assertEquals(s.got.length, 3);
  const h = s.got[0]!.headers;
  assertEquals(h.get(":path"), "/com.ferry.EchoService/echo");
  assertEquals(h.get(":authority"), "com.ferry.EchoService");
  assertEquals(h.get("service"), "com.ferry.EchoService");
  assertEquals(h.get("version"), "1.0.0");
  assertEquals(h.get("method"), "echo");
  assertEquals(h.get("group"), "SOFA");
  assertEquals(h.get("dubbo"), "5.3.0");
  assertEquals(h.getAll("service"), ["com.ferry.EchoService"]); // the attachment does not add a second value
  const src = frames(input);
  for (let i = 0; i < 3; i++) assertEquals(s.got[i]!.body, src[i]!.body);
  assertEquals(s.counts.get("request"), 3);
  assertEquals(s.counts.get("request_active"), 3);
});

Deno.test("DubboServerCodec lets an interface attachment override the service (dubbo2.js)", () => {
  const s = server();
  s.codec.dispatch(load("dubbo2js_echo_requests.bin"));
  assertEquals(s.got.length, 2);
  assertEquals(s.got[0]!.headers.get("service"), "com.ferry.EchoService");
  assertEquals(s.got[0]!.headers.get("application"), "dubbo2.js");
  // A timeout attachment becomes the request's own deadline; an attachment cannot set x-dubbo-* headers.
  const body = frames(load("sofa_echo_requests.bin"))[0]!.body;
  const withTimeout = new Uint8Array([
    ...body.subarray(0, body.length - 1),
    0x07,
    ...new TextEncoder().encode("timeout"),
    0x04,
    ...new TextEncoder().encode("1500"),
    0x0e,
    ...new TextEncoder().encode("x-dubbo-oneway"),
    0x04,
    ...new TextEncoder().encode("true"),
    0x5a,
  ]);
  s.codec.dispatch(encodeFrame(0xc2, 0, 0, 77, withTimeout));
  assertEquals(s.got[2]!.headers.get("x-dubbo-timeout"), "1500");
  assertEquals(s.got[2]!.headers.get("x-dubbo-oneway"), undefined);
});

Deno.test("DubboServerCodec writes responses under the downstream id, in any order, with the status byte", () => {
  const s = server();
  s.codec.dispatch(load("sofa_echo_requests.bin"));
  const up = frames(load("sofa_echo_responses.bin"));
  // Answer 3, then 1, then 2, as an upstream would in any order.
  for (const i of [2, 0, 1]) {
    const g = s.got[i]!;
    g.encoder.encodeHeaders(new HeaderMap([":status", "200", "x-dubbo-status", "20"]), false);
    g.encoder.encodeData(up[i]!.body, true);
  }
  const w = s.written();
  assertEquals(w.map((f) => f.id), [3, 1, 2]);
  assertEquals(w.map((f) => f.status), [20, 20, 20]);
  assertEquals(w.map((f) => f.flag), [2, 2, 2]);
  assertEquals(concat(s.out.slice(2, 4)), load("sofa_echo_responses.bin").subarray(0, 22)); // id 1 byte-identical
  assertEquals(new Hessian2Reader(w[0]!.body, 1).readString(), "A:c2");
  assertEquals(s.counts.get("response_ok"), 3);
  assertEquals(s.counts.get("request_active"), 0);
  assert(s.codec.idle);
});

Deno.test("DubboServerCodec answers heartbeats itself and counts them", () => {
  const s = server();
  s.codec.dispatch(load("sofa_heartbeat_and_ack.bin"));
  assertEquals(s.got.length, 0);
  const w = s.written();
  assertEquals(w.length, 1);
  assertEquals([w[0]!.id, w[0]!.flag, w[0]!.status, Array.from(w[0]!.body)], [7, 0x22, 20, [0x4e]]);
  assertEquals(s.counts.get("heartbeat"), 1);
});

Deno.test("dubboLocalReply maps local replies to status bytes with a hessian2 message", () => {
  const req = new HeaderMap(["service", "com.x.S", "version", "1.0", "method", "m"]);
  const cases: [number, string, number][] = [
    [404, "", DubboStatus.SERVICE_NOT_FOUND],
    [503, "no healthy upstream", DubboStatus.SERVICE_NOT_FOUND],
    [503, "upstream connect error or disconnect/reset before headers. reset reason: overflow", 100],
    [503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", 70],
    [504, "upstream request timeout", DubboStatus.SERVER_TIMEOUT],
    [408, "request timeout", DubboStatus.CLIENT_TIMEOUT],
    [400, "bad", DubboStatus.BAD_REQUEST],
    [403, "RBAC: access denied", DubboStatus.BAD_REQUEST],
  ];
  for (const [http, body, want] of cases) {
    const r = dubboLocalReply({ status: http, body }, req);
    assertEquals(r.headers.get("x-dubbo-status"), String(want), `${http} ${body}`);
    const msg = new Hessian2Reader(r.body!).readString();
    assert(msg.startsWith("ferry: "), msg);
  }
  const nr = dubboLocalReply({ status: 404, body: "" }, req);
  assertEquals(new Hessian2Reader(nr.body!).readString(), "ferry: no route for service com.x.S:1.0 method m");
});

Deno.test("DubboServerCodec closes on bad magic and oversized bodies, counted", () => {
  const s = server();
  throws(() => s.codec.dispatch(new Uint8Array([0xda, 0xbc, 0xc2])), /bad magic/);
  const big = new Uint8Array(16);
  big.set([0xda, 0xbb, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x10, 0x01]);
  const s2 = server();
  throws(() => s2.codec.dispatch(big), (e: unknown) => e instanceof CodecError && /above the limit/.test(e.message));
  assertEquals(s.counts.get("request_decoding_error"), 1);
  assertEquals(s2.counts.get("request_decoding_error"), 1);
});

Deno.test("DubboServerCodec answers truncated hessian with BAD_REQUEST and carries on", () => {
  const s = server();
  const good = frames(load("sofa_echo_requests.bin"))[0]!;
  const cut = encodeFrame(0xc2, 0, 0, 9, good.body.subarray(0, 40));
  s.codec.dispatch(concat([cut, load("sofa_echo_requests.bin")]));
  const w = s.written();
  assertEquals([w[0]!.id, w[0]!.status], [9, DubboStatus.BAD_REQUEST]);
  assert(new Hessian2Reader(w[0]!.body).readString().includes("hessian2"));
  assertEquals(s.got.length, 3); // the next requests still pass
  assertEquals(s.counts.get("request_decoding_error"), 1);
});

Deno.test("DubboServerCodec refuses a request id reused while in flight", () => {
  const s = server();
  const one = load("sofa_echo_requests.bin").subarray(0, 0xb3);
  s.codec.dispatch(one);
  throws(() => s.codec.dispatch(one), /reused while in flight/);
  // Once answered, the id may be used again.
  const t = server((g) => {
    g.encoder.encodeHeaders(new HeaderMap([":status", "200"]), false);
    g.encoder.encodeData(new Uint8Array([0x91, 0x4e]), true);
  });
  t.codec.dispatch(one);
  t.codec.dispatch(one);
  assertEquals(t.got.length, 2);
});

Deno.test("DubboServerCodec answers a reset stream with SERVICE_ERROR and drops one-way answers", () => {
  const s = server();
  s.codec.dispatch(load("sofa_echo_requests.bin"));
  s.got[1]!.encoder.resetStream("local-reset");
  const w = s.written();
  assertEquals([w[0]!.id, w[0]!.status], [2, DubboStatus.SERVICE_ERROR]);
  // A one-way request: no answer is written.
  const body = frames(load("sofa_echo_requests.bin"))[0]!.body;
  s.codec.dispatch(encodeFrame(0x82, 0, 0, 50, body));
  const g = s.got[3]!;
  assertEquals(g.headers.get("x-dubbo-oneway"), "true");
  g.encoder.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(s.written().length, 1);
});

Deno.test("DubboServerCodec sends the readonly event on drain", () => {
  const s = server();
  s.codec.shutdownNotice();
  const w = s.written();
  assertEquals(w[0]!.flag, 0xa2);
  assertEquals(new Hessian2Reader(w[0]!.body).readString(), "R");
  assertEquals(s.codec.keepAlive, false);
});

/** A client codec with recorded output and per-stream decoders. */
function client() {
  const out: Uint8Array[] = [];
  let goaway = 0;
  const codec = createDubboCodecFactory({ heartbeatIntervalMs: 0 }).createClient((b) => out.push(b.slice()), {}, {
    onGoAway: () => goaway++,
  });
  function call(body: Uint8Array, headers = new HeaderMap([":path", "/x/y"])) {
    const r = { headers: undefined as HeaderMap | undefined, body: undefined as Uint8Array | undefined, reset: "" };
    const d: StreamDecoder = {
      decodeHeaders(h) {
        r.headers = h;
      },
      decodeData(b) {
        r.body = b.slice();
      },
      decodeTrailers() {},
      onReset(reason: StreamResetReason) {
        r.reset = reason;
      },
    };
    const e = codec.newStream(d);
    e.encodeHeaders(headers, false);
    e.encodeData(body, true);
    return r;
  }
  return { codec, out, call, written: () => frames(concat(out)), goaways: () => goaway };
}

Deno.test("DubboClientCodec rewrites request ids, matches answers and resets on close", () => {
  const c = client();
  const reqs = frames(load("sofa_echo_requests.bin"));
  const calls = reqs.map((f) => c.call(f.body));
  const w = c.written();
  assertEquals(w.map((f) => f.id), [1, 2, 3]);
  assertEquals(w.map((f) => f.flag), [0xc2, 0xc2, 0xc2]);
  for (let i = 0; i < 3; i++) assertEquals(w[i]!.body, reqs[i]!.body);
  assertEquals(c.codec.activeStreams, 3);
  // The upstream answers id 2 only.
  c.codec.dispatch(encodeFrame(0x02, 20, 0, 2, new Uint8Array([0x91, 0x02, 0x6f, 0x6b])));
  assertEquals(calls[1]!.headers?.get(":status"), "200");
  assertEquals(calls[1]!.headers?.get("x-dubbo-status"), "20");
  assertEquals(Array.from(calls[1]!.body!), [0x91, 0x02, 0x6f, 0x6b]);
  // A late answer for an unknown id is dropped.
  c.codec.dispatch(encodeFrame(0x02, 20, 0, 99, new Uint8Array([0x4e])));
  c.codec.onConnectionClose();
  // Written requests may have run upstream: reported as the peer's reset (no transparent re-send).
  assertEquals([calls[0]!.reset, calls[2]!.reset], ["remote-reset", "remote-reset"]);
  assertEquals(c.codec.reusable, false);
});

Deno.test("DubboClientCodec maps error statuses, answers provider heartbeats and honours the readonly event", () => {
  const c = client();
  const r = c.call(frames(load("sofa_boom_request.bin"))[0]!.body);
  c.codec.dispatch(concat([
    encodeHeartbeatRequest(0, 77),
    encodeFrame(0x02, 80, 0, 1, frames(load("sofa_boom_response.bin"))[0]!.body),
  ]));
  assertEquals(r.headers?.get(":status"), "500");
  assertEquals(r.headers?.get("x-dubbo-status"), "80");
  assertEquals(new Hessian2Reader(r.body!).readString(), "A: boom");
  const hb = c.written()[1]!;
  assertEquals([hb.id, hb.flag, hb.status], [77, 0x22, 20]);
  c.codec.dispatch(encodeFrame(0xa2, 0, 0, 0, new Uint8Array([0x01, 0x52])));
  assertEquals(c.codec.reusable, false);
  assertEquals(c.goaways(), 1);
});

Deno.test("DubboClientCodec ends a one-way request at once", async () => {
  const c = client();
  const body = frames(load("sofa_echo_requests.bin"))[0]!.body;
  const r = c.call(body, new HeaderMap([":path", "/x/y", "x-dubbo-oneway", "true"]));
  await Promise.resolve();
  assertEquals(c.written()[0]!.flag, 0x82);
  assertEquals(r.headers?.get("x-dubbo-status"), "20");
  assertEquals(c.codec.activeStreams, 0);
});

Deno.test("detect tells Dubbo from other protocols", () => {
  assertEquals(detect(new Uint8Array([])), "need-more");
  assertEquals(detect(new Uint8Array([0xda])), "need-more");
  assertEquals(detect(new Uint8Array([0xda, 0xbb])), "need-more");
  assertEquals(detect(load("sofa_echo_requests.bin")), "yes");
  assertEquals(detect(new TextEncoder().encode("GET / HTTP/1.1\r\n")), "no");
  assertEquals(detect(new Uint8Array([0xda, 0x01])), "no");
  assertEquals(detect(new Uint8Array([0x01, 0x01])), "no"); // a Bolt request
});

Deno.test("DubboClientCodec sends a heartbeat on an idle upstream connection", async () => {
  const out: Uint8Array[] = [];
  const codec = createDubboCodecFactory({ heartbeatIntervalMs: 20 }).createClient((b) => out.push(b.slice()));
  try {
    // Bounded wait for the first heartbeat (no timing asserted).
    for (let i = 0; i < 200 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const w = frames(concat(out));
    assert(w.length >= 1, "no heartbeat sent");
    assertEquals([w[0]!.flag, Array.from(w[0]!.body)], [0xe2, [0x4e]]);
    // The provider's answer is taken quietly.
    codec.dispatch(encodeFrame(0x22, 20, 0, 0, new Uint8Array([0x4e])));
  } finally {
    codec.onConnectionClose();
  }
  const n = out.length;
  await new Promise((r) => setTimeout(r, 60));
  assertEquals(out.length, n); // stopped with the connection
});
