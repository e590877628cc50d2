/**
 * `http1CodecFactory`: the HTTP/1.0 and HTTP/1.1 codec (ping-pong pool mode).
 *
 * @example
 * ```ts
 * import { http1CodecFactory } from "./codec.ts";
 * import { HeaderMap } from "../../lib/api/headers.ts";
 *
 * const out: Uint8Array[] = [];
 * const server = http1CodecFactory.createServer((bytes) => out.push(bytes.slice()), {
 *   newStream(encoder) {
 *     return {
 *       decodeHeaders(headers, endStream) {
 *         if (endStream) encoder.encodeHeaders(new HeaderMap([":status", "204"]), true);
 *       },
 *       decodeData() {},
 *       decodeTrailers() {},
 *     };
 *   },
 * });
 * server.dispatch(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
 * // out now holds "HTTP/1.1 204 No Content\r\n\r\n"
 * ```
 *
 * @module
 */
import type { ClientCodecCallbacks, CodecFactory, CodecOptions, WriteFn } from "../../lib/api/codec.ts";
import type { Http1ServerCallbacks } from "./server.ts";
import { Http1ClientCodec } from "./client.ts";
import { Http1ServerCodec } from "./server.ts";

/**
 * The HTTP/1 codec factory. `createServer` returns an {@link Http1ServerCodec} (pass {@link Http1ServerCallbacks}
 * to be told of errors in pipelined input decoded later), `createClient` an {@link Http1ClientCodec}.
 */
export const http1CodecFactory: {
  readonly name: "http1";
  readonly poolMode: "ping-pong";
  createServer(write: WriteFn, callbacks: Http1ServerCallbacks, options?: CodecOptions): Http1ServerCodec;
  createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks): Http1ClientCodec;
} & CodecFactory = {
  name: "http1",
  poolMode: "ping-pong",
  createServer(write, callbacks, options) {
    return new Http1ServerCodec(write, callbacks, options);
  },
  createClient(write, options, callbacks) {
    return new Http1ClientCodec(write, options, callbacks);
  },
};
