import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { StreamEncoder } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { http1CodecFactory } from "./codec.ts";
import { bytes, type Ev, normalize, recorder } from "../../tests/helpers/http1.ts";

/** A client codec wired to a server codec: what one writes the other dispatches. */
function pair() {
  const serverEvents: Ev[] = [];
  const clientEvents: Ev[] = [];
  const encoders: StreamEncoder[] = [];
  // deno-lint-ignore prefer-const
  let server: ReturnType<typeof http1CodecFactory.createServer>;
  const client = http1CodecFactory.createClient((b) => server.dispatch(b.slice()));
  server = http1CodecFactory.createServer((b) => client.dispatch(b.slice()), {
    newStream(enc) {
      encoders.push(enc);
      return recorder(serverEvents);
    },
  });
  return { client, server, serverEvents, clientEvents, encoders };
}

Deno.test("http1 round trip: client requests decode to the same headers and body on the server", () => {
  const p = pair();
  const req = new HeaderMap([
    ":method",
    "POST",
    ":path",
    "/api?x=1",
    ":authority",
    "svc.local:8080",
    ":scheme",
    "http",
    "content-type",
    "application/json",
    "x-multi",
    "a",
    "x-multi",
    "b",
  ]);
  const enc = p.client.newStream(recorder(p.clientEvents));
  enc.encodeHeaders(req, false);
  enc.encodeData(bytes('{"a":'), false);
  enc.encodeData(bytes("1}"), false);
  enc.encodeTrailers(new HeaderMap(["x-checksum", "abc"]));
  assertEquals(normalize(p.serverEvents), [
    { t: "headers", kv: req.kv, end: false },
    { t: "data", d: '{"a":1}', end: false },
    { t: "trailers", kv: ["x-checksum", "abc"] },
  ]);

  const resp = p.encoders[0]!;
  resp.encodeHeaders(new HeaderMap([":status", "201", "content-type", "text/plain", "set-cookie", "a=1"]), false);
  resp.encodeData(bytes("created"), false);
  resp.encodeTrailers(new HeaderMap(["grpc-status", "0"]));
  assertEquals(normalize(p.clientEvents), [
    { t: "headers", kv: [":status", "201", "content-type", "text/plain", "set-cookie", "a=1"], end: false },
    { t: "data", d: "created", end: false },
    { t: "trailers", kv: ["grpc-status", "0"] },
  ]);
  assert(p.client.reusable);
  assert(p.server.keepAlive);
  assertEquals(p.client.activeStreams, 0);
});

Deno.test("http1 round trip: many requests with fixed, chunked and empty bodies over one connection", async () => {
  const p = pair();
  for (let i = 0; i < 20; i++) {
    p.serverEvents.length = 0;
    p.clientEvents.length = 0;
    const body = "x".repeat(i * 37);
    const kind = i % 3;
    const h = new HeaderMap([
      ":method",
      kind === 2 ? "GET" : "PUT",
      ":path",
      `/r/${i}`,
      ":authority",
      "a",
      ":scheme",
      "http",
    ]);
    if (kind === 0) h.add("content-length", String(body.length));
    const enc = p.client.newStream(recorder(p.clientEvents));
    enc.encodeHeaders(h, kind === 2);
    if (kind !== 2) enc.encodeData(bytes(body), true);
    const got = normalize(p.serverEvents);
    const headersOnly = kind === 2 || (kind === 0 && body === "");
    assertEquals(got[0], { t: "headers", kv: h.kv, end: headersOnly });
    if (!headersOnly) assertEquals(got[1], { t: "data", d: body, end: true });
    const r = p.encoders[i]!;
    r.encodeHeaders(new HeaderMap([":status", "200"]), false);
    r.encodeData(bytes(body), true);
    await Promise.resolve();
    const back = normalize(p.clientEvents);
    assertEquals(back[0], { t: "headers", kv: [":status", "200"], end: false });
    assertEquals(back[back.length - 1], { t: "data", d: body, end: true });
    assert(p.client.reusable);
  }
});

Deno.test("http1 round trip: HEAD and 304 keep the connection in sync", () => {
  const p = pair();
  const enc = p.client.newStream(recorder(p.clientEvents));
  enc.encodeHeaders(new HeaderMap([":method", "HEAD", ":path", "/", ":authority", "a"]), true);
  p.encoders[0]!.encodeHeaders(new HeaderMap([":status", "200", "content-length", "1234"]), true);
  assertEquals(p.clientEvents, [{ t: "headers", kv: [":status", "200", "content-length", "1234"], end: true }]);
  assert(p.client.reusable);
});

Deno.test("http1 round trip: a websocket upgrade becomes a tunnel both ways", () => {
  const p = pair();
  const enc = p.client.newStream(recorder(p.clientEvents));
  enc.encodeHeaders(
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
  const resp = p.encoders[0]!;
  resp.encodeHeaders(new HeaderMap([":status", "101", "connection", "upgrade", "upgrade", "websocket"]), false);
  enc.encodeData(bytes("ping"), false);
  resp.encodeData(bytes("pong"), false);
  assertEquals(normalize(p.serverEvents)[1], { t: "data", d: "ping", end: false });
  assertEquals(normalize(p.clientEvents)[1], { t: "data", d: "pong", end: false });
});

Deno.test("http1 round trip: a response delivered synchronously inside the request write leaves the client reusable", () => {
  let served = 0;
  // Answer inside the server's decode callback, i.e. inside the client's own write call.
  // deno-lint-ignore prefer-const
  let client: ReturnType<typeof http1CodecFactory.createClient>;
  const server = http1CodecFactory.createServer((b) => client.dispatch(b.slice()), {
    newStream(enc) {
      return {
        decodeHeaders(_h, end) {
          if (end) {
            served++;
            enc.encodeHeaders(new HeaderMap([":status", "200", "content-length", "2"]), false);
            enc.encodeData(bytes("ok"), true);
          }
        },
        decodeData() {},
        decodeTrailers() {},
      };
    },
  });
  client = http1CodecFactory.createClient((b) => server.dispatch(b.slice()));
  for (let i = 0; i < 3; i++) {
    const events: Ev[] = [];
    client.newStream(recorder(events)).encodeHeaders(
      new HeaderMap([":method", "GET", ":path", "/", ":authority", "a"]),
      true,
    );
    assertEquals(normalize(events)[1], { t: "data", d: "ok", end: true });
    assert(client.reusable);
    assertEquals(client.activeStreams, 0);
  }
  assertEquals(served, 3);
});
