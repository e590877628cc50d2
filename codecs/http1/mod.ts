/**
 * The HTTP/1.x codec: {@link http1CodecFactory} and the codec classes it creates.
 *
 * @module
 */
export { http1CodecFactory } from "./codec.ts";
export { Http1ResponseEncoder, type Http1ServerCallbacks, Http1ServerCodec, type Http1Version } from "./server.ts";
export { Http1ClientCodec, Http1RequestEncoder } from "./client.ts";
