import { ok as assert } from "node:assert/strict";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import {
  bytes,
  clientHarness,
  normalize,
  prng,
  randomSplit,
  recorder,
  serverHarness,
} from "../../tests/helpers/http1.ts";

const REQUESTS = [
  "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
  "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
  "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;x\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n",
  "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxx",
  "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
  "GET http://x.y/z HTTP/1.0\r\nConnection: keep-alive\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
];
const RESPONSES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
  "HTTP/1.0 404 Not Found\r\n\r\nuntil close",
  "HTTP/1.1 204 No Content\r\n\r\n",
];
const TOKENS = [
  "\r\n",
  "\r",
  "\n",
  " ",
  "\t",
  ":",
  ";",
  ",",
  "0",
  "chunked",
  "Content-Length: ",
  "Transfer-Encoding: ",
  "\x00",
  "\xff",
  "HTTP/1.1",
  "\r\n\r\n",
];

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const a = Array.from(src);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (a.length + 1));
    const op = Math.floor(rnd() * 5);
    if (op === 0) a[at] = Math.floor(rnd() * 256);
    else if (op === 1) a.splice(at, 1);
    else if (op === 2) a.splice(at, 0, Math.floor(rnd() * 256));
    else if (op === 3) a.splice(at, 0, ...bytes(TOKENS[Math.floor(rnd() * TOKENS.length)]!));
    else a.splice(at, 0, ...a.slice(at, at + Math.floor(rnd() * 20)));
  }
  return new Uint8Array(a);
}

function input(corpus: string[], rnd: () => number): Uint8Array {
  const r = rnd();
  if (r < 0.15) {
    const b = new Uint8Array(Math.floor(rnd() * 200));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
    return b;
  }
  let s = corpus[Math.floor(rnd() * corpus.length)]!;
  if (rnd() < 0.3) s += corpus[Math.floor(rnd() * corpus.length)]!;
  return mutate(bytes(s), rnd);
}

function expectOnlyCodecErrors(fn: () => void, what: Uint8Array): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (e instanceof CodecError) {
      assert(e.status >= 400 && e.status <= 599);
      return true;
    }
    throw new Error(`non-CodecError ${e} for input ${JSON.stringify(String.fromCharCode(...what))}`);
  }
}

Deno.test("Http1ServerCodec fuzz: 20k random and mutated inputs throw only CodecError", () => {
  const rnd = prng(20261124);
  let errors = 0;
  for (let n = 0; n < 20000; n++) {
    const b = input(REQUESTS, rnd);
    const h = serverHarness({ maxHeadersKb: 1, maxHeadersCount: 20 }, true);
    const parts = rnd() < 0.5 ? [b] : randomSplit(b, rnd);
    if (
      expectOnlyCodecErrors(() => {
        for (const p of parts) h.codec.dispatch(p);
        h.codec.onEof();
      }, b)
    ) {
      errors++;
      h.codec.sendProtocolError(new CodecError("Protocol", "x", { status: 400 }));
    }
    for (const e of h.events) {
      if (e.t !== "headers") continue;
      for (let i = 0; i < e.kv.length; i += 2) assert(e.kv[i] === e.kv[i]!.toLowerCase());
    }
  }
  assert(errors > 5000 && errors < 20000, `errors ${errors}`);
});

Deno.test("Http1ClientCodec fuzz: 20k random and mutated inputs throw only CodecError", () => {
  const rnd = prng(99);
  let errors = 0;
  for (let n = 0; n < 20000; n++) {
    const b = input(RESPONSES, rnd);
    const c = clientHarness({ maxHeadersKb: 1, maxHeadersCount: 20 });
    const method = rnd() < 0.2 ? "HEAD" : "GET";
    c.codec.newStream(recorder(c.events)).encodeHeaders(
      new HeaderMap([":method", method, ":path", "/", ":authority", "a"]),
      true,
    );
    const parts = rnd() < 0.5 ? [b] : randomSplit(b, rnd);
    if (
      expectOnlyCodecErrors(() => {
        for (const p of parts) c.codec.dispatch(p);
        c.codec.onEof();
      }, b)
    ) errors++;
  }
  assert(errors > 5000 && errors < 20000, `errors ${errors}`);
});

Deno.test("Http1ServerCodec fuzz: 5k mutated inputs decode the same whole and split", () => {
  const rnd = prng(5);
  const run = (parts: Uint8Array[]) => {
    const h = serverHarness({ maxHeadersKb: 1, maxHeadersCount: 20 }, true);
    let status = 0;
    try {
      for (const p of parts) h.codec.dispatch(p);
      h.codec.onEof();
    } catch (e) {
      status = (e as CodecError).status;
    }
    return JSON.stringify({ ev: normalize(h.events), status, out: h.take() });
  };
  for (let n = 0; n < 5000; n++) {
    const b = input(REQUESTS, rnd);
    const whole = run([b]);
    const split = run(randomSplit(b, rnd));
    if (whole !== split) throw new Error(`split mismatch for ${JSON.stringify(String.fromCharCode(...b))}`);
  }
});

Deno.test("Http1ClientCodec fuzz: 5k mutated inputs decode the same whole and split", () => {
  const rnd = prng(6);
  const run = (parts: Uint8Array[]) => {
    const c = clientHarness({ maxHeadersKb: 1, maxHeadersCount: 20 });
    c.codec.newStream(recorder(c.events)).encodeHeaders(new HeaderMap([":method", "GET", ":path", "/"]), true);
    let code = "";
    try {
      for (const p of parts) c.codec.dispatch(p);
      c.codec.onEof();
    } catch (e) {
      code = (e as CodecError).code;
    }
    return JSON.stringify({ ev: normalize(c.events), code });
  };
  for (let n = 0; n < 5000; n++) {
    const b = input(RESPONSES, rnd);
    const whole = run([b]);
    const split = run(randomSplit(b, rnd));
    if (whole !== split) throw new Error(`split mismatch for ${JSON.stringify(String.fromCharCode(...b))}`);
  }
});

// Grammar corners (issue 16): leading empty lines and chunk extensions, mutated with the characters their
// grammars turn on.
const GRAMMAR_REQUESTS = [
  "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
  'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4 ; a = b;c="d;\\"e"\r\nwiki\r\n0;z\r\n\r\n\r\n',
  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
];
const GRAMMAR_RESPONSES = [
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a="x y";b=c\r\nabc\r\n0 ;d\r\nX-T: 1\r\n\r\n',
];
const GRAMMAR_TOKENS = ["\r\n", '"', "\\", "=", ";", " ", "\t", "\x01", "\x7f", "\xe9", "a"];

function grammarInput(corpus: string[], rnd: () => number): Uint8Array {
  const b = Array.from(mutate(bytes(corpus[Math.floor(rnd() * corpus.length)]!), rnd));
  for (let k = Math.floor(rnd() * 3); k > 0; k--) {
    b.splice(
      Math.floor(rnd() * (b.length + 1)),
      0,
      ...bytes(GRAMMAR_TOKENS[Math.floor(rnd() * GRAMMAR_TOKENS.length)]!),
    );
  }
  return new Uint8Array(b);
}

Deno.test("Http1ServerCodec fuzz: 5k mutated grammar corners decode the same whole, split and byte by byte", () => {
  const rnd = prng(16);
  const run = (parts: Uint8Array[]) => {
    const h = serverHarness({ maxHeadersKb: 1, maxHeadersCount: 20 }, true);
    let err = "";
    try {
      for (const p of parts) h.codec.dispatch(p);
      h.codec.onEof();
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      err = `${e.status} ${e.code} ${e.message}`;
    }
    return JSON.stringify({ ev: normalize(h.events), err, out: h.take() });
  };
  let errors = 0;
  for (let n = 0; n < 5000; n++) {
    const b = grammarInput(GRAMMAR_REQUESTS, rnd);
    const whole = run([b]);
    if (whole.includes('"err":"4') || whole.includes('"err":"5')) errors++;
    for (const parts of [randomSplit(b, rnd), Array.from(b, (_, i) => b.subarray(i, i + 1))]) {
      if (run(parts) !== whole) throw new Error(`split mismatch for ${JSON.stringify(String.fromCharCode(...b))}`);
    }
  }
  assert(errors > 500 && errors < 5000, `errors ${errors}`);
});

Deno.test("Http1ClientCodec fuzz: 5k mutated grammar corners decode the same whole, split and byte by byte", () => {
  const rnd = prng(17);
  const run = (parts: Uint8Array[]) => {
    const c = clientHarness({ maxHeadersKb: 1, maxHeadersCount: 20 });
    c.codec.newStream(recorder(c.events)).encodeHeaders(new HeaderMap([":method", "GET", ":path", "/"]), true);
    let err = "";
    try {
      for (const p of parts) c.codec.dispatch(p);
      c.codec.onEof();
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      err = `${e.code} ${e.message}`;
    }
    return JSON.stringify({ ev: normalize(c.events), err });
  };
  for (let n = 0; n < 5000; n++) {
    const b = grammarInput(GRAMMAR_RESPONSES, rnd);
    const whole = run([b]);
    for (const parts of [randomSplit(b, rnd), Array.from(b, (_, i) => b.subarray(i, i + 1))]) {
      if (run(parts) !== whole) throw new Error(`split mismatch for ${JSON.stringify(String.fromCharCode(...b))}`);
    }
  }
});
