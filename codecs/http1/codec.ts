/**
 * `http1CodecFactory`: the HTTP/1.0 and HTTP/1.1 codec (ping-pong pool mode).
 *
 * @example
 * ```ts
 * import { http1CodecFactory } from "./codec.ts";
 * const server = http1CodecFactory.createServer((bytes) => conn.write(bytes), { newStream: (enc) => decoder });
 * server.dispatch(readBytes);
 * ```
 *
 * @module
 */
import type { CodecFactory, CodecOptions, WriteFn } from "../../lib/api/codec.ts";
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
  createClient(write: WriteFn, options?: CodecOptions): Http1ClientCodec;
} & CodecFactory = {
  name: "http1",
  poolMode: "ping-pong",
  createServer(write, callbacks, options) {
    return new Http1ServerCodec(write, callbacks, options);
  },
  createClient(write, options) {
    return new Http1ClientCodec(write, options);
  },
};
