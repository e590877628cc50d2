/**
 * The Dubbo 2 codec: {@link dubboCodecFactory} / {@link createDubboCodecFactory}, the codec classes, the frame
 * decoder and hessian2 reader, the header mapping, and {@link detect} for protocol detection.
 *
 * @module
 */
export { createDubboCodecFactory, type DubboCodecFactory, dubboCodecFactory } from "./codec.ts";
export { DubboServerCodec } from "./server.ts";
export { DEFAULT_HEARTBEAT_INTERVAL_MS, DubboClientCodec } from "./client.ts";
export { countParameterTypes, decodeInvocation, detect, DubboFrameDecoder, type FrameHandler } from "./decoder.ts";
export {
  encodeFrame,
  encodeHeartbeatRequest,
  encodeHeartbeatResponse,
  encodeLocalResponse,
  encodeReadonlyEvent,
} from "./encoder.ts";
export { encodeHessian2String, Hessian2Reader } from "./hessian2.ts";
export {
  dubboLocalReply,
  dubboStatusOf,
  httpStatusOf,
  ONEWAY_HEADER,
  requestHeaders,
  STATUS_HEADER,
  TIMEOUT_HEADER,
} from "./mapping.ts";
export {
  createDubboStats,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  type DubboCodecOptions,
  type DubboInvocation,
  type DubboStats,
  DubboStatus,
  type DubboStatusCode,
} from "./types.ts";
