/**
 * Test peers for the upstream and tcp_proxy tests: a tiny HTTP/1.1 upstream, a response collector and polling
 * helpers (`sleep`, `waitFor`).
 *
 * @module
 */
import type { StreamDecoder, StreamResetReason } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type { PoolCallbacks, PoolFailureReason, PoolReadyInfo } from "../../lib/api/upstream.ts";
import type { StreamEncoder } from "../../lib/api/codec.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the test upstream answers. */
export interface UpstreamReply {
  status?: number;
  body?: string;
  /** Add `connection: close` and close after the response. */
  close?: boolean;
  /** Delay before answering, ms. */
  delayMs?: number;
  /** Close the connection without answering. */
  abort?: boolean;
}

/** One request as the upstream saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Index of the accepted connection (1-based). */
  conn: number;
}

/**
 * An HTTP/1.1 upstream on 127.0.0.1:0. Each response carries `x-conn: <n>` (the accepting order of its
 * connection), so tests can see which connection served a request.
 */
export class TestUpstream {
  readonly listener: Deno.TcpListener;
  readonly requests: SeenRequest[] = [];
  readonly conns = new Map<number, Deno.Conn>();
  accepted = 0;
  reply: (req: SeenRequest) => UpstreamReply = () => ({});
  #tasks: Promise<void>[] = [];
  #loop: Promise<void>;

  constructor() {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#accept();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const c of this.listener) {
        const n = ++this.accepted;
        this.conns.set(n, c);
        this.#tasks.push(this.#serve(c, n));
      }
    } catch {
      // listener closed
    }
  }

  async #serve(c: Deno.Conn, n: number): Promise<void> {
    let buf = "";
    const chunk = new Uint8Array(65536);
    try {
      for (;;) {
        let end = buf.indexOf("\r\n\r\n");
        while (end < 0) {
          const r = await c.read(chunk);
          if (r === null) return;
          buf += dec.decode(chunk.subarray(0, r));
          end = buf.indexOf("\r\n\r\n");
        }
        const lines = buf.slice(0, end).split("\r\n");
        buf = buf.slice(end + 4);
        const [method, path] = lines[0]!.split(" ");
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        let body = "";
        if (headers["content-length"] !== undefined) {
          const len = Number(headers["content-length"]);
          while (buf.length < len) {
            const r = await c.read(chunk);
            if (r === null) return;
            buf += dec.decode(chunk.subarray(0, r));
          }
          body = buf.slice(0, len);
          buf = buf.slice(len);
        } else if (headers["transfer-encoding"] === "chunked") {
          for (;;) {
            let i = buf.indexOf("\r\n");
            while (i < 0) {
              const r = await c.read(chunk);
              if (r === null) return;
              buf += dec.decode(chunk.subarray(0, r));
              i = buf.indexOf("\r\n");
            }
            const size = parseInt(buf.slice(0, i), 16);
            while (buf.length < i + 2 + size + 2) {
              const r = await c.read(chunk);
              if (r === null) return;
              buf += dec.decode(chunk.subarray(0, r));
            }
            body += buf.slice(i + 2, i + 2 + size);
            buf = buf.slice(i + 2 + size + 2);
            if (size === 0) break;
          }
        }
        const req: SeenRequest = { method: method!, path: path!, headers, body, conn: n };
        this.requests.push(req);
        const rep = this.reply(req);
        if (rep.delayMs) await new Promise((r) => setTimeout(r, rep.delayMs));
        if (rep.abort) {
          c.close();
          return;
        }
        const b = rep.body ?? "ok";
        const head = `HTTP/1.1 ${rep.status ?? 200} X\r\ncontent-length: ${enc.encode(b).length}\r\nx-conn: ${n}\r\n` +
          (rep.close ? "connection: close\r\n" : "") + "\r\n";
        await c.write(enc.encode(head + b));
        if (rep.close) {
          c.close();
          return;
        }
      }
    } catch {
      // reset by the pool
    } finally {
      this.conns.delete(n);
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  /** Closes connection `n` from the server side. */
  closeConn(n: number): void {
    try {
      this.conns.get(n)?.close();
    } catch { /* closed */ }
  }

  async close(): Promise<void> {
    this.listener.close();
    for (const c of this.conns.values()) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}

/** The outcome of one pooled request. */
export interface Outcome {
  status?: number;
  headers?: HeaderMap;
  body: string;
  reset?: StreamResetReason;
  failure?: PoolFailureReason;
  failureDetail?: string;
  info?: PoolReadyInfo;
}

/**
 * A decoder + pool callbacks that sends a GET (or a POST with `body`) when the pool is ready and resolves
 * `done` when the response ends, the stream resets, or the pool fails.
 */
export class Exchange implements StreamDecoder, PoolCallbacks {
  readonly outcome: Outcome = { body: "" };
  readonly done: Promise<Outcome>;
  encoder: StreamEncoder | undefined;
  #resolve!: (o: Outcome) => void;
  #path: string;
  #body: string | undefined;

  constructor(path = "/", body?: string) {
    this.#path = path;
    this.#body = body;
    this.done = new Promise((r) => this.#resolve = r);
  }

  onPoolReady(encoder: StreamEncoder, info: PoolReadyInfo): void {
    this.outcome.info = info;
    this.encoder = encoder;
    const h = HeaderMap.from({ ":method": this.#body ? "POST" : "GET", ":path": this.#path, ":authority": "test" });
    if (this.#body === undefined) encoder.encodeHeaders(h, true);
    else {
      h.add("content-length", String(enc.encode(this.#body).length));
      encoder.encodeHeaders(h, false);
      encoder.encodeData(enc.encode(this.#body), true);
    }
  }

  onPoolFailure(reason: PoolFailureReason, detail: string): void {
    this.outcome.failure = reason;
    this.outcome.failureDetail = detail;
    this.#resolve(this.outcome);
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.outcome.status = Number(headers.get(":status"));
    this.outcome.headers = headers;
    if (endStream) this.#resolve(this.outcome);
  }

  decodeData(data: Uint8Array, endStream: boolean): void {
    this.outcome.body += dec.decode(data);
    if (endStream) this.#resolve(this.outcome);
  }

  decodeTrailers(): void {
    this.#resolve(this.outcome);
  }

  onReset(reason: StreamResetReason): void {
    this.outcome.reset = reason;
    this.#resolve(this.outcome);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 5 ms until true or `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 2000, what = "condition"): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
