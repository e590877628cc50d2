/**
 * Bolt (SOFARPC) wire constants and the decoded frame, after the field layout of `sofa-bolt-node` and MOSN's
 * `pkg/protocol/xprotocol/bolt` (facts, not code).
 *
 * v1 (proto 0x01) request: `proto type cmdcode(2) ver2 requestId(4) codec timeout(4) classLen(2) headerLen(2)
 * contentLen(4)` = 22 bytes, then class name, header map and content. A v1 response has `respStatus(2)` where the
 * request has its timeout: 20 bytes. v2 (proto 0x02) adds `ver1` after the proto byte and a `switch` byte after the
 * codec (24 / 22 bytes); with bit 0 of the switch on, a CRC32 (IEEE) of everything before it ends the frame.
 *
 * @module
 */

/** Protocol code of Bolt v1. */
export const PROTO_V1 = 0x01;
/** Protocol code of Bolt v2. */
export const PROTO_V2 = 0x02;

/** The `type` byte. */
export const TYPE_RESPONSE = 0x00;
/** A request that expects a response. */
export const TYPE_REQUEST = 0x01;
/** A request that expects none. */
export const TYPE_ONEWAY = 0x02;

/** The `cmdcode` field. */
export const CMD_HEARTBEAT = 0;
/** An RPC request. */
export const CMD_REQUEST = 1;
/** An RPC response. */
export const CMD_RESPONSE = 2;

/** Serialization ids of the `codec` byte. */
export const CODEC_HESSIAN2 = 1;
/** Protobuf serialization. */
export const CODEC_PROTOBUF = 11;

/** Bolt response status codes (`ResponseStatus` of sofa-bolt). */
export const BoltStatus = {
  SUCCESS: 0x0000,
  ERROR: 0x0001,
  SERVER_EXCEPTION: 0x0002,
  UNKNOWN: 0x0003,
  SERVER_THREADPOOL_BUSY: 0x0004,
  ERROR_COMM: 0x0005,
  NO_PROCESSOR: 0x0006,
  TIMEOUT: 0x0007,
  CLIENT_SEND_ERROR: 0x0008,
  CODEC_EXCEPTION: 0x0009,
  CONNECTION_CLOSED: 0x0010,
  SERVER_SERIAL_EXCEPTION: 0x0011,
  SERVER_DESERIAL_EXCEPTION: 0x0012,
} as const;

/** Names of the statuses, for stats (`response.<name>`). */
export const BOLT_STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(BoltStatus).map(([k, v]) => [v, k.toLowerCase()]),
);

/** The class name sofa-rpc puts on error responses. */
export const ERROR_CLASS = "com.alipay.remoting.rpc.exception.RpcServerException";

/** Fixed header sizes by proto and direction. */
export function fixedHeaderSize(proto: number, isResponse: boolean): number {
  return proto === PROTO_V1 ? (isResponse ? 20 : 22) : (isResponse ? 22 : 24);
}

/**
 * One decoded Bolt command. `header` is the header map as flat `[key, value, ...]` in wire order (keys keep their
 * case; a value sent with length -1 reads as ""); `content` is the body, opaque. Views into the decoder's input are
 * valid only during the callback that receives the frame.
 */
export interface BoltFrame {
  proto: number;
  /** v2 only (0 on v1). */
  ver1: number;
  type: number;
  cmdCode: number;
  ver2: number;
  requestId: number;
  codec: number;
  /** v2 only (0 on v1); bit 0: CRC32 present. */
  switchCode: number;
  /** Requests: ms (0 = none). */
  timeout: number;
  /** Responses: a {@link BoltStatus}. */
  status: number;
  className: string;
  header: string[];
  content: Uint8Array;
}

/** Limits and hooks of the Bolt codecs. */
export interface BoltCodecOptions {
  /** Frames whose class, header and content add up to more are a protocol error (default 16 MiB). */
  maxFrameBytes?: number;
  /** Most requests in flight on one upstream connection (default 1024). */
  maxConcurrentRequests?: number;
  /**
   * Most requests in flight on one downstream connection (default 10000): more are answered SERVER_THREADPOOL_BUSY
   * at once, without reaching the router, so one client cannot pile up unbounded work.
   */
  maxRequestsInFlight?: number;
  /**
   * An upstream connection with no traffic for this long sends a heartbeat (default 30 s, as sofa clients; 0:
   * never), so that providers which close idle connections (sofa-rpc-node after 90 s) keep pooled ones.
   */
  heartbeatIntervalMs?: number;
  /** Where the codec counts its events. */
  stats?: BoltStats;
}

/** What a Bolt codec counts; the RPC proxy maps them to `<stat_prefix>.bolt.*`. */
export interface BoltStats {
  /** A request decoded (server side). */
  request(): void;
  /** A response written downstream with `status` (server side). */
  response(status: number): void;
  /** A malformed frame. */
  decodeError(): void;
  /** A heartbeat answered. */
  heartbeat(): void;
  /** Requests in flight moved by `delta`. */
  active(delta: number): void;
}

/** The default {@link BoltCodecOptions.maxFrameBytes}. */
export const DEFAULT_MAX_FRAME_BYTES = 16 << 20;
