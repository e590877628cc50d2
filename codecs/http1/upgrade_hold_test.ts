import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HeaderMap } from "../../lib/api/headers.ts";
import { assertCodecError, bytes, normalize, respond, serverHarness } from "../../tests/helpers/http1.ts";

const WS = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
const SECOND = "GET /second HTTP/1.1\r\nHost: h\r\n\r\n";

Deno.test("Http1ServerCodec holds the bytes after an upgrade request until the 101, then delivers them first", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(WS + "frame-1"));
  h.codec.dispatch(bytes("frame-2"));
  // Nothing but the head has reached the stream.
  assertEquals(h.events.length, 1);
  h.encoders[0]!.encodeHeaders(
    new HeaderMap([":status", "101", "connection", "upgrade", "upgrade", "websocket"]),
    false,
  );
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "frame-1frame-2", end: false }]);
  h.codec.dispatch(bytes("frame-3"));
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "frame-1frame-2frame-3", end: false }]);
});

Deno.test("Http1ServerCodec keeps a half-close that came while an upgrade was held for the stream", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(WS + "bye"));
  h.codec.onEof();
  assertEquals(h.events.length, 1);
  h.encoders[0]!.encodeHeaders(new HeaderMap([":status", "101"]), false);
  assertEquals(normalize(h.events).slice(1), [{ t: "data", d: "bye", end: true }]);
});

Deno.test("Http1ServerCodec drops what follows a declined upgrade or CONNECT: no stream, no data", () => {
  for (const req of [WS, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"]) {
    const h = serverHarness();
    h.codec.dispatch(bytes(req + SECOND));
    respond(h.encoders[0]!, 404, "no");
    assertEquals(h.take(), "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
    h.codec.dispatch(bytes(SECOND));
    assertEquals(h.events.length, 1, req);
    assertEquals(h.encoders.length, 1, req);
    assert(!h.codec.keepAlive);
  }
});

Deno.test("Http1ServerCodec answers 413 to more than 64 KiB sent before the upgrade was accepted", () => {
  const h = serverHarness();
  h.codec.dispatch(bytes(WS));
  h.codec.dispatch(new Uint8Array(64 * 1024));
  assertCodecError(() => h.codec.dispatch(new Uint8Array(1)), 413);
});

Deno.test("Http1ServerCodec refuses an upgrade or CONNECT request that announces a body", () => {
  const bodies = ["Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"];
  for (const b of bodies) {
    assertCodecError(() => serverHarness().codec.dispatch(bytes(WS.replace("\r\n\r\n", `\r\n${b}\r\n`))), 400, b);
    assertCodecError(
      () => serverHarness().codec.dispatch(bytes(`CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n${b}\r\n`)),
      400,
      b,
    );
  }
  // An empty body is no body.
  const h = serverHarness();
  h.codec.dispatch(bytes(WS.replace("\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n")));
  assertEquals(h.events.length, 1);
});
