/**
 * `http2CodecFactory`: the HTTP/2 codec (multiplexed by stream id).
 *
 * @example
 * ```ts
 * import { http2CodecFactory } from "./codec.ts";
 * import { HeaderMap } from "../../lib/api/headers.ts";
 *
 * // A client and a server codec wired back to back.
 * let server: ReturnType<typeof http2CodecFactory.createServer> | undefined;
 * const client = http2CodecFactory.createClient((b) => server?.dispatch(b.slice()));
 * server = http2CodecFactory.createServer((b) => client.dispatch(b.slice()), {
 *   newStream(encoder) {
 *     return {
 *       decodeHeaders(_headers, endStream) {
 *         if (endStream) encoder.encodeHeaders(new HeaderMap([":status", "204"]), true);
 *       },
 *       decodeData() {},
 *       decodeTrailers() {},
 *     };
 *   },
 * });
 * ```
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  CodecFactory,
  CodecOptions,
  ServerCodecCallbacks,
  WriteFn,
} from "../../lib/api/codec.ts";
import { Http2ClientCodec } from "./client.ts";
import { Http2ServerCodec } from "./server.ts";

/**
 * The HTTP/2 codec factory: `createServer` returns an {@link Http2ServerCodec}, `createClient` an
 * {@link Http2ClientCodec}. Options: `http2` (settings and flood limits), `http2Stats`, `maxHeadersKb`,
 * `maxHeadersCount`, `secure`, `bufferLimit`, `closeConnection`.
 */
export const http2CodecFactory: {
  readonly name: "http2";
  readonly poolMode: "multiplex-stream-id";
  createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): Http2ServerCodec;
  createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks): Http2ClientCodec;
} & CodecFactory = {
  name: "http2",
  poolMode: "multiplex-stream-id",
  createServer(write, callbacks, options) {
    return new Http2ServerCodec(write, callbacks, options);
  },
  createClient(write, options, callbacks) {
    return new Http2ClientCodec(write, options, callbacks);
  },
};
