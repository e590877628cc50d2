/**
 * A minimal HTTP/1.1 client codec for the pool tests, until `codecs/http1` lands: requests are written with
 * `content-length` when the headers carry one, chunked otherwise; responses are read with `content-length`, or
 * until close. Not for production.
 *
 * @module
 */
import type {
  ClientConnectionCodec,
  CodecFactory,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../api/codec.ts";
import { CodecError } from "../api/errors.ts";
import { HeaderMap } from "../api/headers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

class FakeEncoder implements StreamEncoder {
  headersSent = false;
  #write: WriteFn;
  #chunked = false;
  constructor(write: WriteFn) {
    this.#write = write;
  }
  encodeHeaders(h: HeaderMap, endStream: boolean): void {
    this.headersSent = true;
    let s = `${h.get(":method") ?? "GET"} ${h.get(":path") ?? "/"} HTTP/1.1\r\nhost: ${h.get(":authority") ?? "x"}\r\n`;
    for (const [k, v] of h) if (!k.startsWith(":")) s += `${k}: ${v}\r\n`;
    if (!endStream && !h.has("content-length")) {
      this.#chunked = true;
      s += "transfer-encoding: chunked\r\n";
    }
    this.#write(enc.encode(s + "\r\n"));
  }
  encodeData(d: Uint8Array, endStream: boolean): void {
    if (this.#chunked) {
      if (d.length > 0) {
        this.#write(enc.encode(`${d.length.toString(16)}\r\n`));
        this.#write(d);
        this.#write(enc.encode("\r\n"));
      }
      if (endStream) this.#write(enc.encode("0\r\n\r\n"));
    } else this.#write(d);
  }
  encodeTrailers(): void {
    if (this.#chunked) this.#write(enc.encode("0\r\n\r\n"));
  }
  resetStream(_reason: StreamResetReason): void {}
}

class FakeClient implements ClientConnectionCodec {
  readonly protocol = "HTTP/1.1";
  reusable = true;
  #write: WriteFn;
  #decoder: StreamDecoder | undefined;
  #buf = new Uint8Array(0);
  /** -1: reading the head; >= 0: body bytes left; -2: until close. */
  #left = -1;

  constructor(write: WriteFn) {
    this.#write = write;
  }

  get activeStreams(): number {
    return this.#decoder ? 1 : 0;
  }

  newStream(decoder: StreamDecoder): StreamEncoder {
    if (this.#decoder) throw new Error("fake codec: stream in progress");
    this.#decoder = decoder;
    this.#left = -1;
    return new FakeEncoder(this.#write);
  }

  dispatch(data: Uint8Array): void {
    const b = new Uint8Array(this.#buf.length + data.length);
    b.set(this.#buf);
    b.set(data, this.#buf.length);
    this.#buf = b;
    while (this.#buf.length > 0) {
      const d = this.#decoder;
      if (!d) throw new CodecError("UnexpectedData", "data without a request");
      if (this.#left === -1) {
        const text = dec.decode(this.#buf);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = text.slice(0, end).split("\r\n");
        const status = lines[0]!.split(" ")[1]!;
        const h = new HeaderMap();
        h.add(":status", status);
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          h.add(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
        }
        this.#buf = this.#buf.subarray(end + 4);
        if (h.get("connection") === "close") this.reusable = false;
        const cl = h.get("content-length");
        if (cl !== undefined) this.#left = Number(cl);
        else {
          this.#left = -2;
          this.reusable = false;
        }
        if (this.#left === 0) {
          this.#decoder = undefined;
          d.decodeHeaders(h, true);
          continue;
        }
        d.decodeHeaders(h, false);
        continue;
      }
      if (this.#left === -2) {
        const chunk = this.#buf;
        this.#buf = new Uint8Array(0);
        d.decodeData(chunk, false);
        return;
      }
      const n = Math.min(this.#left, this.#buf.length);
      const chunk = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      this.#left -= n;
      if (this.#left === 0) {
        this.#decoder = undefined;
        this.#left = -1;
        d.decodeData(chunk, true);
      } else d.decodeData(chunk, false);
    }
  }

  onEof(): void {
    const d = this.#decoder;
    if (!d) return;
    this.#decoder = undefined;
    if (this.#left === -2) d.decodeData(new Uint8Array(0), true);
    else d.onReset?.("connection-termination", "upstream closed before the response completed");
  }
}

/** The fake codec factory. */
export const fakeHttp1Codec: CodecFactory = {
  name: "fake-http1",
  poolMode: "ping-pong",
  createServer() {
    throw new Error("fake codec: client only");
  },
  createClient(write: WriteFn): ClientConnectionCodec {
    return new FakeClient(write);
  },
};
