/**
 * A gRPC stream (bidirectional, or unary: one message each way) on Ferry's own HTTP/2 client codec
 * (`codecs/http2`), over a connection the caller opens — for xDS, through the management server's cluster (plain
 * TCP, or its TLS transport socket with `h2` offered by ALPN), as Envoy's `envoy_grpc` goes through the cluster
 * manager.
 *
 * Why not `@grpc/grpc-js`: under Deno it runs on `node:http2`, and Deno aborts the whole process inside nghttp2
 * when a GOAWAY arrives on some sessions (denoland/deno#36788, `find_stream_on_goaway_func` assertion) — a control
 * plane (or an authorization service) that restarts or rotates connections (Istio's max connection age) would take
 * Ferry down. It did abort this project's test run.
 *
 * Messages are gRPC length-prefixed (RFC: gRPC over HTTP/2): one flag byte (0, no compression), a 4-byte length,
 * the protobuf bytes. The stream ends with trailers (`grpc-status`, `grpc-message`), a reset, or the connection
 * closing; each is reported once through `onClose`.
 *
 * @module
 */
import type { StreamEncoder } from "../api/codec.ts";
import { HeaderMap } from "../api/headers.ts";
import type { NetConnection } from "../api/network.ts";
import { http2CodecFactory } from "../../codecs/http2/mod.ts";

/** What a {@link GrpcStream} needs to open. */
export interface GrpcStreamOptions {
  /** Opens the connection (the cluster's connector). */
  readonly connect: () => Promise<NetConnection>;
  /** `:authority`. */
  readonly authority: string;
  /** `https` over TLS, else `http`. */
  readonly scheme: "http" | "https";
  /** Full method path, `/package.Service/Method`. */
  readonly path: string;
  /** Extra request headers (`initial_metadata`). */
  readonly metadata: readonly { key: string; value: string }[];
  /** Largest message accepted (bytes). */
  readonly maxMessageBytes?: number;
}

/** gRPC status names for messages. */
const STATUS: Record<string, string> = {
  "0": "OK",
  "1": "CANCELLED",
  "2": "UNKNOWN",
  "3": "INVALID_ARGUMENT",
  "4": "DEADLINE_EXCEEDED",
  "5": "NOT_FOUND",
  "7": "PERMISSION_DENIED",
  "8": "RESOURCE_EXHAUSTED",
  "12": "UNIMPLEMENTED",
  "13": "INTERNAL",
  "14": "UNAVAILABLE",
  "16": "UNAUTHENTICATED",
};

/** One gRPC bidi stream on its own HTTP/2 connection; see the module doc. */
export class GrpcStream {
  readonly #o: GrpcStreamOptions;
  #conn: NetConnection | undefined;
  #encoder: StreamEncoder | undefined;
  #buf = new Uint8Array(0);
  /** Framed messages written before the stream opened. */
  #pending: Uint8Array[] = [];
  #closed = false;
  #onMessage: (m: Uint8Array) => void = () => {};
  #onClose: (reason: string, grpcStatus: number | undefined) => void = () => {};
  #endPending = false;

  constructor(options: GrpcStreamOptions) {
    this.#o = options;
  }

  /**
   * Connects and opens the stream. `onMessage` gets each response message (a copy), `onClose` the reason the stream
   * ended (once; also when the connection cannot be opened).
   */
  open(onMessage: (m: Uint8Array) => void, onClose: (reason: string, grpcStatus: number | undefined) => void): void {
    this.#onMessage = onMessage;
    this.#onClose = onClose;
    this.#o.connect().then((conn) => {
      if (this.#closed) {
        conn.close({ reason: "stream cancelled" });
        return;
      }
      this.#conn = conn;
      this.#start(conn);
    }, (e) => this.#end(`connect failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  #start(conn: NetConnection): void {
    const codec = http2CodecFactory.createClient((d) => conn.write(d), {}, {
      onGoAway: () => {
        // A graceful GOAWAY lets this stream finish; the server closes it (or the connection) when it is done.
      },
    });
    conn.setHandler({
      onData: (d) => {
        try {
          codec.dispatch(d);
        } catch (e) {
          conn.close({ reason: "http2 protocol error" });
          this.#end(`HTTP/2 protocol error: ${e instanceof Error ? e.message : String(e)}`);
        }
      },
      onEof: () => codec.onEof(),
      onClose: (reason) => {
        codec.onConnectionClose?.();
        this.#end(`connection closed (${reason})`);
      },
    });
    conn.start();
    let status: string | undefined;
    let statusText = "";
    const enc = codec.newStream({
      decodeHeaders: (h, end) => {
        const s = h.get(":status");
        if (s !== "200") {
          this.#end(`HTTP status ${s ?? "missing"}`);
          return;
        }
        status = h.get("grpc-status") ?? status;
        statusText = h.get("grpc-message") ?? statusText;
        if (end) this.#endWithStatus(status, statusText);
      },
      decodeData: (d, end) => {
        this.#onData(d);
        if (end) this.#endWithStatus(status, statusText);
      },
      decodeTrailers: (t) => this.#endWithStatus(t.get("grpc-status"), t.get("grpc-message") ?? ""),
      onReset: (reason, detail) => this.#end(`stream reset (${reason}${detail ? `: ${detail}` : ""})`),
    });
    this.#encoder = enc;
    const headers = HeaderMap.from([
      [":method", "POST"],
      [":scheme", this.#o.scheme],
      [":path", this.#o.path],
      [":authority", this.#o.authority],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["user-agent", "ferry-xds"],
      ...this.#o.metadata.map(({ key, value }) => [key, value] as const),
    ]);
    enc.encodeHeaders(headers, false);
    for (const m of this.#pending) enc.encodeData(m, false);
    this.#pending = [];
    if (this.#endPending) enc.encodeData(new Uint8Array(0), true);
  }

  /** Sends one message (queued until the stream is open). */
  write(message: Uint8Array): void {
    if (this.#closed) return;
    const framed = new Uint8Array(5 + message.length);
    new DataView(framed.buffer).setUint32(1, message.length);
    framed.set(message, 5);
    if (this.#encoder) this.#encoder.encodeData(framed, false);
    else this.#pending.push(framed);
  }

  /** Half-closes the request side (END_STREAM): a unary call sends its one message, then this. */
  end(): void {
    if (this.#closed) return;
    if (this.#encoder) this.#encoder.encodeData(new Uint8Array(0), true);
    else this.#endPending = true;
  }

  /** Ends the stream and its connection (the peer sees RST_STREAM CANCEL and the connection close). */
  cancel(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#encoder?.resetStream("local-reset");
    } catch {
      // already gone
    }
    this.#conn?.close({ reason: "xds stream cancelled" });
  }

  #onData(d: Uint8Array): void {
    const max = this.#o.maxMessageBytes ?? 64 * 1024 * 1024;
    let buf: Uint8Array;
    if (this.#buf.length === 0) buf = d;
    else {
      buf = new Uint8Array(this.#buf.length + d.length);
      buf.set(this.#buf);
      buf.set(d, this.#buf.length);
    }
    let off = 0;
    while (buf.length - off >= 5) {
      const view = new DataView(buf.buffer, buf.byteOffset + off, 5);
      if (view.getUint8(0) !== 0) {
        this.#fail("a compressed gRPC message (no grpc-encoding was offered)");
        return;
      }
      const len = view.getUint32(1);
      if (len > max) {
        this.#fail(`a gRPC message of ${len} bytes (limit ${max})`);
        return;
      }
      if (buf.length - off - 5 < len) break;
      // A copy: `d` is only valid during the call.
      const msg = buf.slice(off + 5, off + 5 + len);
      off += 5 + len;
      this.#onMessage(msg);
      if (this.#closed) return;
    }
    // Keep the rest (copied: it may point into `d`).
    this.#buf = buf.slice(off);
  }

  #fail(what: string): void {
    try {
      this.#encoder?.resetStream("local-reset");
    } catch {
      // already gone
    }
    this.#end(what);
  }

  #endWithStatus(status: string | undefined, message: string): void {
    const name = status === undefined ? "no grpc-status" : `${STATUS[status] ?? status}`;
    let text = message;
    try {
      text = decodeURIComponent(message);
    } catch {
      // not percent-encoded as it should be: shown as sent
    }
    const code = status === undefined || !/^\d+$/.test(status) ? undefined : Number(status);
    this.#end(`${name}${text ? `: ${text}` : ""}`, code);
  }

  #end(reason: string, grpcStatus?: number): void {
    const already = this.#closed;
    this.#closed = true;
    this.#conn?.close({ reason: "grpc stream ended" });
    if (!already) this.#onClose(reason, grpcStatus);
  }
}
