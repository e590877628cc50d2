import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { HeaderMap } from "../../lib/api/headers.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { http1CodecFactory } from "./codec.ts";
import {
  assertCodecError,
  bytes,
  clientHarness,
  type Ev,
  normalize,
  prng,
  randomSplit,
  recorder,
} from "../../tests/helpers/http1.ts";

const GET_HEADERS = () =>
  new HeaderMap([":method", "GET", ":path", "/x?y", ":authority", "up.test", ":scheme", "http", "accept", "*/*"]);

function started(headers = GET_HEADERS(), endStream = true) {
  const c = clientHarness();
  const enc = c.codec.newStream(recorder(c.events));
  enc.encodeHeaders(headers, endStream);
  return { c, enc };
}

Deno.test("Http1ClientCodec encodes a GET with host from :authority", () => {
  const { c, enc } = started();
  assert(enc.headersSent);
  assertEquals(c.take(), "GET /x?y HTTP/1.1\r\nhost: up.test\r\naccept: */*\r\n\r\n");
  assertEquals(c.codec.activeStreams, 1);
});

Deno.test("Http1ClientCodec replaces a host field with :authority", () => {
  const { c } = started(new HeaderMap([":method", "GET", ":path", "/", ":authority", "a", "host", "b", "x", "1"]));
  assertEquals(c.take(), "GET / HTTP/1.1\r\nhost: a\r\nx: 1\r\n\r\n");
});

Deno.test("Http1ClientCodec frames request bodies", () => {
  const a = started(new HeaderMap([":method", "POST", ":path", "/", ":authority", "a", "content-length", "3"]), false);
  a.enc.encodeData(bytes("abc"), true);
  assertEquals(a.c.take(), "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc");
  const b = started(new HeaderMap([":method", "POST", ":path", "/", ":authority", "a"]), false);
  b.enc.encodeData(bytes("abc"), false);
  b.enc.encodeData(bytes("de"), false);
  b.enc.encodeTrailers(new HeaderMap(["x-t", "1"]));
  assertEquals(
    b.c.take(),
    "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n",
  );
  const d = started(new HeaderMap([":method", "POST", ":path", "/", ":authority", "a"]), true);
  assertEquals(d.c.take(), "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n");
  const e = started(
    new HeaderMap([":method", "PUT", ":path", "/", ":authority", "a", "transfer-encoding", "chunked"]),
    false,
  );
  e.enc.encodeData(bytes("z"), true);
  assertEquals(e.c.take(), "PUT / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n");
});

Deno.test("Http1ClientCodec decodes a content-length response and is reusable", () => {
  const { c } = started();
  c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"));
  assertEquals(normalize(c.events), [
    { t: "headers", kv: [":status", "200", "content-type", "text/plain", "content-length", "5"], end: false },
    { t: "data", d: "hello", end: true },
  ]);
  assert(c.codec.reusable);
  assertEquals(c.codec.activeStreams, 0);
});

Deno.test("Http1ClientCodec decodes a chunked response with trailers", () => {
  const { c } = started();
  c.codec.dispatch(
    bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext\r\nhello\r\n0\r\nGrpc-Status: 0\r\n\r\n"),
  );
  assertEquals(normalize(c.events), [
    { t: "headers", kv: [":status", "200"], end: false },
    { t: "data", d: "hello", end: false },
    { t: "trailers", kv: ["grpc-status", "0"] },
  ]);
  assert(c.codec.reusable);
});

Deno.test("Http1ClientCodec reads a body until close and ends it on EOF", () => {
  const { c } = started();
  c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\n\r\nsome"));
  c.codec.dispatch(bytes(" body"));
  assert(!c.codec.reusable);
  c.codec.onEof();
  assertEquals(normalize(c.events), [
    { t: "headers", kv: [":status", "200"], end: false },
    { t: "data", d: "some body", end: true },
  ]);
});

Deno.test("Http1ClientCodec resets a response cut short by EOF", () => {
  const { c } = started();
  c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  c.codec.onEof();
  assertEquals(c.events[c.events.length - 1], { t: "reset", reason: "connection-termination" });
  assert(!c.codec.reusable);
  const { c: c2 } = started();
  c2.codec.onEof();
  assertEquals(c2.events, [{ t: "reset", reason: "connection-termination" }]);
});

Deno.test("Http1ClientCodec expects no body after HEAD, 204 and 304", () => {
  const a = started(new HeaderMap([":method", "HEAD", ":path", "/", ":authority", "a"]));
  a.c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
  assertEquals(a.c.events, [{ t: "headers", kv: [":status", "200", "content-length", "100"], end: true }]);
  assert(a.c.codec.reusable);
  for (const st of ["204 No Content", "304 Not Modified"]) {
    const b = started();
    b.c.codec.dispatch(bytes(`HTTP/1.1 ${st}\r\nETag: x\r\n\r\n`));
    assertEquals(b.c.events, [{ t: "headers", kv: [":status", st.slice(0, 3), "etag", "x"], end: true }]);
    assert(b.c.codec.reusable);
  }
});

Deno.test("Http1ClientCodec hands 100 Continue to decode1xxHeaders", () => {
  const { c, enc } = started(
    new HeaderMap([":method", "PUT", ":path", "/", ":authority", "a", "expect", "100-continue", "content-length", "2"]),
    false,
  );
  c.codec.dispatch(bytes("HTTP/1.1 100 Continue\r\n\r\n"));
  assertEquals(c.events, [{ t: "1xx", kv: [":status", "100"] }]);
  enc.encodeData(bytes("ok"), true);
  c.codec.dispatch(bytes("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
  assertEquals(c.events[1], { t: "headers", kv: [":status", "201", "content-length", "0"], end: true });
  assert(c.codec.reusable);
});

Deno.test("Http1ClientCodec switches to a tunnel on 101", () => {
  const { c, enc } = started(
    new HeaderMap([
      ":method",
      "GET",
      ":path",
      "/ws",
      ":authority",
      "a",
      "connection",
      "upgrade",
      "upgrade",
      "websocket",
    ]),
    false,
  );
  assertEquals(c.take(), "GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n");
  enc.encodeData(bytes("\x81\x00"), false);
  assertEquals(c.take(), "\x81\x00");
  c.codec.dispatch(
    bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHTTP/1.1 frames"),
  );
  c.codec.onEof();
  assertEquals(normalize(c.events), [
    { t: "headers", kv: [":status", "101", "upgrade", "websocket", "connection", "Upgrade"], end: false },
    { t: "data", d: "HTTP/1.1 frames", end: true },
  ]);
  assert(!c.codec.reusable);
});

Deno.test("Http1ClientCodec tunnels CONNECT after 200", () => {
  const { c, enc } = started(new HeaderMap([":method", "CONNECT", ":authority", "db:5432"]), false);
  assertEquals(c.take(), "CONNECT db:5432 HTTP/1.1\r\nhost: db:5432\r\n\r\n");
  c.codec.dispatch(bytes("HTTP/1.1 200 Connection Established\r\n\r\n\x00\x01"));
  enc.encodeData(bytes("\x02"), false);
  assertEquals(c.take(), "\x02");
  assertEquals(normalize(c.events)[1], { t: "data", d: "\x00\x01", end: false });
});

Deno.test("Http1ClientCodec is not reusable after connection: close, HTTP/1.0 or a reset", () => {
  const a = started();
  a.c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  assert(!a.c.codec.reusable);
  const b = started();
  b.c.codec.dispatch(bytes("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
  assert(!b.c.codec.reusable);
  const d = started();
  d.c.codec.dispatch(bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"));
  assert(d.c.codec.reusable);
  const e = started(new HeaderMap([":method", "GET", ":path", "/", ":authority", "a", "connection", "close"]));
  assert(!e.c.codec.reusable);
  const f = started();
  f.enc.resetStream("local-reset");
  assert(!f.c.codec.reusable);
  assertEquals(f.c.codec.activeStreams, 0);
});

Deno.test("Http1ClientCodec is not reusable when the response ends before the request", () => {
  const { c, enc } = started(new HeaderMap([":method", "POST", ":path", "/", ":authority", "a"]), false);
  c.codec.dispatch(bytes("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"));
  assert(!c.codec.reusable);
  enc.encodeData(bytes("late"), true);
});

Deno.test("Http1ClientCodec carries several requests in sequence", () => {
  const c = clientHarness();
  for (let i = 0; i < 3; i++) {
    const enc = c.codec.newStream(recorder(c.events));
    assertThrows(() => c.codec.newStream(recorder(c.events)));
    enc.encodeHeaders(GET_HEADERS(), true);
    c.codec.dispatch(bytes(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${i}`));
  }
  assertEquals(normalize(c.events).filter((e) => e.t === "data").map((e) => (e as { d: string }).d), ["0", "1", "2"]);
  assertEquals(c.take().split("GET /x?y").length, 4);
});

Deno.test("Http1ClientCodec lets the pool start the next request from the final callback", () => {
  const c = clientHarness();
  let n = 0;
  const dec = {
    decodeHeaders() {},
    decodeTrailers() {},
    decodeData(_d: Uint8Array, end: boolean) {
      if (end && ++n < 2) {
        assert(c.codec.reusable && c.codec.activeStreams === 0);
        c.codec.newStream(dec).encodeHeaders(GET_HEADERS(), true);
      }
    },
  };
  c.codec.newStream(dec).encodeHeaders(GET_HEADERS(), true);
  c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"));
  assertEquals(n, 2);
});

const RESPONSE_REJECT: [string, string, string][] = [
  ["CL + TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "BadTransferEncoding"],
  ["different CLs", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\n", "BadContentLength"],
  ["bad CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "BadContentLength"],
  ["TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "BadTransferEncoding"],
  ["bad version", "HTTP/2.0 200 OK\r\n\r\n", "BadVersion"],
  ["ICY", "ICY 200 OK\r\n\r\n", "BadVersion"],
  ["bad status", "HTTP/1.1 2x0 OK\r\n\r\n", "BadStatusLine"],
  ["short status", "HTTP/1.1 20 OK\r\n\r\n", "BadStatusLine"],
  ["status range", "HTTP/1.1 099 OK\r\n\r\n", "BadStatusLine"],
  ["bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "BadStatusLine"],
  ["obs-fold", "HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", "BadHeader"],
  ["space before colon", "HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", "BadHeader"],
  ["bad name", "HTTP/1.1 200 OK\r\nX[1]: 1\r\n\r\n", "BadHeader"],
  ["CTL value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", "BadHeader"],
  ["bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n", "BadChunk"],
  ["chunk no CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab", "BadChunk"],
  ["unexpected 101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "Protocol"],
  ["extra data", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", "UnexpectedData"],
];

for (const [label, input, code] of RESPONSE_REJECT) {
  Deno.test(`Http1ClientCodec rejects a response with ${label} (${code}, 502)`, () => {
    const { c } = started();
    const err = assertCodecError(() => c.codec.dispatch(bytes(input)), 502, label);
    assertEquals(err.code, code);
    assert(!c.codec.reusable);
  });
}

Deno.test("Http1ClientCodec rejects a response with no request outstanding", () => {
  const c = clientHarness();
  assertThrows(() => c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\n\r\n")), CodecError);
});

Deno.test("Http1ClientCodec rejects response heads over the limits", () => {
  const c = clientHarness({ maxHeadersKb: 1 });
  c.codec.newStream(recorder(c.events)).encodeHeaders(GET_HEADERS(), true);
  assertEquals(
    assertCodecError(() => c.codec.dispatch(bytes(`HTTP/1.1 200 OK\r\nx: ${"a".repeat(2000)}`)), 502).code,
    "HeadersTooLarge",
  );
  const d = clientHarness({ maxHeadersCount: 2 });
  d.codec.newStream(recorder(d.events)).encodeHeaders(GET_HEADERS(), true);
  assertEquals(
    assertCodecError(() => d.codec.dispatch(bytes("HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n")), 502).code,
    "TooManyHeaders",
  );
});

Deno.test("Http1ClientCodec accepts a status line without a reason phrase", () => {
  const { c } = started();
  c.codec.dispatch(bytes("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"));
  assertEquals(c.events, [{ t: "headers", kv: [":status", "200", "content-length", "0"], end: true }]);
});

const RESPONSES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n",
  "HTTP/1.0 200 OK\r\n\r\nread until close\r\n\r\n",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX: a\r\nbad\r\n\r\n",
];

function runClient(parts: Uint8Array[]): { events: Ev[]; error: string } {
  const c = clientHarness();
  c.codec.newStream(recorder(c.events)).encodeHeaders(GET_HEADERS(), true);
  let error = "";
  try {
    for (const p of parts) c.codec.dispatch(p);
    c.codec.onEof();
  } catch (e) {
    error = (e as CodecError).code;
  }
  return { events: normalize(c.events), error };
}

Deno.test("Http1ClientCodec gives identical callbacks for whole, byte-at-a-time and random splits", () => {
  const rnd = prng(7);
  for (const input of RESPONSES) {
    const b = bytes(input);
    const whole = runClient([b]);
    const single: Uint8Array[] = [];
    for (let i = 0; i < b.length; i++) single.push(b.slice(i, i + 1));
    assertEquals(runClient(single), whole, input);
    for (let k = 0; k < 50; k++) assertEquals(runClient(randomSplit(b, rnd)), whole, input);
  }
});

Deno.test("Http1ClientCodec destroy makes the connection unusable", () => {
  const { c } = started();
  c.codec.destroy();
  assert(!c.codec.reusable);
  assertEquals(c.codec.activeStreams, 0);
  c.codec.dispatch(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  assertEquals(c.events, []);
});

Deno.test("Http1ClientCodec tells onGoAway once when a response says connection: close or is HTTP/1.0", () => {
  for (
    const [head, goAway] of [
      ["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 0],
      ["HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n", 1],
      ["HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", 1],
      ["HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n", 0],
    ] as const
  ) {
    let calls = 0;
    const codec = http1CodecFactory.createClient(() => {}, {}, { onGoAway: () => calls++ });
    const events: Ev[] = [];
    codec.newStream(recorder(events)).encodeHeaders(GET_HEADERS(), true);
    codec.dispatch(bytes(head));
    assertEquals(events.at(-1)?.t, "headers", head);
    assertEquals(calls, goAway, head);
    assertEquals(codec.reusable, goAway === 0, head);
  }
});
