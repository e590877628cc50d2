/**
 * Bolt (SOFARPC) v1 and v2: frames, the mapping to stream headers, and the server and client codecs.
 *
 * @module
 */
export { BOLT_PROTOCOL, BoltClientCodec, boltCodecFactory, BoltServerCodec, createBoltCodecFactory } from "./codec.ts";
export { BoltDecoder, parseHeaderMap } from "./decoder.ts";
export { crc32, encodeFrame } from "./encoder.ts";
export type { FrameFields } from "./encoder.ts";
export {
  boltLocalReply,
  boltStatusOf,
  hessianMethodName,
  hessianString,
  httpStatusOf,
  requestHeaders,
  responseHeaders,
  wireHeader,
} from "./mapping.ts";
export * from "./types.ts";
