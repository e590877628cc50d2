/**
 * {@link HealthChecker}: active health checking of a cluster's hosts (Envoy's `HealthCheckerImplBase` with the
 * HTTP and TCP checkers).
 *
 * One session per host, each on its own timer (`setTimeout`, unref'd: health checks never keep the process up):
 * - The first check runs after `initial_jitter` (random in [0, initial_jitter)); later ones after the interval:
 *   `no_traffic_interval` (`no_traffic_healthy_interval` for healthy hosts) until the cluster has opened its first
 *   upstream connection, `unhealthy_interval` for
 *   unhealthy hosts, `healthy_edge_interval` / `unhealthy_edge_interval` right after a transition, else `interval`;
 *   plus random jitter below `interval_jitter` and `interval_jitter_percent` of the interval.
 * - Hosts start with `FAILED_ACTIVE_HC | PENDING_ACTIVE_HC` (as Envoy). The first success makes a host healthy at
 *   once; afterwards `healthy_threshold` successes in a row are needed.
 * - An HTTP answer outside `expected_statuses` fails the host at once (Envoy's "active" failure); network failures
 *   and timeouts fail it after `unhealthy_threshold` in a row (a timeout also sets `ACTIVE_HC_TIMEOUT`).
 * - An HTTP answer with `x-envoy-immediate-health-check-fail` fails the host at once and sets
 *   `EXCLUDED_VIA_IMMEDIATE_HC_FAIL`; the router reports the same header on ordinary responses
 *   (`Host.monitor.immediateHealthCheckFail`).
 * - HTTP checks keep their connection between checks when `reuse_connection` (default) and the response allows
 *   it; TCP checks connect, write `send`, wait for every `receive` pattern in order, and close.
 * - gRPC checks (`grpc_health_check`, the `grpc.health.v1.Health/Check` protocol) send
 *   `POST /grpc.health.v1.Health/Check` with a `HealthCheckRequest{service: service_name}` over HTTP/2 (the
 *   `grpcCodec` option) to `:authority` `authority` (default: the cluster name), keeping the connection like HTTP
 *   checks. A host passes iff the answer is a 200 gRPC response, `grpc-status` 0 and one `HealthCheckResponse`
 *   whose status is `SERVING`; anything else it answers fails it at once (an active failure, as in Envoy), resets,
 *   closes and timeouts count towards `unhealthy_threshold`.
 *
 * Stats under `cluster.<name>.health_check.`: `attempt`, `success`, `failure`, `network_failure`,
 * `passive_failure`, `verify_cluster` (counters) and `healthy` (gauge). Transitions are logged under `hc`.
 *
 * @module
 */
import type { ClientConnectionCodec, CodecFactory, CodecOptions, StreamDecoder } from "../api/codec.ts";
import { ConfigError } from "../api/errors.ts";
import { HeaderMap } from "../api/headers.ts";
import type { NetConnection } from "../api/network.ts";
import type { Counter, Gauge, StatsScope } from "../api/stats.ts";
import { getLogger } from "../observe/log.ts";
import { isGrpcContentType } from "../router/matchers.ts";
import { type Connector, errorText } from "./connect.ts";
import { HealthFlag, type HostImpl } from "./host.ts";
import type { ObjReader } from "../config/reader.ts";
import type { HealthCheckConfig } from "./resilience_config.ts";

const log = getLogger("hc");

/** What the checker needs from its cluster. */
export interface HealthCheckTarget {
  readonly name: string;
  readonly scope: StatsScope;
  /** True once the cluster opened any upstream connection (else `no_traffic_interval` applies). */
  hasTraffic(): boolean;
}

/** Services of a {@link HealthChecker}; injectable for tests. */
export interface HealthCheckerOptions {
  connect: Connector;
  /** The HTTP/1 codec (required for HTTP checks). */
  httpCodec?: CodecFactory | undefined;
  /**
   * The HTTP/2 codec for gRPC checks (`codecs/http2`'s `http2CodecFactory`). Absent: `httpCodec` when it
   * multiplexes streams (`poolMode` `"multiplex-stream-id"`, i.e. HTTP/2); gRPC checks need one or the other.
   */
  grpcCodec?: CodecFactory | undefined;
  random?: () => number;
  /** Called after a host's health changed because of a check (e.g. to un-eject it or restart slow start). */
  onHostHealthChange?: (host: HostImpl, healthy: boolean) => void;
  /** Called after each successful check (outlier detection may un-eject). */
  onHostCheckSuccess?: (host: HostImpl) => void;
}

/** Health-check stats of a cluster. */
interface HcStats {
  attempt: Counter;
  success: Counter;
  failure: Counter;
  network_failure: Counter;
  passive_failure: Counter;
  verify_cluster: Counter;
  healthy: Gauge;
}

type Outcome = { ok: true; immediateFail?: boolean } | {
  ok: false;
  kind: "active" | "network" | "timeout";
  detail: string;
  immediateFail?: boolean;
};

const USER_AGENT = "Envoy/HC";

/**
 * `grpc_health_check` (Envoy's `HealthCheck.GrpcHealthCheck`). Parsed here until `parseHealthCheck` of
 * `resilience_config.ts` takes it into its checker union.
 */
export interface GrpcHealthCheckConfig {
  readonly kind: "grpc";
  /** `service_name`: the `service` of the `HealthCheckRequest` ("" asks about the server as a whole). */
  readonly serviceName: string;
  /** `authority` (default: the cluster name, as Envoy). */
  readonly authority: string | undefined;
  /** `initial_metadata` as (name, value, append) triples, added to the request headers. */
  readonly initialMetadata: readonly { readonly name: string; readonly value: string; readonly append: boolean }[];
}

/** A health check's config as the checker takes it: {@link HealthCheckConfig} whose checker may also be gRPC. */
export type HealthCheckerConfig = Omit<HealthCheckConfig, "checker"> & {
  readonly checker: HealthCheckConfig["checker"] | GrpcHealthCheckConfig;
};

/** Parses the `grpc_health_check` object of a `health_checks` entry. */
export function parseGrpcHealthCheck(o: ObjReader): GrpcHealthCheckConfig {
  const serviceName = o.str("service_name") ?? "";
  const authority = o.str("authority") ?? "";
  if (/[\r\n\0]/.test(authority)) throw new ConfigError(o.at("authority"), "must not contain CR, LF or NUL");
  const initialMetadata = o.objs("initial_metadata", (hv) => {
    const header = hv.obj("header", { required: true })!;
    const name = header.str("key", { required: true }).toLowerCase();
    const value = header.str("value") ?? "";
    header.unsupported("raw_value");
    header.done();
    if (name === "" || name.startsWith(":")) {
      throw new ConfigError(header.at("key"), "must be a header name (not empty, not a pseudo-header)");
    }
    if (/[\r\n\0]/.test(value)) throw new ConfigError(header.at("value"), "must not contain CR, LF or NUL");
    let append = hv.bool("append") ?? true;
    const action = hv.enumOf(
      "append_action",
      ["APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"] as const,
    );
    if (action !== undefined) append = action === "APPEND_IF_EXISTS_OR_ADD";
    hv.bool("keep_empty_value");
    hv.done();
    return { name, value, append };
  });
  o.done();
  return { kind: "grpc", serviceName, authority: authority === "" ? undefined : authority, initialMetadata };
}

/** The method gRPC health checks call. */
export const GRPC_HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";

/** `grpc.health.v1.HealthCheckResponse.ServingStatus` names, by number. */
export const GRPC_SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

const textEncoder = new TextEncoder();

/** The protobuf `HealthCheckRequest{service}`: field 1, a length-delimited string (omitted when empty). */
export function encodeHealthCheckRequest(service: string): Uint8Array {
  const s = textEncoder.encode(service);
  if (s.length === 0) return new Uint8Array(0);
  const len: number[] = [];
  for (let n = s.length;; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const out = new Uint8Array(1 + len.length + s.length);
  out[0] = 0x0a;
  out.set(len, 1);
  out.set(s, 1 + len.length);
  return out;
}

/**
 * The `status` (field 1, an enum varint) of a protobuf `HealthCheckResponse`: 0 when absent, the last one when
 * repeated (proto3), unknown fields skipped. Undefined when the bytes are not a valid message.
 */
export function decodeHealthCheckResponse(msg: Uint8Array): number | undefined {
  let at = 0;
  /** The low 32 bits of the last varint read (the bytes past the fifth only carry higher bits). */
  let low32 = 0;
  const varint = (): number | undefined => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= msg.length) return undefined;
      const b = msg[at++]!;
      v += (b & 0x7f) * mul;
      if (i <= 4) low32 = v % 0x1_0000_0000 | 0;
      if (b < 0x80) return v;
      mul *= 128;
    }
    return undefined;
  };
  let status = 0;
  while (at < msg.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) return undefined;
    if (wire === 0) {
      if (varint() === undefined) return undefined;
      // Enums are int32: a negative one is sent as a 10-byte varint, of which the low 32 bits count.
      if (field === 1) status = low32;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
    } else if (wire === 2) {
      const n = varint();
      if (n === undefined) return undefined;
      at += n;
    } else {
      return undefined;
    }
    if (at > msg.length) return undefined;
  }
  return status;
}

/** A gRPC message frame (uncompressed flag, 4-byte length) around `msg`. */
function grpcFrame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + msg.length);
  new DataView(out.buffer).setUint32(1, msg.length);
  out.set(msg, 5);
  return out;
}

/** The messages of a complete gRPC body, or a reason it is not one. */
function grpcMessages(body: Uint8Array): Uint8Array[] | string {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5) return "truncated gRPC frame";
    if (body[at] !== 0) return `unsupported gRPC frame flags ${body[at]}`;
    const len = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    if (body.length - at - 5 < len) return "truncated gRPC frame";
    out.push(body.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return out;
}

/** One host's checks. */
class Session {
  readonly host: HostImpl;
  readonly #hc: HealthChecker;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timeout: ReturnType<typeof setTimeout> | undefined;
  #conn: NetConnection | undefined;
  #codec: ClientConnectionCodec | undefined;
  /** The upstream sent GOAWAY (or `connection: close`) on the current connection: the next check reconnects. */
  #goAway = false;
  #numHealthy = 0;
  #numUnhealthy = 0;
  #first = true;
  #stopped = false;
  /** Transition of the last result, for the edge intervals. */
  #edge: "healthy" | "unhealthy" | undefined;
  /** Resolvers waiting for the first result (cluster warm-up). */
  readonly firstResult: Promise<void>;
  #resolveFirst!: () => void;
  /** Settles the check in flight. */
  #settle: ((o: Outcome) => void) | undefined;

  constructor(hc: HealthChecker, host: HostImpl) {
    this.#hc = hc;
    this.host = host;
    this.firstResult = new Promise((r) => this.#resolveFirst = r);
  }

  start(): void {
    const j = this.#hc.config.initialJitterMs;
    this.#arm(j > 0 ? Math.floor(this.#hc.random() * j) : 0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#timeout !== undefined) clearTimeout(this.#timeout);
    this.#timer = this.#timeout = undefined;
    this.#closeConn();
    this.#settle = undefined;
    this.#resolveFirst();
  }

  #arm(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, ms);
    Deno.unrefTimer(this.#timer);
  }

  #nextInterval(): number {
    const c = this.#hc.config;
    let base: number;
    if (!this.#hc.target.hasTraffic()) {
      base = this.host.hasFlag(HealthFlag.FAILED_ACTIVE_HC) ? c.noTrafficIntervalMs : c.noTrafficHealthyIntervalMs;
    } else if (this.#edge === "unhealthy") base = c.unhealthyEdgeIntervalMs;
    else if (this.#edge === "healthy") base = c.healthyEdgeIntervalMs;
    else if (this.host.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) base = c.unhealthyIntervalMs;
    else base = c.intervalMs;
    let jitter = 0;
    if (c.intervalJitterPercent > 0) jitter += this.#hc.random() * base * c.intervalJitterPercent / 100;
    if (c.intervalJitterMs > 0) jitter += this.#hc.random() * c.intervalJitterMs;
    return Math.max(1, Math.floor(base + jitter));
  }

  #run(): void {
    if (this.#stopped) return;
    const hc = this.#hc;
    hc.stats.attempt.inc();
    let settled = false;
    const done = (o: Outcome) => {
      if (settled || this.#stopped) return;
      settled = true;
      this.#settle = undefined;
      if (this.#timeout !== undefined) clearTimeout(this.#timeout);
      this.#timeout = undefined;
      this.#onResult(o);
      this.#arm(this.#nextInterval());
    };
    this.#settle = done;
    this.#timeout = setTimeout(() => {
      this.#timeout = undefined;
      done({ ok: false, kind: "timeout", detail: `no answer within ${hc.config.timeoutMs} ms` });
      // The connection may be stuck mid-response: start over next time.
      this.#closeConn();
    }, hc.config.timeoutMs);
    Deno.unrefTimer(this.#timeout);
    const checker = hc.config.checker;
    if (checker.kind === "http") this.#httpCheck(done);
    else if (checker.kind === "grpc") this.#grpcCheck(done);
    else this.#tcpCheck(done);
  }

  #closeConn(): void {
    const c = this.#conn;
    this.#conn = undefined;
    this.#codec = undefined;
    if (c !== undefined && !c.closed) c.close({ reason: "health check" });
  }

  async #connect(): Promise<NetConnection> {
    return await this.#hc.connect(this.host, { timeoutMs: this.#hc.config.timeoutMs });
  }

  #httpCheck(done: (o: Outcome) => void): void {
    const hc = this.#hc;
    const checker = hc.config.checker;
    if (checker.kind !== "http") return;
    const codecFactory = hc.httpCodec;
    if (codecFactory === undefined) {
      done({ ok: false, kind: "network", detail: "no HTTP codec" });
      return;
    }
    const send = () => {
      const codec = this.#codec!;
      const h = new HeaderMap([
        ":method",
        checker.method,
        ":scheme",
        "http",
        ":authority",
        checker.host ?? hc.target.name,
        ":path",
        checker.path,
        "user-agent",
        USER_AGENT,
      ]);
      for (const a of checker.requestHeadersToAdd) {
        if (a.append) h.add(a.name, a.value);
        else h.set(a.name, a.value);
      }
      for (const r of checker.requestHeadersToRemove) h.remove(r);
      let status = 0;
      let immediateFail = false;
      const decoder: StreamDecoder = {
        decodeHeaders: (headers, end) => {
          status = Number(headers.get(":status"));
          immediateFail = headers.has("x-envoy-immediate-health-check-fail");
          if (end) finish();
        },
        decodeData: (_d, end) => {
          if (end) finish();
        },
        decodeTrailers: () => finish(),
        onReset: (_reason, detail) => {
          this.#closeConn();
          done({ ok: false, kind: "network", detail: detail ?? "connection reset" });
        },
      };
      const finish = () => {
        // The codec ends the stream inside dispatch; decide on reuse afterwards.
        queueMicrotask(() => {
          if (!hc.config.reuseConnection || this.#codec === undefined || !this.#codec.reusable) this.#closeConn();
        });
        const ok = checker.expectedStatuses.some(([a, b]) => status >= a && status < b);
        if (immediateFail) {
          done({ ok: false, kind: "active", detail: "x-envoy-immediate-health-check-fail", immediateFail: true });
        } else if (ok) done({ ok: true });
        else done({ ok: false, kind: "active", detail: `status ${status}` });
      };
      try {
        const enc = codec.newStream(decoder);
        enc.encodeHeaders(h, true);
      } catch (e) {
        this.#closeConn();
        done({ ok: false, kind: "network", detail: errorText(e) });
      }
    };
    this.#withCodec(codecFactory, done, send);
  }

  /**
   * Runs `send` on the session's codec, connecting first when the session has no open connection. Codec errors,
   * EOF and close fail the check in flight (a network failure) and drop the connection.
   */
  #withCodec(factory: CodecFactory, done: (o: Outcome) => void, send: () => void, options?: CodecOptions): void {
    if (this.#conn !== undefined && !this.#conn.closed && this.#codec !== undefined && !this.#goAway) {
      send();
      return;
    }
    this.#closeConn();
    this.#connect().then((conn) => {
      if (this.#stopped || this.#settle !== done) {
        conn.close();
        return;
      }
      const codec = factory.createClient((d) => conn.write(d), options, {
        // The upstream takes no new streams here: the check in flight finishes, the next one reconnects.
        onGoAway: () => {
          if (this.#conn === conn) this.#goAway = true;
        },
      });
      this.#conn = conn;
      this.#codec = codec;
      this.#goAway = false;
      conn.setHandler({
        onData: (d) => {
          try {
            codec.dispatch(d);
          } catch (e) {
            this.#closeConn();
            done({ ok: false, kind: "network", detail: `protocol error: ${errorText(e)}` });
          }
        },
        onEof: () => {
          try {
            codec.onEof();
          } catch { /* reset below */ }
          if (this.#conn === conn) this.#closeConn();
          done({ ok: false, kind: "network", detail: "connection closed" });
        },
        onClose: () => {
          if (this.#conn === conn) {
            this.#conn = undefined;
            this.#codec = undefined;
          }
          // Open streams are reset (their decoders fail the check) and the codec's timers stop.
          codec.onConnectionClose?.();
          done({ ok: false, kind: "network", detail: "connection closed" });
        },
      });
      conn.start();
      send();
    }, (e) => done({ ok: false, kind: "network", detail: errorText(e) }));
  }

  /** One `grpc.health.v1.Health/Check` call; see the module doc for what passes. */
  #grpcCheck(done: (o: Outcome) => void): void {
    const hc = this.#hc;
    const checker = hc.config.checker;
    if (checker.kind !== "grpc") return;
    const codecFactory = hc.grpcCodec;
    if (codecFactory === undefined) {
      done({ ok: false, kind: "network", detail: "no HTTP/2 codec" });
      return;
    }
    const send = () => {
      const codec = this.#codec!;
      const h = new HeaderMap([
        ":method",
        "POST",
        ":scheme",
        "http",
        ":authority",
        checker.authority ?? hc.target.name,
        ":path",
        GRPC_HEALTH_CHECK_PATH,
        "content-type",
        "application/grpc",
        "te",
        "trailers",
        "user-agent",
        USER_AGENT,
      ]);
      for (const m of checker.initialMetadata) {
        if (m.append) h.add(m.name, m.value);
        else h.set(m.name, m.value);
      }
      const body: Uint8Array[] = [];
      let finished = false;
      const finish = (o: Outcome) => {
        if (finished) return;
        finished = true;
        // The codec ends the stream inside dispatch; decide on reuse afterwards.
        queueMicrotask(() => {
          if (
            !hc.config.reuseConnection || this.#codec !== codec || !codec.reusable || this.#goAway
          ) {
            if (this.#codec === codec) this.#closeConn();
          }
        });
        done(o);
      };
      const active = (detail: string): Outcome => ({ ok: false, kind: "active", detail });
      const onStatus = (t: HeaderMap) => {
        const status = t.get("grpc-status");
        if (status === undefined) return finish(active("gRPC response without grpc-status"));
        if (status !== "0") {
          const msg = t.get("grpc-message");
          return finish(active(`grpc-status ${status}${msg ? ` (${msg})` : ""}`));
        }
        let total = 0;
        for (const c of body) total += c.length;
        const all = new Uint8Array(total);
        let off = 0;
        for (const c of body) {
          all.set(c, off);
          off += c.length;
        }
        const msgs = grpcMessages(all);
        if (typeof msgs === "string") return finish(active(msgs));
        if (msgs.length !== 1) return finish(active(`expected one HealthCheckResponse, got ${msgs.length}`));
        const serving = decodeHealthCheckResponse(msgs[0]!);
        if (serving === undefined) return finish(active("malformed HealthCheckResponse"));
        if (serving === 1) return finish({ ok: true });
        finish(active(`health status ${GRPC_SERVING_STATUS[serving] ?? serving}`));
      };
      const decoder: StreamDecoder = {
        decodeHeaders: (headers, end) => {
          const status = headers.get(":status");
          if (status !== "200") return finish(active(`non-200 HTTP response: ${status}`));
          if (end) return onStatus(headers);
          if (!isGrpcContentType(headers.get("content-type"))) {
            finish(active(`invalid gRPC content-type: ${headers.get("content-type") ?? "none"}`));
          }
        },
        decodeData: (d, end) => {
          if (finished) return;
          body.push(d.slice());
          if (end) finish(active("gRPC response ended without trailers"));
        },
        decodeTrailers: (t) => {
          if (!finished) onStatus(t);
        },
        onReset: (_reason, detail) => {
          if (this.#codec === codec) this.#closeConn();
          done({ ok: false, kind: "network", detail: detail ?? "stream reset" });
        },
      };
      try {
        const enc = codec.newStream(decoder);
        enc.encodeHeaders(h, false);
        enc.encodeData(grpcFrame(encodeHealthCheckRequest(checker.serviceName)), true);
      } catch (e) {
        this.#closeConn();
        done({ ok: false, kind: "network", detail: errorText(e) });
      }
    };
    this.#withCodec(codecFactory, done, send, {
      // An HTTP/2 keepalive timeout or an outbound flood: the codec has said its last words.
      closeConnection: () => this.#closeConn(),
    });
  }

  #tcpCheck(done: (o: Outcome) => void): void {
    const checker = this.#hc.config.checker;
    if (checker.kind !== "tcp") return;
    this.#connect().then((conn) => {
      if (this.#stopped || this.#settle !== done) {
        conn.close();
        return;
      }
      this.#conn = conn;
      let buf = new Uint8Array(0);
      const finish = (o: Outcome) => {
        // Settle first: closing calls onClose synchronously, which would report a failure.
        done(o);
        this.#closeConn();
      };
      const check = () => {
        let from = 0;
        for (const p of checker.receive) {
          const i = indexOf(buf, p, from);
          if (i < 0) return false;
          from = i + p.length;
        }
        return true;
      };
      conn.setHandler({
        onData: (d) => {
          const n = new Uint8Array(buf.length + d.length);
          n.set(buf);
          n.set(d, buf.length);
          buf = n;
          if (check()) finish({ ok: true });
        },
        onEof: () => finish({ ok: false, kind: "network", detail: "connection closed before the expected payload" }),
        onClose: () => done({ ok: false, kind: "network", detail: "connection closed" }),
      });
      conn.start();
      if (checker.send !== undefined) conn.write(checker.send);
      if (checker.receive.length === 0) finish({ ok: true });
    }, (e) => done({ ok: false, kind: "network", detail: errorText(e) }));
  }

  #onResult(o: Outcome): void {
    const hc = this.#hc;
    const host = this.host;
    const first = this.#first;
    this.#first = false;
    this.#edge = undefined;
    const wasPending = host.hasFlag(HealthFlag.PENDING_ACTIVE_HC);
    if (o.ok) {
      hc.stats.success.inc();
      this.#numUnhealthy = 0;
      host.setFlag(HealthFlag.ACTIVE_HC_TIMEOUT, false);
      if (host.hasFlag(HealthFlag.FAILED_ACTIVE_HC) || host.hasFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL)) {
        // Envoy: the first result of a new host counts at once, for a fast start.
        if (first || ++this.#numHealthy >= hc.config.healthyThreshold) {
          this.#numHealthy = 0;
          host.setFlag(HealthFlag.PENDING_ACTIVE_HC, false);
          host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, false);
          host.setFlag(HealthFlag.FAILED_ACTIVE_HC, false);
          this.#edge = "healthy";
          hc.healthyCount(1);
          log.info(`cluster "${hc.target.name}": host ${host.key} is now healthy (health check passed)`);
          hc.options.onHostHealthChange?.(host, true);
        }
      } else if (hc.config.alwaysLogHealthCheckSuccess) {
        log.info(`cluster "${hc.target.name}": host ${host.key}: health check passed`);
      }
      hc.options.onHostCheckSuccess?.(host);
    } else {
      hc.stats.failure.inc();
      if (o.kind !== "active") hc.stats.network_failure.inc();
      this.#numHealthy = 0;
      if (o.kind === "timeout") host.setFlag(HealthFlag.ACTIVE_HC_TIMEOUT, true);
      if (o.immediateFail) host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, true);
      const failed = host.hasFlag(HealthFlag.FAILED_ACTIVE_HC);
      if (!failed && (o.kind === "active" || ++this.#numUnhealthy >= hc.config.unhealthyThreshold)) {
        this.#numUnhealthy = 0;
        host.setFlag(HealthFlag.FAILED_ACTIVE_HC, true);
        this.#edge = "unhealthy";
        hc.healthyCount(-1);
        log.warn(`cluster "${hc.target.name}": host ${host.key} is now unhealthy (health check failed: ${o.detail})`);
        hc.options.onHostHealthChange?.(host, false);
      } else if (failed && hc.config.alwaysLogHealthCheckFailures) {
        log.warn(`cluster "${hc.target.name}": host ${host.key}: health check failed: ${o.detail}`);
      } else {
        log.debug(`cluster "${hc.target.name}": host ${host.key}: health check failed: ${o.detail}`);
      }
      host.setFlag(HealthFlag.PENDING_ACTIVE_HC, false);
    }
    if (wasPending || first) this.#resolveFirst();
  }

  /** The upstream answered ordinary traffic with `x-envoy-immediate-health-check-fail`. */
  immediateFail(): void {
    const host = this.host;
    this.#hc.stats.passive_failure.inc();
    host.setFlag(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, true);
    if (!host.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) {
      host.setFlag(HealthFlag.FAILED_ACTIVE_HC, true);
      this.#hc.healthyCount(-1);
      this.#numHealthy = 0;
      log.warn(`cluster "${this.#hc.target.name}": host ${host.key} is now unhealthy (immediate health check fail)`);
      this.#hc.options.onHostHealthChange?.(host, false);
    }
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Active health checks of one cluster; see the module doc. */
export class HealthChecker {
  readonly config: HealthCheckerConfig;
  readonly target: HealthCheckTarget;
  readonly options: HealthCheckerOptions;
  readonly stats: HcStats;
  readonly random: () => number;
  readonly connect: Connector;
  readonly httpCodec: CodecFactory | undefined;
  /** The HTTP/2 codec of gRPC checks. */
  readonly grpcCodec: CodecFactory | undefined;
  readonly #sessions = new Map<HostImpl, Session>();
  #started = false;

  constructor(config: HealthCheckerConfig, target: HealthCheckTarget, options: HealthCheckerOptions) {
    if (config.checker.kind === "http" && options.httpCodec === undefined) {
      throw new Error(`cluster "${target.name}": HTTP health checks need an HTTP codec`);
    }
    const grpcCodec = options.grpcCodec ??
      (options.httpCodec?.poolMode === "multiplex-stream-id" ? options.httpCodec : undefined);
    if (config.checker.kind === "grpc" && grpcCodec === undefined) {
      throw new Error(`cluster "${target.name}": gRPC health checks need an HTTP/2 codec`);
    }
    this.grpcCodec = grpcCodec;
    this.config = config;
    this.target = target;
    this.options = options;
    this.random = options.random ?? Math.random;
    this.connect = options.connect;
    this.httpCodec = options.httpCodec;
    const s = target.scope.scope("health_check");
    this.stats = {
      attempt: s.counter("attempt"),
      success: s.counter("success"),
      failure: s.counter("failure"),
      network_failure: s.counter("network_failure"),
      passive_failure: s.counter("passive_failure"),
      verify_cluster: s.counter("verify_cluster"),
      healthy: s.gauge("healthy"),
    };
  }

  /** Flags a host starts with under active health checking. */
  static readonly INITIAL_FLAGS: number = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC;

  /** @internal Adjusts the `healthy` gauge. */
  healthyCount(d: number): void {
    if (d > 0) this.stats.healthy.inc(d);
    else this.stats.healthy.dec(-d);
  }

  /** Starts checking `hosts` (call once); later changes go through {@link onHostsChanged}. */
  start(hosts: readonly HostImpl[]): void {
    this.#started = true;
    this.onHostsChanged(hosts, []);
  }

  /** Adds sessions for added hosts and stops those of removed ones. */
  onHostsChanged(added: readonly HostImpl[], removed: readonly HostImpl[]): void {
    for (const h of removed) {
      const s = this.#sessions.get(h);
      if (s === undefined) continue;
      s.stop();
      this.#sessions.delete(h);
      if (!h.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) this.healthyCount(-1);
    }
    if (!this.#started) return;
    for (const h of added) {
      if (this.#sessions.has(h)) continue;
      const s = new Session(this, h);
      this.#sessions.set(h, s);
      if (!h.hasFlag(HealthFlag.FAILED_ACTIVE_HC)) this.healthyCount(1);
      s.start();
    }
  }

  /** Resolves when every current host has had its first check result (cluster warm-up). */
  firstRound(): Promise<void> {
    return Promise.all([...this.#sessions.values()].map((s) => s.firstResult)).then(() => {});
  }

  /** The router saw `x-envoy-immediate-health-check-fail` from this host. */
  immediateFail(host: HostImpl): void {
    this.#sessions.get(host)?.immediateFail();
  }

  /** Stops every session. */
  stop(): void {
    for (const s of this.#sessions.values()) s.stop();
    this.#sessions.clear();
    this.#started = false;
  }
}
