/**
 * HTTP/1 grammar corners (issue 16): empty lines before a request line (RFC 9112 §2.2) and chunk extensions
 * (RFC 9112 §7.1.1), for both codecs, each checked whole, byte by byte and split at random.
 */
import { assertEquals } from "../../tests/assert.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import {
  assertCodecError,
  bytes,
  clientHarness,
  normalize,
  prng,
  randomSplit,
  recorder,
  respond,
  serverHarness,
} from "../../tests/helpers/http1.ts";

/** How a run ended: the normalized events, the error (without its offset, which depends on the split) and output. */
interface Outcome {
  ev: unknown[];
  err: string;
  out: string;
}

function serverRun(parts: Uint8Array[], autoRespond = true): Outcome {
  const h = serverHarness({}, autoRespond);
  let err = "";
  try {
    for (const p of parts) h.codec.dispatch(p);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    err = `${e.status} ${e.code} ${e.message}`;
  }
  return { ev: normalize(h.events), err, out: h.take() };
}

function clientRun(parts: Uint8Array[]): Outcome {
  const c = clientHarness();
  c.codec.newStream(recorder(c.events)).encodeHeaders(
    new HeaderMap([":method", "GET", ":path", "/", ":authority", "a"]),
    true,
  );
  c.take();
  let err = "";
  try {
    for (const p of parts) c.codec.dispatch(p);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    err = `${e.status} ${e.code} ${e.message}`;
  }
  return { ev: normalize(c.events), err, out: c.take() };
}

function byteByByte(b: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < b.length; i++) parts.push(b.subarray(i, i + 1));
  return parts;
}

/** Runs `input` whole, byte by byte, split at every single point and at random; all must agree. Returns it. */
function sameForEverySplit(run: (parts: Uint8Array[]) => Outcome, input: string, label: string): Outcome {
  const b = bytes(input);
  const whole = run([b]);
  const want = JSON.stringify(whole);
  const check = (parts: Uint8Array[], how: string) => {
    const got = JSON.stringify(run(parts));
    if (got !== want) throw new Error(`${label}: ${how} gave ${got}, whole gave ${want}`);
  };
  check(byteByByte(b), "byte by byte");
  // Every two-piece split while that stays cheap; long inputs get the random splits only.
  if (b.length <= 1000) {
    for (let i = 1; i < b.length; i++) {
      check([b.subarray(0, i), b.subarray(i)], `split at ${i}`);
    }
  }
  const rnd = prng(b.length * 31 + 7);
  for (let k = 0; k < 20; k++) check(randomSplit(b, rnd), "random split");
  return whole;
}

const GET = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

// --- Empty lines before a request line ---------------------------------------------------------------------------

const POST = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
const PUT = "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
const CRLF = "\r\n";

/** [label, the requests, the empty lines before each]: must decode as the requests alone. */
const LEADING_ACCEPT: [string, string[], number[]][] = [
  ["one CRLF", [GET], [1]],
  ["two CRLFs", [GET], [2]],
  ["128 CRLFs (the bound)", [GET], [128]],
  ["CRLF between keep-alive requests", [GET, GET], [0, 1]],
  ["CRLFs after a content-length body", [POST, GET], [0, 2]],
  ["CRLF after a chunked body", [PUT, GET], [0, 1]],
  ["CRLFs before each of three", [GET, POST, GET], [1, 1, 3]],
];

for (const [label, reqs, empty] of LEADING_ACCEPT) {
  Deno.test(`Http1ServerCodec skips empty lines before a request line: ${label}`, () => {
    const input = reqs.map((r, i) => CRLF.repeat(empty[i]!) + r).join("");
    const got = sameForEverySplit((p) => serverRun(p), input, label);
    assertEquals(got.err, "");
    // The same as without any empty lines: the same requests, each answered.
    assertEquals(got, serverRun([bytes(reqs.join(""))]));
    const requests = reqs.length;
    assertEquals(got.ev.filter((e) => (e as { t: string }).t === "headers").length, requests);
    assertEquals(got.out, OK.repeat(requests));
  });
}

const LEADING_REJECT: [string, string, string][] = [
  ["129 CRLFs (over the bound)", `${"\r\n".repeat(129)}${GET}`, "400 BadRequestLine http1: too many empty lines"],
  ["endless CRLFs", "\r\n".repeat(1000), "400 BadRequestLine http1: too many empty lines"],
  ["a lone CR", `\r${GET}`, "400 BadRequestLine http1: bare CR before request line"],
  ["CR CR LF", `\r\r\n${GET}`, "400 BadRequestLine http1: bare CR before request line"],
  ["a bare LF", `\n${GET}`, "400 BadRequestLine http1: bare LF in start line"],
  ["CRLF then a bare LF", `\r\n\n${GET}`, "400 BadRequestLine http1: bare LF in start line"],
  ["a bare LF between requests", `${GET}\n${GET}`, "400 BadRequestLine http1: bare LF in start line"],
  [
    "a line of whitespace (not an empty line)",
    ` \r\n${GET}`,
    "400 BadHeader http1: whitespace between header name and colon",
  ],
];

for (const [label, input, err] of LEADING_REJECT) {
  Deno.test(`Http1ServerCodec rejects ${label} before a request line with 400`, () => {
    const got = sameForEverySplit((p) => serverRun(p), input, label);
    assertEquals(got.err.slice(0, err.length), err);
  });
}

Deno.test("Http1ServerCodec points the offset of a too-long run of empty lines at the byte over the bound", () => {
  const e = assertCodecError(() => serverHarness().codec.dispatch(bytes("\r\n".repeat(200))), 400);
  assertEquals(e.offset, 256);
  const e2 = assertCodecError(() => serverHarness().codec.dispatch(bytes(`\r\n\rG`)), 400);
  assertEquals(e2.offset, 3);
});

Deno.test("Http1ServerCodec counts the bound per request, not per connection", () => {
  // 100 CRLFs before each of five keep-alive requests: 1000 bytes in all, at most 200 before any one request.
  const input = `${"\r\n".repeat(100)}${GET}`.repeat(5);
  const got = sameForEverySplit((p) => serverRun(p), input, "per request");
  assertEquals(got.err, "");
  assertEquals(got.out, OK.repeat(5));
});

Deno.test("Http1ServerCodec consumes empty lines without buffering them or starting a head", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes("\r\n\r\n\r"));
  assertEquals(h.codec.bufferedBytes, 0);
  assertEquals(h.codec.idle, true);
  h.codec.dispatch(bytes("\nGET / HTTP/1.1\r\nHo"));
  assertEquals(h.codec.idle, false);
  h.codec.dispatch(bytes("st: h\r\n\r\n"));
  assertEquals(normalize(h.events), [
    { t: "headers", kv: [":method", "GET", ":path", "/", ":authority", "h", ":scheme", "http"], end: true },
  ]);
});

Deno.test("Http1ServerCodec skips an empty line held back behind a pipelined request once it resumes", async () => {
  const h = serverHarness();
  h.codec.dispatch(
    bytes(`POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n`),
  );
  assertEquals(h.events.filter((e) => e.t === "headers").length, 1);
  respond(h.encoders[0]!, 200, "ok");
  await Promise.resolve();
  const heads = h.events.filter((e) => e.t === "headers").map((e) => (e as { kv: string[] }).kv[3]);
  assertEquals(heads, ["/1", "/2"]);
});

Deno.test("Http1ClientCodec keeps response status lines strict: an empty line before one is an error", () => {
  for (const input of [`\r\n${OK}`, `\r\n\r\n${OK}`, `\n${OK}`]) {
    const got = sameForEverySplit(clientRun, input, JSON.stringify(input));
    assertEquals(got.err.slice(0, 4), "502 ", input);
    assertEquals(got.ev, []);
  }
});

// --- Chunk extensions --------------------------------------------------------------------------------------------

const EXT_ACCEPT = [
  ";a",
  ";a=b",
  ';a="b;c"',
  "; a = b",
  ';a="\\"q\\""',
  " ;a",
  " \t; \ta\t =\t b",
  ";a;b=c;d",
  ';a="";b',
  ';a="x y\tz"',
  ';a="\\\\"',
  ';a="\\;"',
  ';a="obs\xe9\xff"',
  ';a="\\\xe9"',
  ";a=b ;c",
  ';a="b" ;c="d";e',
  ";!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz",
  ";" + "a".repeat(4000),
];

const EXT_REJECT: [string, number, string][] = [
  // [extension, index of the offending byte (ext.length = the CR), message]
  [";", 1, "empty chunk extension name"],
  ["; ", 2, "empty chunk extension name"],
  [";;a", 1, "empty chunk extension name"],
  [";a;", 3, "empty chunk extension name"],
  [";=b", 1, "empty chunk extension name"],
  [" ", 1, "invalid chunk size"],
  [" a", 1, "invalid chunk size"],
  [";a=", 3, "empty chunk extension value"],
  [";a= ", 4, "empty chunk extension value"],
  [";a=;b", 3, "empty chunk extension value"],
  [";a==b", 3, "empty chunk extension value"],
  [';a="b', 5, "unterminated quoted string in chunk extension"],
  [';a="b\\', 6, "unterminated quoted string in chunk extension"],
  [';a="', 4, "unterminated quoted string in chunk extension"],
  [';a=b"', 4, "invalid character in chunk extension"],
  [';a="b"c', 6, "invalid character in chunk extension"],
  [';a"b"', 2, "invalid character in chunk extension"],
  [";a\x01", 2, "invalid character in chunk extension"],
  [";a\x7f", 2, "invalid character in chunk extension"],
  [";a=b\x00", 4, "invalid character in chunk extension"],
  [';a="\x01"', 4, "invalid character in chunk extension"],
  [';a="\x7f"', 4, "invalid character in chunk extension"],
  [';a="\\\x01"', 5, "invalid character in chunk extension"],
  [";a@", 2, "invalid character in chunk extension"],
  [";a=b/c", 4, "invalid character in chunk extension"],
  [";\xe9", 1, "invalid character in chunk extension"],
  [";a=\xe9", 3, "invalid character in chunk extension"],
  [";a b", 3, "invalid character in chunk extension"],
  [";a ", 3, "whitespace at the end of a chunk extension"],
  [";a=b ", 5, "whitespace at the end of a chunk extension"],
  [";a=b c", 5, "invalid character in chunk extension"],
  [';a="b" ', 7, "whitespace at the end of a chunk extension"],
  [";a=b=c", 4, "invalid character in chunk extension"],
  [";a\n", 2, "invalid character in chunk extension"],
  [";" + "a".repeat(4097), 4097, "chunk extension too long"],
];

const REQ_HEAD = "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
const RESP_HEAD = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
/** The extension goes on the first chunk's size line; a second chunk and the last chunk carry it too. */
const body = (ext: string) => `5${ext}\r\nhello\r\n3${ext}\r\nabc\r\n0${ext}\r\nX-T: 1\r\n\r\n`;
const firstOnly = (ext: string) => `5${ext}\r\nhello\r\n0\r\n\r\n`;

for (const ext of EXT_ACCEPT) {
  const label = JSON.stringify(ext.length > 40 ? ext.slice(0, 40) + "..." : ext);
  Deno.test(`Http1ServerCodec accepts and ignores the chunk extension ${label}`, () => {
    const got = sameForEverySplit((p) => serverRun(p), REQ_HEAD + body(ext) + GET, label);
    assertEquals(got, serverRun([bytes(REQ_HEAD + body("") + GET)]));
    assertEquals(got.err, "");
    assertEquals(got.out, OK.repeat(2));
  });
  Deno.test(`Http1ClientCodec accepts and ignores the chunk extension ${label}`, () => {
    const got = sameForEverySplit(clientRun, RESP_HEAD + body(ext), label);
    assertEquals(got, clientRun([bytes(RESP_HEAD + body(""))]));
    assertEquals(got.err, "");
  });
}

for (const [ext, at, message] of EXT_REJECT) {
  const label = JSON.stringify(ext.length > 40 ? ext.slice(0, 40) + "..." : ext);
  Deno.test(`Http1ServerCodec rejects the chunk extension ${label} with 400`, () => {
    const input = REQ_HEAD + firstOnly(ext);
    const got = sameForEverySplit((p) => serverRun(p, false), input, label);
    assertEquals(got.err, `400 BadChunk http1: ${message}`);
    // The head was delivered, the body never started.
    assertEquals(got.ev.length, 1);
    const e = assertCodecError(() => serverHarness().codec.dispatch(bytes(input)), 400, label);
    assertEquals(e.offset, REQ_HEAD.length + 1 + at, `${label}: offset`);
  });
  Deno.test(`Http1ClientCodec rejects the chunk extension ${label} with 502`, () => {
    const got = sameForEverySplit(clientRun, RESP_HEAD + firstOnly(ext), label);
    assertEquals(got.err, `502 BadChunk http1: ${message}`);
  });
}

Deno.test("Http1ServerCodec rejects a bad extension on a later chunk and on the last chunk", () => {
  for (const input of [`5\r\nhello\r\n3;\r\nabc\r\n0\r\n\r\n`, `5\r\nhello\r\n0;a="\r\n\r\n`]) {
    const got = sameForEverySplit((p) => serverRun(p, false), REQ_HEAD + input, JSON.stringify(input));
    assertEquals(got.err.slice(0, 12), "400 BadChunk");
    assertEquals(got.ev.at(-1), { t: "data", d: "hello", end: false });
  }
});

Deno.test("Http1ServerCodec answers a bad chunk extension with a 400 naming it, and closes", () => {
  const h = serverHarness();
  const e = assertCodecError(() => h.codec.dispatch(bytes(REQ_HEAD + firstOnly(";"))), 400);
  assertEquals(e.code, "BadChunk");
  h.codec.sendProtocolError(e);
  // The head was decoded but not yet answered, so the codec writes the 400 itself.
  const out = h.take();
  assertEquals(out.split("\r\n")[0], "HTTP/1.1 400 Bad Request");
  assertEquals(out.endsWith("\r\n\r\nBad Request: empty chunk extension name\n"), true);
  assertEquals(h.codec.keepAlive, false);
});
