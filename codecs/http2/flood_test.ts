/** Hostile input against the server (and client) codec: every connection and stream error, every flood rule. */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HeaderMap } from "../../lib/api/headers.ts";
import { Http2ClientCodec } from "./client.ts";
import { Http2CodecError } from "./error.ts";
import {
  ErrorCode,
  Flag,
  FrameType,
  OutBuf,
  putData,
  putHeaderBlock,
  putPriority,
  putSettings,
  putWindowUpdate,
  SettingId,
} from "./frames.ts";
import {
  CountingStats,
  GET,
  goAwayCode,
  parseFrames,
  RawClient,
  Recorder,
  rstCodes,
} from "../../tests/helpers/http2.ts";

const POST = [":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/"];

function u32(v: number): Uint8Array {
  return new Uint8Array([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

function assertGoAway(c: RawClient, code: number): void {
  assertEquals(goAwayCode(c.all()), code, `GOAWAY ${code} expected`);
  assert(c.error instanceof Http2CodecError, `threw ${String(c.error)}`);
  assertEquals((c.error as Http2CodecError).http2Code, code);
}

/** After a stream error the connection still serves a request. */
function assertSurvives(c: RawClient, id: number): void {
  assertEquals(c.error, undefined);
  const before = c.streams.length;
  c.headers(id, GET, true);
  assertEquals(c.error, undefined);
  assertEquals(c.streams.length, before + 1);
}

Deno.test("Http2ServerCodec: a bad preface is GOAWAY(PROTOCOL_ERROR)", () => {
  const c = new RawClient();
  c.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assertGoAway(c, ErrorCode.PROTOCOL_ERROR);
  assertEquals((c.error as Http2CodecError).lastStreamId, 0);
});

Deno.test("Http2ServerCodec: the first frame must be SETTINGS", () => {
  const c = new RawClient();
  c.send(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  c.frame(FrameType.PING, 0, 0, new Uint8Array(8));
  assertGoAway(c, ErrorCode.PROTOCOL_ERROR);
});

Deno.test("Http2ServerCodec: SETTINGS is acked, PING answered, PRIORITY and unknown frames ignored", () => {
  const c = new RawClient().start();
  const f = c.received();
  assert(f.some((x) => x.type === FrameType.SETTINGS && x.flags === Flag.ACK));
  c.frame(FrameType.PING, 0, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  c.frames((o) => putPriority(o, 3, 0, 16));
  c.frame(0xfa, 0, 0, new Uint8Array(10));
  const g = c.received();
  assertEquals(g.length, 1);
  assertEquals(g[0]!.type, FrameType.PING);
  assertEquals(g[0]!.flags, Flag.ACK);
  assertEquals(Array.from(g[0]!.payload), [1, 2, 3, 4, 5, 6, 7, 8]);
  assertSurvives(c, 1);
});

Deno.test("Http2ServerCodec: stream id rules (even, regression, reuse) are PROTOCOL_ERROR", () => {
  const even = new RawClient().start();
  even.headers(2, GET, true);
  assertGoAway(even, ErrorCode.PROTOCOL_ERROR);
  const back = new RawClient().start();
  back.headers(5, GET, true);
  back.headers(3, GET, true);
  assertGoAway(back, ErrorCode.PROTOCOL_ERROR);
  const reuse = new RawClient({}, (enc) => enc.encodeHeaders(new HeaderMap([":status", "200"]), true)).start();
  reuse.headers(1, GET, true);
  reuse.headers(1, GET, true);
  assertGoAway(reuse, ErrorCode.PROTOCOL_ERROR);
  assertEquals((reuse.error as Http2CodecError).lastStreamId, 1);
});

Deno.test("Http2ServerCodec: malformed requests are RST_STREAM(PROTOCOL_ERROR); the connection survives", () => {
  const cases: string[][] = [
    [":method", "GET", ":scheme", "http", ":path", "/", "X-Upper", "1"],
    [":method", "GET", ":scheme", "http"],
    [":method", "GET", ":path", "/"],
    [":method", "GET", ":scheme", "http", ":path", "/", ":foo", "x"],
    [":method", "GET", ":scheme", "http", ":path", "/", ":method", "GET"],
    [":method", "GET", ":scheme", "http", "x", "1", ":path", "/"],
    [...GET, "connection", "keep-alive"],
    [...GET, "transfer-encoding", "chunked"],
    [...GET, "upgrade", "websocket"],
    [...GET, "keep-alive", "5"],
    [...GET, "proxy-connection", "x"],
    [...GET, "te", "gzip"],
    [...GET, "x", " leading space"],
    [":method", "CONNECT", ":authority", "a:443"],
    [":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/", ":authority", "a"],
    [...GET, "content-length", "5"],
  ];
  const c = new RawClient().start();
  let id = 1;
  for (const kv of cases) {
    c.received();
    c.headers(id, kv, true);
    assertEquals(c.error, undefined, kv.join(" "));
    assertEquals(rstCodes(c.received()), [[id, ErrorCode.PROTOCOL_ERROR]], kv.join(" "));
    id += 2;
  }
  assertEquals(c.streams.length, 0);
  assertEquals(c.stats.get("rx_messaging_error"), cases.length);
  assertSurvives(c, id);
});

Deno.test("Http2ServerCodec: malformed trailers and content-length mismatches reset the stream", () => {
  const c = new RawClient().start();
  // pseudo-header in trailers
  c.headers(1, POST, false);
  c.headers(1, [":path", "/x"], true);
  // trailers without END_STREAM
  c.headers(3, POST, false);
  c.headers(3, ["x-t", "1"], false);
  // DATA longer than content-length
  c.headers(5, [...POST, "content-length", "2"], false);
  c.frames((o) => putData(o, 5, new Uint8Array(3), true));
  // DATA shorter than content-length
  c.headers(7, [...POST, "content-length", "4"], false);
  c.frames((o) => putData(o, 7, new Uint8Array(3), true));
  const r = rstCodes(c.all());
  assertEquals(r, [1, 3, 5, 7].map((id) => [id, ErrorCode.PROTOCOL_ERROR]));
  assertEquals(c.streams.map((s) => s.rec.reset), [
    "protocol-error",
    "protocol-error",
    "protocol-error",
    "protocol-error",
  ]);
  assertSurvives(c, 9);
});

Deno.test("Http2ServerCodec: host becomes :authority; extended CONNECT only with allowConnect", () => {
  const c = new RawClient({ http2: { allowConnect: true } }).start();
  c.headers(1, [":method", "GET", ":scheme", "https", ":path", "/p", "host", "h.example", "a", "b"], true);
  assertEquals(c.streams[0]!.rec.headers?.kv, [
    ":method",
    "GET",
    ":path",
    "/p",
    ":authority",
    "h.example",
    ":scheme",
    "https",
    "a",
    "b",
  ]);
  c.headers(
    3,
    [":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/ws", ":authority", "a"],
    false,
  );
  // Normalised to the HTTP/1.1 upgrade it stands for (as Envoy): GET, upgrade, connection: upgrade.
  const ws = c.streams[1]!.rec.headers!;
  assertEquals([ws.get(":method"), ws.get(":protocol"), ws.get("upgrade"), ws.get("connection")], [
    "GET",
    undefined,
    "websocket",
    "upgrade",
  ]);
  c.headers(5, [":method", "CONNECT", ":authority", "a:443"], false);
  assertEquals(c.streams[2]!.rec.headers?.kv, [
    ":method",
    "CONNECT",
    ":path",
    "a:443",
    ":authority",
    "a:443",
    ":scheme",
    "http",
  ]);
  assertEquals(c.error, undefined);
});

Deno.test("Http2ServerCodec: DATA beyond the stream window is RST_STREAM(FLOW_CONTROL_ERROR)", () => {
  const c = new RawClient().start();
  c.headers(1, POST, false);
  c.streams[0]!.encoder.stream!.readDisable(true);
  for (let i = 0; i < 3; i++) c.frames((o) => putData(o, 1, new Uint8Array(16384), false));
  c.frames((o) => putData(o, 1, new Uint8Array(16383), false));
  assertEquals(rstCodes(c.received()), []);
  c.frames((o) => putData(o, 1, new Uint8Array(100), false));
  assertEquals(rstCodes(c.received()), [[1, ErrorCode.FLOW_CONTROL_ERROR]]);
  assertEquals(c.streams[0]!.rec.reset, "protocol-error");
  assertSurvives(c, 3);
});

Deno.test("Http2ServerCodec: WINDOW_UPDATE overflow and zero increments", () => {
  const conn = new RawClient().start();
  conn.frames((o) => putWindowUpdate(o, 0, 0x7fffffff));
  assertGoAway(conn, ErrorCode.FLOW_CONTROL_ERROR);
  const zero = new RawClient().start();
  zero.frames((o) => putWindowUpdate(o, 0, 0));
  assertGoAway(zero, ErrorCode.PROTOCOL_ERROR);
  const stream = new RawClient().start();
  stream.headers(1, GET, false);
  stream.frames((o) => putWindowUpdate(o, 1, 0x7fffffff));
  assertEquals(rstCodes(stream.received()), [[1, ErrorCode.FLOW_CONTROL_ERROR]]);
  assertEquals(stream.error, undefined);
  const idle = new RawClient().start();
  idle.frames((o) => putWindowUpdate(o, 9, 1));
  assertGoAway(idle, ErrorCode.PROTOCOL_ERROR);
});

Deno.test("Http2ServerCodec: SETTINGS with bad values", () => {
  const cases: [number[], number][] = [
    [[SettingId.ENABLE_PUSH, 2], ErrorCode.PROTOCOL_ERROR],
    [[SettingId.INITIAL_WINDOW_SIZE, 0x80000000], ErrorCode.FLOW_CONTROL_ERROR],
    [[SettingId.MAX_FRAME_SIZE, 100], ErrorCode.PROTOCOL_ERROR],
    [[SettingId.MAX_FRAME_SIZE, 0x1000000], ErrorCode.PROTOCOL_ERROR],
    [[SettingId.ENABLE_CONNECT_PROTOCOL, 2], ErrorCode.PROTOCOL_ERROR],
  ];
  for (const [s, code] of cases) {
    const c = new RawClient().start();
    c.frames((o) => putSettings(o, s));
    assertGoAway(c, code);
  }
  const odd = new RawClient().start();
  odd.frame(FrameType.SETTINGS, 0, 0, new Uint8Array(5));
  assertGoAway(odd, ErrorCode.FRAME_SIZE_ERROR);
  const ackPayload = new RawClient().start();
  ackPayload.frame(FrameType.SETTINGS, Flag.ACK, 0, new Uint8Array(6));
  assertGoAway(ackPayload, ErrorCode.FRAME_SIZE_ERROR);
  const onStream = new RawClient().start();
  onStream.frame(FrameType.SETTINGS, 0, 1, new Uint8Array(0));
  assertGoAway(onStream, ErrorCode.PROTOCOL_ERROR);
});

Deno.test("Http2ServerCodec: frame-level errors", () => {
  const cases: [(c: RawClient) => void, number][] = [
    [(c) => c.frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, new Uint8Array(4)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.DATA, 0, 0, new Uint8Array(1)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.DATA, 0, 1, new Uint8Array(1)), ErrorCode.PROTOCOL_ERROR], // idle stream
    [(c) => c.frame(FrameType.HEADERS, Flag.END_HEADERS, 0, new Uint8Array(1)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.PING, 0, 0, new Uint8Array(7)), ErrorCode.FRAME_SIZE_ERROR],
    [(c) => c.frame(FrameType.PING, 0, 1, new Uint8Array(8)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.RST_STREAM, 0, 0, u32(0)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.RST_STREAM, 0, 1, u32(0)), ErrorCode.PROTOCOL_ERROR], // idle
    [(c) => c.frame(FrameType.RST_STREAM, 0, 1, new Uint8Array(3)), ErrorCode.FRAME_SIZE_ERROR],
    [(c) => c.frame(FrameType.WINDOW_UPDATE, 0, 0, new Uint8Array(3)), ErrorCode.FRAME_SIZE_ERROR],
    [(c) => c.frame(FrameType.GOAWAY, 0, 1, new Uint8Array(8)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, new Uint8Array(1)), ErrorCode.PROTOCOL_ERROR],
    [(c) => c.frame(FrameType.DATA, 0, 1, new Uint8Array(16385)), ErrorCode.FRAME_SIZE_ERROR],
    [
      (c) => c.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, new Uint8Array([0xff, 0xff, 0xff, 0xff])),
      ErrorCode.COMPRESSION_ERROR,
    ],
    [(c) => {
      // a frame interleaved in a header block
      c.frame(FrameType.HEADERS, 0, 1, c.enc.encode(GET));
      c.frame(FrameType.PING, 0, 0, new Uint8Array(8));
    }, ErrorCode.PROTOCOL_ERROR],
    [(c) => {
      c.headers(1, POST, false);
      c.frame(FrameType.DATA, Flag.PADDED, 1, new Uint8Array([5, 1, 2]));
    }, ErrorCode.PROTOCOL_ERROR],
  ];
  for (const [fn, code] of cases) {
    const c = new RawClient().start();
    fn(c);
    assertGoAway(c, code);
  }
});

Deno.test("Http2ServerCodec: PRIORITY depending on itself is a stream error", () => {
  const c = new RawClient().start();
  c.frames((o) => putPriority(o, 1, 1, 16));
  assertEquals(rstCodes(c.received()), [[1, ErrorCode.PROTOCOL_ERROR]]);
  c.frame(FrameType.PRIORITY, 0, 3, new Uint8Array(4));
  assertEquals(rstCodes(c.received()), [[3, ErrorCode.FRAME_SIZE_ERROR]]);
  assertEquals(c.error, undefined);
});

Deno.test("Http2ServerCodec: frames after our RST_STREAM are ignored; DATA on a closed stream is STREAM_CLOSED", () => {
  const c = new RawClient({}, (enc) => enc.encodeHeaders(new HeaderMap([":status", "200"]), true)).start();
  c.headers(1, POST, false);
  c.streams[0]!.encoder.resetStream("local-reset");
  assertEquals(rstCodes(c.received()), [[1, ErrorCode.NO_ERROR]]);
  c.frames((o) => putData(o, 1, new Uint8Array(10), false));
  c.headers(1, ["x-t", "1"], true);
  assertEquals(rstCodes(c.received()), []);
  assertEquals(c.error, undefined);
  assertEquals(c.stats.get("headers_cb_no_stream"), 1);
  // Stream 3 closes normally; DATA on it afterwards is STREAM_CLOSED.
  c.headers(3, GET, true);
  c.frames((o) => putData(o, 3, new Uint8Array(1), true));
  assertEquals(rstCodes(c.received()), [[3, ErrorCode.STREAM_CLOSED]]);
  assertEquals(c.error, undefined);
});

Deno.test("Http2ServerCodec: rapid reset (CVE-2023-44487) closes with ENHANCE_YOUR_CALM", () => {
  const c = new RawClient().start();
  let id = 1;
  for (; id < 400 && c.error === undefined; id += 2) {
    c.headers(id, GET, true);
    c.frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL));
  }
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("premature_reset"), 1);
  assertEquals(id, 201); // the 100th stream tripped it
  assertEquals(c.stats.active, 0);
  // Streams answered before the client reset them do not count.
  const ok = new RawClient({}, (enc) => enc.encodeHeaders(new HeaderMap([":status", "200"]), true)).start();
  for (let i = 1; i < 600; i += 2) {
    ok.headers(i, GET, false);
    ok.frame(FrameType.RST_STREAM, 0, i, u32(ErrorCode.CANCEL));
  }
  assertEquals(ok.error, undefined);
});

Deno.test("Http2ServerCodec: streams beyond MAX_CONCURRENT_STREAMS are refused; repeated abuse closes", () => {
  const c = new RawClient({ http2: { maxConcurrentStreams: 2 } }).start();
  c.headers(1, GET, true);
  c.headers(3, GET, true);
  c.received();
  c.headers(5, GET, true);
  assertEquals(rstCodes(c.received()), [[5, ErrorCode.REFUSED_STREAM]]);
  assertEquals(c.stats.get("stream_refused_errors"), 1);
  c.headers(7, GET, true);
  assertEquals(c.error, undefined);
  c.headers(9, GET, true);
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
});

Deno.test("Http2ServerCodec: oversized header list gets a 431 and the connection survives", () => {
  const c = new RawClient({ maxHeadersKb: 1 }).start();
  c.headers(1, [...GET, "x-big", "a".repeat(2000)], true);
  const f = c.received();
  const h = f.find((x) => x.type === FrameType.HEADERS);
  assert(h !== undefined);
  assertEquals(c.dec.decode(h.payload, 1 << 20, 100).slice(0, 2), [":status", "431"]);
  assertEquals(c.stats.get("header_overflow"), 1);
  assertEquals(c.streams.length, 0);
  // HPACK stays in sync: the next request (reusing the table) decodes.
  assertSurvives(c, 3);
  const many = new RawClient({ maxHeadersCount: 3 }).start();
  many.headers(1, [
    ...GET,
    "a",
    "1",
    "b",
    "2",
    "c",
    "3",
    "d",
    "4",
    "e",
    "5",
    "f",
    "6",
    "g",
    "7",
    "h",
    "8",
    "i",
    "9",
    "j",
    "10",
  ], false);
  assertEquals(rstCodes(many.received()), [[1, ErrorCode.NO_ERROR]]);
  assertEquals(many.error, undefined);
});

Deno.test("Http2ServerCodec: CONTINUATION flood and oversized header blocks close with ENHANCE_YOUR_CALM", () => {
  const c = new RawClient().start();
  const block = c.enc.encode([...GET, "x", "y".repeat(100)]);
  c.frame(FrameType.HEADERS, 0, 1, block.subarray(0, 1));
  for (let i = 0; i < 100 && c.error === undefined; i++) {
    c.frame(FrameType.CONTINUATION, 0, 1, new Uint8Array([0x40 | 0]).subarray(0, 1));
  }
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("header_overflow"), 1);
  const big = new RawClient({ maxHeadersKb: 1 }).start();
  big.frame(FrameType.HEADERS, 0, 1, new Uint8Array(16384));
  assertEquals(big.error, undefined);
  big.frame(FrameType.CONTINUATION, 0, 1, new Uint8Array(16384));
  assertGoAway(big, ErrorCode.ENHANCE_YOUR_CALM);
  // A block split over a few CONTINUATIONs is fine.
  const ok = new RawClient().start();
  const b2 = ok.enc.encode([...GET, "x", "z".repeat(3000)]);
  ok.frame(FrameType.HEADERS, Flag.END_STREAM, 1, b2.subarray(0, 1000));
  ok.frame(FrameType.CONTINUATION, 0, 1, b2.subarray(1000, 2000));
  ok.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, b2.subarray(2000));
  assertEquals(ok.error, undefined);
  assertEquals(ok.streams[0]!.rec.headers?.get("x")?.length, 3000);
});

Deno.test("Http2ServerCodec: empty-frame flood", () => {
  const c = new RawClient().start();
  c.headers(1, POST, false);
  c.frames((o) => putData(o, 1, new Uint8Array(0), false));
  assertEquals(c.error, undefined);
  c.frames((o) => putData(o, 1, new Uint8Array(0), false));
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("inbound_empty_frames_flood"), 1);
  // Empty frames interleaved with data are fine.
  const ok = new RawClient().start();
  ok.headers(1, POST, false);
  for (let i = 0; i < 10; i++) {
    ok.frames((o) => putData(o, 1, new Uint8Array(0), false));
    ok.frames((o) => putData(o, 1, new Uint8Array(1), false));
  }
  assertEquals(ok.error, undefined);
});

Deno.test("Http2ServerCodec: PRIORITY flood", () => {
  const c = new RawClient({ http2: { maxInboundPriorityFramesPerStream: 10 } }).start();
  for (let i = 0; i < 10; i++) c.frames((o) => putPriority(o, 101, 0, 1));
  assertEquals(c.error, undefined);
  c.headers(1, GET, true); // one stream opened: 20 allowed
  for (let i = 0; i < 10; i++) c.frames((o) => putPriority(o, 101, 0, 1));
  assertEquals(c.error, undefined);
  c.frames((o) => putPriority(o, 101, 0, 1));
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("inbound_priority_frames_flood"), 1);
});

Deno.test("Http2ServerCodec: WINDOW_UPDATE flood", () => {
  const c = new RawClient().start();
  for (let i = 0; i < 5; i++) c.frames((o) => putWindowUpdate(o, 0, 1));
  assertEquals(c.error, undefined);
  c.frames((o) => putWindowUpdate(o, 0, 1));
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("inbound_window_update_frames_flood"), 1);
  // Each DATA frame sent allows 10 more.
  const ok = new RawClient({}, (enc) => {
    enc.encodeHeaders(new HeaderMap([":status", "200"]), false);
    enc.encodeData(new Uint8Array(10), true);
  }).start();
  ok.headers(1, GET, true);
  for (let i = 0; i < 15; i++) ok.frames((o) => putWindowUpdate(o, 0, 1));
  assertEquals(ok.error, undefined);
});

Deno.test("Http2ServerCodec: outbound control flood (PING acks while the socket is blocked)", () => {
  const c = new RawClient({ http2: { maxOutboundControlFrames: 10 } }).start();
  c.server.onAboveWriteBufferHighWatermark();
  for (let i = 0; i < 10; i++) c.frame(FrameType.PING, 0, 0, new Uint8Array(8));
  assertEquals(c.error, undefined);
  c.server.onBelowWriteBufferLowWatermark();
  c.server.onAboveWriteBufferHighWatermark();
  for (let i = 0; i < 11; i++) c.frame(FrameType.PING, 0, 0, new Uint8Array(8));
  assertGoAway(c, ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("outbound_control_flood"), 1);
});

Deno.test("Http2ServerCodec: outbound flood found in an encoder call closes through closeConnection", () => {
  const c = new RawClient({ http2: { maxOutboundFrames: 5 } }).start();
  for (let id = 1; id <= 11; id += 2) c.headers(id, GET, true);
  c.server.onAboveWriteBufferHighWatermark();
  for (const s of c.streams) s.encoder.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(c.closed, "http2 outbound_flood");
  assertEquals(goAwayCode(c.all()), ErrorCode.ENHANCE_YOUR_CALM);
  assertEquals(c.stats.get("outbound_flood"), 1);
});

Deno.test("Http2ServerCodec: an unanswered keepalive PING closes the connection", async () => {
  const c = new RawClient({ http2: { connectionKeepalive: { intervalMs: 10, timeoutMs: 10 } } }).start();
  await new Promise((r) => setTimeout(r, 60));
  assertEquals(c.closed, "http2 keepalive timeout");
  assertEquals(c.stats.get("keepalive_timeout"), 1);
  assert(c.all().some((f) => f.type === FrameType.PING && f.flags === 0));
  assertEquals(goAwayCode(c.all()), ErrorCode.NO_ERROR);
  c.server.onConnectionClose();
});

Deno.test("Http2ServerCodec: the graceful GOAWAY falls back to a timer without the PING ack", async () => {
  const c = new RawClient().start();
  c.headers(1, GET, true);
  c.server.shutdownNotice();
  const first = c.received().filter((f) => f.type === FrameType.GOAWAY);
  assertEquals(first.length, 1);
  await new Promise((r) => setTimeout(r, 1100));
  const g = c.received().filter((f) => f.type === FrameType.GOAWAY);
  assertEquals(g.length, 1);
  assertEquals(Array.from(g[0]!.payload.subarray(0, 4)), [0, 0, 0, 1]);
  // New streams after the final GOAWAY are ignored.
  c.headers(3, GET, true);
  assertEquals(c.streams.length, 1);
  assertEquals(c.server.idle, false);
  c.server.onConnectionClose();
});

Deno.test("Http2ServerCodec: sendProtocolError writes GOAWAY once", () => {
  const c = new RawClient().start();
  c.frame(FrameType.PUSH_PROMISE, 0, 1, new Uint8Array(4));
  c.server.sendProtocolError(c.error as Http2CodecError);
  assertEquals(c.all().filter((f) => f.type === FrameType.GOAWAY).length, 1);
  const d = new RawClient().start();
  d.server.sendProtocolError(
    new Http2CodecError("Protocol", "x", { http2Code: ErrorCode.INTERNAL_ERROR, lastStreamId: 0 }),
  );
  assertEquals(goAwayCode(d.all()), ErrorCode.INTERNAL_ERROR);
});

/** A client codec with a raw server behind it. */
function rawServer(): {
  client: Http2ClientCodec;
  send: (fn: (o: OutBuf) => void) => unknown;
  out: Uint8Array[];
  stats: CountingStats;
} {
  const out: Uint8Array[] = [];
  const stats = new CountingStats();
  const client = new Http2ClientCodec((b) => out.push(b.slice()), { http2Stats: stats });
  const send = (fn: (o: OutBuf) => void) => {
    const o = new OutBuf();
    fn(o);
    try {
      client.dispatch(o.take().slice());
    } catch (e) {
      return e;
    }
    return undefined;
  };
  send((o) => putSettings(o, []));
  return { client, send, out, stats };
}

Deno.test("Http2ClientCodec: PUSH_PROMISE and ENABLE_PUSH=1 from a server are PROTOCOL_ERROR", () => {
  const a = rawServer();
  const e1 = a.send((o) => {
    o.ensure(13);
    o.buf.set([0, 0, 4, FrameType.PUSH_PROMISE, Flag.END_HEADERS, 0, 0, 0, 1, 0, 0, 0, 2], o.len);
    o.len += 13;
  });
  assertEquals((e1 as Http2CodecError).http2Code, ErrorCode.PROTOCOL_ERROR);
  assertEquals(goAwayCode(parseFrames(new Uint8Array(a.out.flatMap((x) => Array.from(x))))), ErrorCode.PROTOCOL_ERROR);
  const b = rawServer();
  const e2 = b.send((o) => putSettings(o, [SettingId.ENABLE_PUSH, 1]));
  assertEquals((e2 as Http2CodecError).http2Code, ErrorCode.PROTOCOL_ERROR);
});

Deno.test("Http2ClientCodec: malformed responses reset the stream; 101 is malformed; HEAD skips content-length", async () => {
  const { HpackEncoder } = await import("./hpack.ts");
  const a = rawServer();
  const enc = new HpackEncoder();
  const cases: string[][] = [
    [":status", "200", "Upper", "x"],
    [":status", "abc"],
    [":status", "200", ":path", "/"],
    ["x", "1"],
    [":status", "101"],
    [":status", "200", "connection", "close"],
  ];
  for (const kv of cases) {
    const rec = new Recorder();
    const s = a.client.newStream(rec);
    s.encodeHeaders(new HeaderMap(GET.slice()), true);
    const id = (s as unknown as { id: number }).id;
    const err = a.send((o) => putHeaderBlock(o, id, enc.encode(kv), false, 16384));
    assertEquals(err, undefined);
    assertEquals(rec.reset, "protocol-error", kv.join(" "));
  }
  assertEquals(a.stats.get("rx_messaging_error"), cases.length);
  const rec = new Recorder();
  const s = a.client.newStream(rec);
  s.encodeHeaders(new HeaderMap([":method", "HEAD", ":scheme", "http", ":authority", "a", ":path", "/"]), true);
  const id = (s as unknown as { id: number }).id;
  a.send((o) => putHeaderBlock(o, id, enc.encode([":status", "200", "content-length", "100"]), true, 16384));
  assertEquals(rec.reset, undefined);
  assert(rec.ended);
  assertEquals(a.client.activeStreams, 0);
});

Deno.test("Http2ClientCodec: HEADERS on a stream it never opened is PROTOCOL_ERROR", async () => {
  const { HpackEncoder } = await import("./hpack.ts");
  const a = rawServer();
  const err = a.send((o) => putHeaderBlock(o, 2, new HpackEncoder().encode([":status", "200"]), true, 16384));
  assertEquals((err as Http2CodecError).http2Code, ErrorCode.PROTOCOL_ERROR);
});

Deno.test("Http2ClientCodec: capacity follows the server's MAX_CONCURRENT_STREAMS", () => {
  let changes = 0;
  const c = new Http2ClientCodec(() => {}, { http2: { maxConcurrentStreams: 50 } }, {
    onGoAway() {},
    onStreamCapacityChanged: () => changes++,
  });
  assertEquals(c.maxConcurrentStreams, 50);
  const o = new OutBuf();
  putSettings(o, [SettingId.MAX_CONCURRENT_STREAMS, 10]);
  c.dispatch(o.take().slice());
  assertEquals(c.maxConcurrentStreams, 10);
  assertEquals(changes, 1);
  putSettings(o, [SettingId.MAX_CONCURRENT_STREAMS, 1000]);
  c.dispatch(o.take().slice());
  assertEquals(c.maxConcurrentStreams, 50);
  assertEquals(changes, 2);
});
