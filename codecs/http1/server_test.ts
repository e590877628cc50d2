import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HeaderMap } from "../../lib/api/headers.ts";
import {
  assertCodecError,
  bytes,
  type Ev,
  normalize,
  prng,
  randomSplit,
  respond,
  serverHarness,
} from "../../tests/helpers/http1.ts";

const GET = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nX-Mixed-Case: V a l\r\n\r\n";

Deno.test("Http1ServerCodec decodes a GET into pseudo-headers and lower-cased fields", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(GET));
  assertEquals(h.events, [{
    t: "headers",
    kv: [
      ":method",
      "GET",
      ":path",
      "/a?b=1",
      ":authority",
      "example.com",
      ":scheme",
      "http",
      "user-agent",
      "t",
      "x-mixed-case",
      "V a l",
    ],
    end: true,
  }]);
  assertEquals(h.codec.lastRequestVersion, "HTTP/1.1");
  assertEquals(h.encoders[0]!.protocol, "HTTP/1.1");
  assert(!h.codec.idle);
});

Deno.test("Http1ServerCodec sets https scheme when secure and trims value whitespace", () => {
  const h = serverHarness({ secure: true });
  h.codec.dispatch(bytes("GET / HTTP/1.1\r\nhost:  x  \r\nx-a:\t1 2\t \r\nx-empty:\r\n\r\n"));
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv, [
    ":method",
    "GET",
    ":path",
    "/",
    ":authority",
    "x",
    ":scheme",
    "https",
    "x-a",
    "1 2",
    "x-empty",
    "",
  ]);
});

Deno.test("Http1ServerCodec takes :authority from an absolute-form target over Host", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("GET http://origin.test:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n"));
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv.slice(0, 6), [
    ":method",
    "GET",
    ":path",
    "http://origin.test:8080/p?q",
    ":authority",
    "origin.test:8080",
  ]);
});

Deno.test("Http1ServerCodec accepts OPTIONS * and HTTP/1.0 without Host", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("OPTIONS * HTTP/1.0\r\n\r\n"));
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv, [":method", "OPTIONS", ":path", "*", ":scheme", "http"]);
  assertEquals(h.codec.lastRequestVersion, "HTTP/1.0");
  assertEquals(h.encoders[0]!.protocol, "HTTP/1.0");
});

Deno.test("Http1ServerCodec decodes a content-length body", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhel"));
  h.codec.dispatch(bytes("lo"));
  const ev = normalize(h.events);
  assertEquals(ev[0], {
    t: "headers",
    kv: [":method", "POST", ":path", "/u", ":authority", "h", ":scheme", "http", "content-length", "5"],
    end: false,
  });
  assertEquals(ev[1], { t: "data", d: "hello", end: true });
});

Deno.test("Http1ServerCodec decodes a chunked body with extensions and trailers, dropping transfer-encoding", () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5;name=val;x\r\nhello\r\nA \t; e\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n",
    ),
  );
  assertEquals(normalize(h.events), [
    { t: "headers", kv: [":method", "POST", ":path", "/", ":authority", "h", ":scheme", "http"], end: false },
    { t: "data", d: "hello0123456789", end: false },
    { t: "trailers", kv: ["x-sum", "1", "x-other", "two"] },
  ]);
});

Deno.test("Http1ServerCodec ends a chunked body without trailers with empty data", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("PUT / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "abc", end: true }]);
});

// --- rejections ------------------------------------------------------------------------------------------------

const REJECT: [string, string, number][] = [
  ["CL + TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
  ["TE + CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400],
  ["different CLs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400],
  ["CL list differs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n", 400],
  ["CL non-digit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3a\r\n\r\n", 400],
  ["CL sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400],
  ["CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400],
  ["CL overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400],
  ["TE gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
  ["TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501],
  ["TE identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501],
  ["TE chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400],
  [
    "TE chunked twice (fields)",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
  ],
  ["TE empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400],
  ["TE malformed", 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun"ked\r\n\r\n', 400],
  ["TE chunked;param", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400],
  ["bad method char", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["bad header name char", "GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", 400],
  ["header name with @", "GET / HTTP/1.1\r\nHost: h\r\nX@y: 1\r\n\r\n", 400],
  ["empty header name", "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400],
  ["no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400],
  ["NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 400],
  ["DEL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400],
  ["CTL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400],
  ["bare LF in header", "GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n", 400],
  ["bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", 400],
  ["bare LF end of head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400],
  ["bare CR in header", "GET / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n", 400],
  ["bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400],
  ["bare CR request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400],
  ["obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400],
  ["leading whitespace line", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400],
  ["space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400],
  ["tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400],
  ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505],
  ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505],
  ["HTTP/0.9 style", "GET /\r\n\r\n", 400],
  ["lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400],
  ["version garbage", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400],
  ["double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400],
  ["tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["missing host", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400],
  ["two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400],
  ["host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
  ["host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
  ["host with obs-text", "GET / HTTP/1.1\r\nHost: a\xe9\r\n\r\n", 400],
  ["absolute authority bad", 'GET http://a"b/ HTTP/1.1\r\nHost: h\r\n\r\n', 400],
  ["relative target", "GET foo HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["asterisk for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["absolute without authority", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["non-ascii target", "GET /\xe9 HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  // An empty line before the request line is skipped (RFC 9112 §2.2; grammar_test.ts); a blank one is not.
  ["whitespace line before request line", " \r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400],
  ["bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
  ["empty chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400],
  ["chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400],
  ["chunk missing CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400],
  ["chunk bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400],
  ["chunk data bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400],
  ["chunk size space", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n", 400],
  ["chunk ext CTL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n", 400],
  ["trailer obs-fold", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n", 400],
];

for (const [label, input, status] of REJECT) {
  Deno.test(`Http1ServerCodec rejects ${label} with ${status}`, () => {
    const h = serverHarness();
    assertCodecError(() => h.codec.dispatch(bytes(input)), status, label);
    // The same whole input byte by byte gives the same verdict.
    const h2 = serverHarness();
    const b = bytes(input);
    assertCodecError(
      () => {
        for (let i = 0; i < b.length; i++) h2.codec.dispatch(b.subarray(i, i + 1));
      },
      status,
      label,
    );
  });
}

Deno.test("Http1ServerCodec rejects a head over maxHeadersKb with 431", () => {
  const h = serverHarness({ maxHeadersKb: 1 });
  assertCodecError(() => h.codec.dispatch(bytes(`GET /${"a".repeat(1100)} HTTP/1.1\r\n`)), 431);
  const h2 = serverHarness({ maxHeadersKb: 1 });
  h2.codec.dispatch(bytes("GET / HTTP/1.1\r\nHost: h\r\n"));
  assertCodecError(() => {
    for (let i = 0; i < 100; i++) h2.codec.dispatch(bytes(`x-${i}: ${"v".repeat(20)}\r\n`));
  }, 431);
  // Default 60 KiB: a 59 KiB head passes, a 61 KiB one does not.
  const ok = serverHarness();
  ok.codec.dispatch(bytes(`GET / HTTP/1.1\r\nHost: h\r\nx: ${"v".repeat(59 * 1024)}\r\n\r\n`));
  assertEquals(ok.events.length, 1);
  assertCodecError(
    () => serverHarness().codec.dispatch(bytes(`GET / HTTP/1.1\r\nHost: h\r\nx: ${"v".repeat(61 * 1024)}\r\n\r\n`)),
    431,
  );
});

Deno.test("Http1ServerCodec rejects more than maxHeadersCount fields with 431", () => {
  let head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (let i = 0; i < 99; i++) head += `x-${i}: 1\r\n`;
  const h = serverHarness();
  h.codec.dispatch(bytes(head + "\r\n"));
  assertEquals(h.events.length, 1);
  assertCodecError(() => serverHarness().codec.dispatch(bytes(head + "x-last: 1\r\n\r\n")), 431);
  assertCodecError(
    () =>
      serverHarness({ maxHeadersCount: 3 }).codec.dispatch(
        bytes("GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n"),
      ),
    431,
  );
});

Deno.test("Http1ServerCodec ignores input after an error", () => {
  const h = serverHarness();
  assertCodecError(() => h.codec.dispatch(bytes("BAD\r\n\r\n")), 400);
  h.codec.dispatch(bytes(GET));
  assertEquals(h.events.length, 0);
});

// --- encoding --------------------------------------------------------------------------------------------------

function oneRequest(req = GET, options = {}) {
  const h = serverHarness(options);
  h.codec.dispatch(bytes(req));
  return { h, enc: h.encoders[0]! };
}

Deno.test("Http1ResponseEncoder writes content-length responses as given", () => {
  const { h, enc } = oneRequest();
  assert(!enc.headersSent);
  enc.encodeHeaders(new HeaderMap([":status", "200", "content-type", "text/plain", "content-length", "5"]), false);
  assert(enc.headersSent);
  enc.encodeData(bytes("hel"), false);
  enc.encodeData(bytes("lo"), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello");
  assert(h.codec.keepAlive);
  assert(h.codec.idle);
});

Deno.test("Http1ResponseEncoder adds content-length: 0 on headers-only responses", () => {
  const { h, enc } = oneRequest();
  enc.encodeHeaders(new HeaderMap([":status", "404"]), true);
  assertEquals(h.take(), "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
});

Deno.test("Http1ResponseEncoder chunks bodies of unknown length for HTTP/1.1 and sends trailers", () => {
  const { h, enc } = oneRequest();
  enc.encodeHeaders(new HeaderMap([":status", "200", "x-a", "b"]), false);
  enc.encodeData(bytes("hello"), false);
  enc.encodeData(new Uint8Array(0), false);
  enc.encodeData(bytes("0123456789abcdefg"), false);
  enc.encodeTrailers(new HeaderMap(["grpc-status", "0"]));
  assertEquals(
    h.take(),
    "HTTP/1.1 200 OK\r\nx-a: b\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n11\r\n0123456789abcdefg\r\n0\r\ngrpc-status: 0\r\n\r\n",
  );
  const { h: h2, enc: e2 } = oneRequest();
  e2.encodeHeaders(new HeaderMap([":status", "200"]), false);
  e2.encodeData(bytes("abc"), true);
  assertEquals(h2.take(), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  const { h: h3, enc: e3 } = oneRequest();
  e3.encodeHeaders(new HeaderMap([":status", "200"]), false);
  e3.encodeData(bytes("abc"), false);
  e3.encodeData(new Uint8Array(0), true);
  assertEquals(h3.take(), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
});

Deno.test("Http1ResponseEncoder drops trailers when not chunked", () => {
  const { h, enc } = oneRequest();
  enc.encodeHeaders(new HeaderMap([":status", "200", "content-length", "2"]), false);
  enc.encodeData(bytes("ok"), false);
  enc.encodeTrailers(new HeaderMap(["x", "y"]));
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  assert(h.codec.idle);
});

Deno.test("Http1ResponseEncoder closes HTTP/1.0 responses of unknown length", () => {
  const { h, enc } = oneRequest("GET / HTTP/1.0\r\n\r\n");
  assert(!h.codec.keepAlive);
  enc.encodeHeaders(new HeaderMap([":status", "200"]), false);
  enc.encodeData(bytes("body"), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nbody");
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ResponseEncoder keeps HTTP/1.0 keep-alive when asked and framed", () => {
  const { h, enc } = oneRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  assert(h.codec.keepAlive);
  enc.encodeHeaders(new HeaderMap([":status", "200", "content-length", "2"]), false);
  enc.encodeData(bytes("ok"), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok");
  assert(h.codec.keepAlive);
  // A chunk-less unknown length still closes.
  h.codec.dispatch(bytes("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const enc2 = h.encoders[1]!;
  enc2.encodeHeaders(new HeaderMap([":status", "200"]), false);
  enc2.encodeData(bytes("x"), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nx");
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ResponseEncoder honours connection: close from the request and the response", () => {
  const a = oneRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  assert(!a.h.codec.keepAlive);
  a.enc.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(a.h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  const b = oneRequest();
  b.enc.encodeHeaders(new HeaderMap([":status", "200", "connection", "close"]), true);
  assertEquals(b.h.take(), "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
  assert(!b.h.codec.keepAlive);
  b.h.codec.dispatch(bytes(GET));
  assertEquals(b.h.events.length, 1, "no decoding after a closing response");
});

Deno.test("Http1ServerCodec shutdownNotice makes the next response close", () => {
  const { h, enc } = oneRequest();
  h.codec.shutdownNotice();
  enc.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ResponseEncoder sends no body for HEAD, 204 and 304", () => {
  const a = oneRequest("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  a.enc.encodeHeaders(new HeaderMap([":status", "200", "content-length", "42"]), false);
  a.enc.encodeData(bytes("must not appear"), true);
  assertEquals(a.h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n");
  assert(a.h.codec.keepAlive);
  const b = oneRequest("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
  b.enc.encodeHeaders(new HeaderMap([":status", "200"]), true);
  assertEquals(b.h.take(), "HTTP/1.1 200 OK\r\n\r\n");
  for (const st of [204, 304]) {
    const c = oneRequest();
    c.enc.encodeHeaders(new HeaderMap([":status", String(st)]), false);
    c.enc.encodeData(bytes("x"), true);
    assertEquals(c.h.take(), `HTTP/1.1 ${st} ${st === 204 ? "No Content" : "Not Modified"}\r\n\r\n`);
    assert(c.h.codec.keepAlive);
  }
});

Deno.test("Http1ServerCodec passes Expect: 100-continue through and writes 100 Continue", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  const ev = h.events[0]!;
  assert(ev.t === "headers" && ev.kv.includes("expect") && ev.kv.includes("100-continue"));
  const enc = h.encoders[0]!;
  enc.encode1xxHeaders(new HeaderMap([":status", "100"]));
  assertEquals(h.take(), "HTTP/1.1 100 Continue\r\n\r\n");
  assert(!enc.headersSent);
  h.codec.dispatch(bytes("abc"));
  assertEquals(normalize(h.events)[1], { t: "data", d: "abc", end: true });
  respond(enc, 201, "");
  assertEquals(h.take(), "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
  assert(h.codec.keepAlive);
});

Deno.test("Http1ServerCodec sendProtocolError writes a closing plain-text reply", () => {
  const h = serverHarness();
  const err = assertCodecError(() => h.codec.dispatch(bytes("GET / HTTP/1.1\r\nHost: h\r\nX : 1\r\n\r\n")), 400);
  h.codec.sendProtocolError(err);
  const out = h.take();
  const body = "Bad Request: whitespace between header name and colon\n";
  assertEquals(
    out,
    `HTTP/1.1 400 Bad Request\r\ncontent-length: ${body.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${body}`,
  );
  assert(!h.codec.keepAlive);
  const h2 = serverHarness();
  h2.codec.sendProtocolError(assertCodecError(() => h2.codec.dispatch(bytes("GET / HTTP/3.0\r\n\r\n")), 505));
  assert(h2.take().startsWith("HTTP/1.1 505 HTTP Version Not Supported\r\n"));
});

Deno.test("Http1ServerCodec sendProtocolError writes nothing once a response is under way", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
  h.encoders[0]!.encodeHeaders(new HeaderMap([":status", "200"]), false);
  h.take();
  const err = assertCodecError(() => h.codec.dispatch(bytes("zz\r\n")), 400);
  h.codec.sendProtocolError(err);
  assertEquals(h.take(), "");
});

// --- pipelining ------------------------------------------------------------------------------------------------

Deno.test("Http1ServerCodec decodes pipelined requests in order, each after the previous response", async () => {
  const h = serverHarness();
  const r = (p: string) => `GET ${p} HTTP/1.1\r\nHost: h\r\n\r\n`;
  h.codec.dispatch(bytes(r("/1") + r("/2") + "POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab" + r("/4")));
  const paths = () => h.events.filter((e) => e.t === "headers").map((e) => (e as { kv: string[] }).kv[3]);
  assertEquals(paths(), ["/1"]);
  h.codec.dispatch(bytes(r("/5")));
  assertEquals(paths(), ["/1"]);
  respond(h.encoders[0]!, 200, "one");
  assertEquals(paths(), ["/1"], "the next request is decoded in a microtask, not inside the encoder call");
  await Promise.resolve();
  assertEquals(paths(), ["/1", "/2"]);
  respond(h.encoders[1]!, 200, "two");
  await Promise.resolve();
  assertEquals(paths(), ["/1", "/2", "/3"]);
  assertEquals(h.events[h.events.length - 1], { t: "data", d: "ab", end: true });
  respond(h.encoders[2]!, 200, "three");
  await Promise.resolve();
  respond(h.encoders[3]!, 200, "four");
  await Promise.resolve();
  assertEquals(paths(), ["/1", "/2", "/3", "/4", "/5"]);
  respond(h.encoders[4]!, 200, "five");
  const out = h.take();
  const bodies = [...out.matchAll(/\r\n\r\n([a-z]+)/g)].map((m) => m[1]);
  assertEquals(bodies, ["one", "two", "three", "four", "five"]);
  assert(h.codec.idle);
});

Deno.test("Http1ServerCodec continues inline when the response completes inside the decode callback", () => {
  const h = serverHarness({}, true);
  const r = (p: string) => `GET ${p} HTTP/1.1\r\nHost: h\r\n\r\n`;
  h.codec.dispatch(bytes(r("/1") + r("/2") + r("/3")));
  assertEquals(h.encoders.length, 3);
  assertEquals(h.take().split("HTTP/1.1 200 OK").length, 4);
});

Deno.test("Http1ServerCodec reports errors in deferred pipelined input to onDispatchError", async () => {
  const errors: unknown[] = [];
  const encs: import("./server.ts").Http1ResponseEncoder[] = [];
  const { http1CodecFactory } = await import("./codec.ts");
  const codec = http1CodecFactory.createServer(() => {}, {
    newStream(enc) {
      encs.push(enc as import("./server.ts").Http1ResponseEncoder);
      return { decodeHeaders() {}, decodeData() {}, decodeTrailers() {} };
    },
    onDispatchError(err) {
      errors.push(err);
    },
  });
  codec.dispatch(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost : h\r\n\r\n"));
  respond(encs[0]!, 200, "");
  await Promise.resolve();
  assertEquals(errors.length, 1);
  assertEquals((errors[0] as { status: number }).status, 400);
});

Deno.test("Http1ServerCodec closes when the response ends before the request body", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
  respond(h.encoders[0]!, 413, "");
  assertEquals(h.take(), "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  assert(!h.codec.keepAlive);
  h.codec.dispatch(bytes("defghij" + GET));
  assertEquals(h.encoders.length, 1);
});

// --- upgrades --------------------------------------------------------------------------------------------------

Deno.test("Http1ServerCodec tunnels a websocket upgrade after 101", () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
  );
  const enc = h.encoders[0]!;
  enc.encodeHeaders(new HeaderMap([":status", "101", "connection", "Upgrade", "upgrade", "websocket"]), false);
  enc.encodeData(bytes("\x81\x02hi"), false);
  h.codec.dispatch(bytes("GET / HTTP/1.1\r\n\r\n"));
  h.codec.onEof();
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "\x81\x05helloGET / HTTP/1.1\r\n\r\n", end: true }]);
  assertEquals(
    h.take(),
    "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n\x81\x02hi",
  );
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ServerCodec closes after a refused upgrade", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
  respond(h.encoders[0]!, 403, "no");
  assertEquals(h.take(), "HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ServerCodec tunnels CONNECT after a 2xx", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01"));
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv.slice(0, 6), [":method", "CONNECT", ":path", "example.com:443", ":authority", "example.com:443"]);
  const enc = h.encoders[0]!;
  enc.encodeHeaders(new HeaderMap([":status", "200"]), false);
  enc.encodeData(bytes("\x16\x03\x03"), false);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03");
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "\x16\x03\x01", end: false }]);
});

Deno.test("Http1ServerCodec resets a request cut short by EOF", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
  h.codec.onEof();
  assertEquals(h.events[h.events.length - 1], { t: "reset", reason: "connection-termination" });
  const idle = serverHarness();
  idle.codec.onEof();
  assertEquals(idle.events, []);
});

Deno.test("Http1ResponseEncoder resetStream stops the connection", () => {
  const { h, enc } = oneRequest();
  enc.encodeHeaders(new HeaderMap([":status", "200"]), false);
  enc.resetStream("local-reset");
  assert(!h.codec.keepAlive);
  enc.encodeData(bytes("x"), true);
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
});

Deno.test("Http1ServerCodec decodes obs-text values as latin1", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("GET / HTTP/1.1\r\nHost: h\r\nX-L: caf\xe9\r\n\r\n"));
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv[ev.kv.length - 1], "caf\xe9");
  respond(h.encoders[0]!, 200, "");
  const { h: h2, enc } = oneRequest();
  enc.encodeHeaders(new HeaderMap([":status", "200", "x-l", "caf\xe9"]), true);
  assertEquals(h2.take(), "HTTP/1.1 200 OK\r\nx-l: caf\xe9\r\ncontent-length: 0\r\n\r\n");
});

// --- split equivalence -----------------------------------------------------------------------------------------

const CORPUS = [
  GET,
  "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
  "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n",
  "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nCookie: a=b\r\n\r\nDELETE /3 HTTP/1.0\r\n\r\n",
  "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n",
  "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes \r\n\r\n here",
  "GET / HTTP/1.1\r\nHost: h\r\nX: 1\r\nbad header\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nxyz\r\n",
];

function runServer(parts: Uint8Array[]): { events: Ev[]; error: number } {
  const h = serverHarness({}, true);
  let error = 0;
  try {
    for (const p of parts) h.codec.dispatch(p);
  } catch (e) {
    error = (e as { status: number }).status;
  }
  return { events: normalize(h.events), error };
}

Deno.test("Http1ServerCodec gives identical callbacks for whole, byte-at-a-time and random splits", () => {
  const rnd = prng(42);
  for (const input of CORPUS) {
    const b = bytes(input);
    const whole = runServer([b]);
    const single: Uint8Array[] = [];
    for (let i = 0; i < b.length; i++) single.push(b.slice(i, i + 1));
    assertEquals(runServer(single), whole, input);
    for (let k = 0; k < 50; k++) assertEquals(runServer(randomSplit(b, rnd)), whole, input);
  }
});

Deno.test("Http1ServerCodec classifies every byte of a value wherever it sits in a 4-byte word", () => {
  for (let b = 0; b < 256; b++) {
    const ok = b === 9 || (b >= 0x20 && b !== 0x7f);
    for (let pos = 0; pos < 8; pos++) {
      for (let shift = 0; shift < 4; shift++) {
        const value = "v".repeat(pos) + String.fromCharCode(b) + "w".repeat(9);
        const input = `GET / HTTP/1.1\r\nHost: h\r\nX${"x".repeat(shift)}: ${value}\r\n\r\n`;
        const h = serverHarness();
        if (ok) {
          h.codec.dispatch(bytes(input));
          const ev = h.events[0]!;
          assert(ev.t === "headers");
          assertEquals(ev.kv[ev.kv.length - 1], value.replace(/^[ \t]+|[ \t]+$/g, ""));
        } else {
          assertCodecError(() => h.codec.dispatch(bytes(input)), 400, `byte ${b} at ${pos}`);
        }
      }
    }
  }
});

Deno.test("Http1ServerCodec serves an h2c upgrade request as plain HTTP/1.1", () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n",
    ),
  );
  assertEquals(h.events.length, 1);
  assert(h.events[0]!.t === "headers" && h.events[0]!.end);
  respond(h.encoders[0]!, 200, "ok");
  assert(h.codec.keepAlive);
});

Deno.test("Http1ServerCodec closes after answering a request whose sender half-closed", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(GET));
  h.codec.onEof();
  respond(h.encoders[0]!, 200, "ok");
  assertEquals(h.take(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
  assert(!h.codec.keepAlive);
});

Deno.test("Http1ServerCodec destroy cancels a pending pipelined resumption", async () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(GET + GET));
  respond(h.encoders[0]!, 200, "");
  h.codec.destroy();
  await Promise.resolve();
  assertEquals(h.encoders.length, 1);
  h.codec.dispatch(bytes(GET));
  assertEquals(h.encoders.length, 1);
});

Deno.test("Http1ServerCodec closes after an HTTP/1.0 request framed with transfer-encoding", () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"),
  );
  assertEquals(normalize(h.events)[1], { t: "data", d: "a", end: true });
  assert(!h.codec.keepAlive);
  respond(h.encoders[0]!, 200, "");
  assert(h.take().includes("connection: close\r\n"));
});

Deno.test("Http1ServerCodec keeps methods case-sensitive and passes extension methods through", () => {
  for (const m of ["GET", "get", "PROPFIND", "M-SEARCH", "POSTX", "GE"]) {
    const h = serverHarness();
    h.codec.dispatch(bytes(`${m} / HTTP/1.1\r\nHost: h\r\n\r\n`));
    const ev = h.events[0]!;
    assert(ev.t === "headers");
    assertEquals(ev.kv[1], m);
  }
});

Deno.test("Http1ServerCodec lower-cases known and unknown names alike", () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes("GET / HTTP/1.1\r\nHOST: h\r\nUSER-agent: u\r\nX-Custom-NAME: v\r\nuser_agent: w\r\nUser-AgenT: z\r\n\r\n"),
  );
  const ev = h.events[0]!;
  assert(ev.t === "headers");
  assertEquals(ev.kv.slice(8), ["user-agent", "u", "x-custom-name", "v", "user_agent", "w", "user-agent", "z"]);
});
