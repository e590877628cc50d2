/**
 * Dubbo 2 protocol constants, the codec's options and its stats.
 *
 * A Dubbo 2 frame is a 16-byte header — magic `0xdabb`, a flag byte (request bit 0x80, two-way bit 0x40, event
 * bit 0x20, serialization id in the low five bits; hessian2 = 2), a status byte (responses), an 8-byte request id
 * and a 4-byte body length — followed by the body.
 *
 * @module
 */
import type { Counter, Gauge, StatsScope } from "../../lib/api/stats.ts";

/** Length of the fixed frame header. */
export const HEADER_LENGTH = 16;
/** First magic byte. */
export const MAGIC_HIGH = 0xda;
/** Second magic byte. */
export const MAGIC_LOW = 0xbb;
/** Flag bit: the frame is a request. */
export const FLAG_REQUEST = 0x80;
/** Flag bit: the request expects a response. */
export const FLAG_TWO_WAY = 0x40;
/** Flag bit: the frame is an event (a heartbeat when its body is hessian2 null). */
export const FLAG_EVENT = 0x20;
/** Mask of the serialization id in the flag byte. */
export const SERIALIZATION_MASK = 0x1f;
/** The hessian2 serialization id, the only one whose bodies Ferry decodes. */
export const SERIALIZATION_HESSIAN2 = 2;
/** Default largest body accepted (Dubbo's own `payload` default, 8 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Default most requests in flight on one upstream connection. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 1024;

/** Dubbo response status bytes (`org.apache.dubbo.remoting.exchange.Response`). */
export const DubboStatus = {
  OK: 20,
  CLIENT_TIMEOUT: 30,
  SERVER_TIMEOUT: 31,
  BAD_REQUEST: 40,
  BAD_RESPONSE: 50,
  SERVICE_NOT_FOUND: 60,
  SERVICE_ERROR: 70,
  SERVER_ERROR: 80,
  CLIENT_ERROR: 90,
  SERVER_THREADPOOL_EXHAUSTED_ERROR: 100,
} as const;

/** One of the status bytes of {@link DubboStatus}. */
export type DubboStatusCode = (typeof DubboStatus)[keyof typeof DubboStatus];

/** The stat name suffix of each status (`response_<name>`), lower case. */
export const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(DubboStatus).map(([k, v]) => [v, k.toLowerCase()]),
);

/** Result flags at the start of an OK response body (`DubboCodec.RESPONSE_*`). */
export const ResultFlag = {
  WITH_EXCEPTION: 0,
  VALUE: 1,
  NULL_VALUE: 2,
  WITH_EXCEPTION_WITH_ATTACHMENTS: 3,
  VALUE_WITH_ATTACHMENTS: 4,
  NULL_VALUE_WITH_ATTACHMENTS: 5,
} as const;

/**
 * The Dubbo codec's counters and gauge, under `<stat_prefix>.dubbo.` (names after Envoy's `dubbo_proxy`):
 * `request`, `request_twoway`, `request_oneway`, `request_event`, `heartbeat`, `request_decoding_error`,
 * `response`, `response_<status>` (e.g. `response_ok`, `response_service_not_found`), `local_response`,
 * `request_active`.
 */
export interface DubboStats {
  /** Every request frame decoded from downstream (heartbeats excluded). */
  readonly request: Counter;
  readonly requestTwoWay: Counter;
  readonly requestOneWay: Counter;
  /** Event frames (heartbeats and others) received on either side. */
  readonly requestEvent: Counter;
  /** Heartbeats answered locally. */
  readonly heartbeat: Counter;
  /** Malformed frames or bodies (bad magic, too long, truncated hessian, id reuse, unsupported serialization). */
  readonly decodingError: Counter;
  /** Responses written downstream. */
  readonly response: Counter;
  /** Responses written downstream that Ferry made itself (no route, timeouts, resets, overflow, bad requests). */
  readonly localResponse: Counter;
  /** Requests in flight downstream. */
  readonly active: Gauge;
  /** Responses written downstream by status byte. */
  responseStatus(status: number): void;
}

/** Creates {@link DubboStats} in `scope` (which should be `<stat_prefix>.dubbo`). */
export function createDubboStats(scope: StatsScope): DubboStats {
  const byStatus = new Map<number, Counter>();
  return {
    request: scope.counter("request"),
    requestTwoWay: scope.counter("request_twoway"),
    requestOneWay: scope.counter("request_oneway"),
    requestEvent: scope.counter("request_event"),
    heartbeat: scope.counter("heartbeat"),
    decodingError: scope.counter("request_decoding_error"),
    response: scope.counter("response"),
    localResponse: scope.counter("local_response"),
    active: scope.gauge("request_active"),
    responseStatus(status: number): void {
      let c = byStatus.get(status);
      if (c === undefined) {
        c = scope.counter(`response_${STATUS_NAMES.get(status) ?? `status_${status}`}`);
        byStatus.set(status, c);
      }
      c.inc();
    },
  };
}

/** Options of the Dubbo codec factory ({@link createDubboCodecFactory} in `codec.ts`). */
export interface DubboCodecOptions {
  /** Largest frame body accepted; a larger length closes the connection (default 8 MiB). */
  readonly maxBodyBytes?: number;
  /** Most requests in flight on one upstream connection (default 1024). */
  readonly maxConcurrentRequests?: number;
  /** Where the codec counts (absent: not counted). */
  readonly stats?: DubboStats;
}

/** What the routing needs from a request body: the fixed fields and the attachments. */
export interface DubboInvocation {
  readonly dubboVersion: string;
  readonly path: string;
  readonly version: string;
  readonly method: string;
  readonly parameterTypes: string;
  /** String-valued attachments in order (other values are skipped). */
  readonly attachments: readonly [string, string][];
}
