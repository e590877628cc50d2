/**
 * The HTTP/1 server codec's per-stream transport side (`StreamEncoder.stream`): on HTTP/1 a stream's flow control is
 * its connection's, so `readDisable` reaches the connection and the connection's watermarks reach the stream in
 * progress, and only that one.
 */
import { assertEquals, assertStrictEquals } from "../../tests/assert.ts";
import type { StreamCallbacks, StreamDecoder, StreamEncoder } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { http1CodecFactory } from "./mod.ts";

const enc = new TextEncoder();

function setup() {
  const disables: boolean[] = [];
  const encoders: StreamEncoder[] = [];
  const decoder: StreamDecoder = { decodeHeaders() {}, decodeData() {}, decodeTrailers() {} };
  const codec = http1CodecFactory.createServer(() => {}, {
    newStream(e) {
      encoders.push(e);
      return decoder;
    },
  }, { readDisable: (d) => disables.push(d), bufferLimit: 4096 });
  return { codec, disables, encoders };
}

function recorder(log: string[], name: string): StreamCallbacks {
  return {
    onAboveWriteBufferHighWatermark: () => log.push(`${name}:high`),
    onBelowWriteBufferLowWatermark: () => log.push(`${name}:low`),
    onResetStream: (r) => log.push(`${name}:reset:${r}`),
  };
}

Deno.test("Http1ResponseEncoder.stream: readDisable reaches the connection; protocol and bufferLimit are the request's", () => {
  const { codec, disables, encoders } = setup();
  codec.dispatch(enc.encode("GET / HTTP/1.0\r\n\r\n"));
  const st = encoders[0]!.stream!;
  assertStrictEquals(st, encoders[0]);
  st.readDisable(true);
  st.readDisable(false);
  assertEquals(disables, [true, false]);
  assertEquals(st.protocol, "HTTP/1.0");
  assertEquals(st.bufferLimit, 4096);
});

Deno.test("Http1ServerCodec hands connection watermarks to the stream in progress only, and reset to its callbacks", async () => {
  const { codec, encoders } = setup();
  const log: string[] = [];
  codec.dispatch(enc.encode("GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n"));
  const first = encoders[0]!.stream!;
  const a = recorder(log, "a");
  const a2 = recorder(log, "a2");
  first.addCallbacks(a);
  first.addCallbacks(a2);
  codec.onAboveWriteBufferHighWatermark!();
  first.removeCallbacks(a2);
  codec.onBelowWriteBufferLowWatermark!();
  assertEquals(log, ["a:high", "a2:high", "a:low"]);
  // The first response completes; the pipelined second request becomes the stream in progress.
  encoders[0]!.encodeHeaders(new HeaderMap([":status", "200", "content-length", "0"]), true);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(encoders.length, 2);
  const second = encoders[1]!.stream!;
  second.addCallbacks(recorder(log, "b"));
  first.addCallbacks(recorder(log, "stale")); // from an encoder whose stream ended: ignored
  codec.onAboveWriteBufferHighWatermark!();
  assertEquals(log.slice(3), ["b:high"]);
  second.resetStream("local-reset");
  assertEquals(log.slice(4), ["b:reset:local-reset"]);
});
