/**
 * Scripted equivalents of the h2spec (github.com/summerwind/h2spec) cases that fail against Ferry, so the suite
 * pins the behaviour without CI having to build h2spec. Raw frames go over a plain socket to a running Ferry.
 *
 * h2spec 2.x results against Ferry (146 cases; `-S` strict adds 1):
 * - cleartext, HCM `codec_type: AUTO`: 145 passed, 1 failed: `http2/3.5/2` "Sends invalid connection preface".
 *   AUTO picks HTTP/2 only when the first bytes are the connection preface (as Envoy's
 *   `ConnectionManagerUtility::determineNextProtocol`); anything else is HTTP/1.1, so
 *   `INVALID CONNECTION PREFACE\r\n\r\n` gets an HTTP/1.1 400 and a close. h2spec reads the 400 as a frame
 *   header and reports "unexpected EOF". Correct for AUTO: the server has no prior knowledge that the client
 *   meant HTTP/2. The tests below pin both sides: AUTO answers as HTTP/1.1, and `codec_type: HTTP2` answers
 *   GOAWAY(PROTOCOL_ERROR) as RFC 9113 §3.4 requires.
 * - cleartext `codec_type: HTTP2`, and TLS with ALPN h2: 146/146.
 * - strict `http2/8.1.2.6/2` (content-length 1, then two 4-byte DATA frames) fails now and then: when the
 *   upstream's whole response reaches the client before the DATA frames are read, Ferry ends the stream with
 *   RST_STREAM(NO_ERROR) (RFC 9113 §8.1). It then ignores the late DATA frames (§5.1, "closed"), so the
 *   PROTOCOL_ERROR that h2spec waits for never comes. The tests below pin both orders.
 *
 * No case here fails today, so none is `ignore`d.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  ErrorCode,
  Flag,
  FrameType,
  OutBuf,
  PREFACE,
  putData,
  putHeaderBlock,
  putSettings,
} from "../../codecs/http2/frames.ts";
import { HpackEncoder } from "../../codecs/http2/hpack.ts";
import { concat, parseFrames, type TestFrame } from "../helpers/http2.ts";
import { catchAllRoute, hcmBootstrap, itOpts, startFerry, startRawServer, staticCluster } from "./_harness.ts";

/** A read still in flight when `readUntilIdle` stopped waiting; the next call on that conn takes it over. */
const pendingReads = new WeakMap<Deno.Conn, { p: Promise<number | null>; buf: Uint8Array }>();

/** Reads from `c` until EOF or `idleMs` without data; reports whether the peer closed. */
async function readUntilIdle(c: Deno.Conn, idleMs = 500, maxMs = 5000): Promise<{ bytes: Uint8Array; eof: boolean }> {
  const chunks: Uint8Array[] = [];
  const deadline = Date.now() + maxMs;
  for (;;) {
    let pr = pendingReads.get(c);
    if (!pr) {
      const buf = new Uint8Array(65536);
      pr = { p: c.read(buf).catch(() => null), buf };
      pendingReads.set(c, pr);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wait = Math.max(1, Math.min(idleMs, deadline - Date.now()));
    const n = await Promise.race([pr.p, new Promise<"idle">((r) => timer = setTimeout(() => r("idle"), wait))]);
    clearTimeout(timer);
    if (n === "idle") return { bytes: concat(chunks), eof: false };
    pendingReads.delete(c);
    if (n === null) return { bytes: concat(chunks), eof: true };
    chunks.push(pr.buf.slice(0, n));
    if (Date.now() >= deadline) return { bytes: concat(chunks), eof: false };
  }
}

/** A raw h2c client: preface, frames, and the frames Ferry sends back. */
class RawH2 {
  readonly enc = new HpackEncoder();
  private constructor(readonly conn: Deno.TcpConn) {}

  static async connect(port: number): Promise<RawH2> {
    return new RawH2(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async write(fn: (o: OutBuf) => void, preface = false): Promise<void> {
    const o = new OutBuf();
    fn(o);
    const frames = o.take().slice();
    await this.conn.write(preface ? concat([PREFACE, frames]) : frames);
  }

  /** The client preface and an empty SETTINGS, plus the ACK of the server's SETTINGS (sent blind, as h2spec). */
  async handshake(): Promise<TestFrame[]> {
    await this.write((o) => putSettings(o, []), true);
    const { bytes } = await readUntilIdle(this.conn, 200);
    await this.write((o) => {
      // SETTINGS ACK
      o.ensure(9);
      o.buf.set([0, 0, 0, FrameType.SETTINGS, Flag.ACK, 0, 0, 0, 0], o.len);
      o.len += 9;
    });
    return parseFrames(bytes);
  }

  post(o: OutBuf, id: number, contentLength: number): void {
    const block = this.enc.encode([
      ":method",
      "POST",
      ":scheme",
      "http",
      ":authority",
      "127.0.0.1",
      ":path",
      "/",
      "content-length",
      String(contentLength),
    ]);
    putHeaderBlock(o, id, block, false, 16384);
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

const u32 = (p: Uint8Array, off: number) =>
  ((p[off]! << 24) | (p[off + 1]! << 16) | (p[off + 2]! << 8) | p[off + 3]!) >>> 0;
const goAways = (fs: TestFrame[]) => fs.filter((f) => f.type === FrameType.GOAWAY).map((f) => u32(f.payload, 4));
const rsts = (fs: TestFrame[], id: number) =>
  fs.filter((f) => f.type === FrameType.RST_STREAM && f.id === id).map((f) => u32(f.payload, 0));

/** An HTTP/1.1 upstream that answers every request at once with 200 "ok", without waiting for its body. */
function eagerUpstream() {
  return startRawServer(async (c) => {
    const buf = new Uint8Array(65536);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await c.read(buf);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"));
    c.close();
  });
}

/** An HTTP/1.1 upstream that never answers (holds the connection until closed). */
function silentUpstream() {
  return startRawServer(async (c) => {
    const buf = new Uint8Array(65536);
    while ((await c.read(buf)) !== null) { /* swallow */ }
  });
}

function ferryConfig(codec: "AUTO" | "HTTP2", upstreamPort: number): string {
  return hcmBootstrap({
    admin: false,
    hcmExtra: `codec_type: ${codec}`,
    routes: catchAllRoute("{ cluster: up, timeout: 5s }"),
    clusters: staticCluster("up", [upstreamPort]),
  });
}

const INVALID_PREFACE = new TextEncoder().encode("INVALID CONNECTION PREFACE\r\n\r\n");

Deno.test(
  "h2spec http2/3.5/2 (codec_type HTTP2): an invalid preface is GOAWAY(PROTOCOL_ERROR) and a close",
  itOpts,
  async () => {
    const up = silentUpstream();
    const ferry = await startFerry(ferryConfig("HTTP2", up.port));
    const c = await RawH2.connect(ferry.port());
    try {
      await c.conn.write(INVALID_PREFACE);
      const { bytes, eof } = await readUntilIdle(c.conn, 1000);
      assertEquals(goAways(parseFrames(bytes)), [ErrorCode.PROTOCOL_ERROR]);
      assert(eof, "connection closed");
    } finally {
      c.close();
      await ferry.stop();
      up.close();
    }
  },
);

Deno.test(
  "h2spec http2/3.5/2 (codec_type AUTO, cleartext): a non-preface is HTTP/1.1, answered 400 and closed",
  itOpts,
  async () => {
    // h2spec reports this as a failure ("unexpected EOF"); Envoy's AUTO does the same: no preface, so HTTP/1.1.
    const up = silentUpstream();
    const ferry = await startFerry(ferryConfig("AUTO", up.port));
    const c = await RawH2.connect(ferry.port());
    try {
      await c.conn.write(INVALID_PREFACE);
      const { bytes, eof } = await readUntilIdle(c.conn, 1000);
      const text = new TextDecoder().decode(bytes);
      assert(text.startsWith("HTTP/1.1 400 "), text);
      assert(eof, "connection closed");
    } finally {
      c.close();
      await ferry.stop();
      up.close();
    }
  },
);

Deno.test("h2spec -S http2/8.1.2.6/2: DATA beyond content-length is RST_STREAM(PROTOCOL_ERROR)", itOpts, async () => {
  // The frames arrive together and the upstream never answers: Ferry sees the excess DATA on an open stream.
  const up = silentUpstream();
  const ferry = await startFerry(ferryConfig("HTTP2", up.port));
  const c = await RawH2.connect(ferry.port());
  try {
    await c.handshake();
    await c.write((o) => {
      c.post(o, 1, 1);
      putData(o, 1, new TextEncoder().encode("test"), false);
      putData(o, 1, new TextEncoder().encode("test"), true);
    });
    const { bytes } = await readUntilIdle(c.conn, 500);
    const frames = parseFrames(bytes);
    assertEquals(rsts(frames, 1), [ErrorCode.PROTOCOL_ERROR]);
    assertEquals(goAways(frames), []);
  } finally {
    c.close();
    await ferry.stop();
    up.close();
  }
});

Deno.test(
  "h2spec -S http2/8.1.2.6/2, late DATA: after a complete response, RST_STREAM(NO_ERROR) and the DATA is ignored",
  itOpts,
  async () => {
    // The order in which h2spec fails now and then: the upstream answers before the DATA frames are read. RFC 9113
    // §8.1: a server that has sent a complete response may end the request with RST_STREAM(NO_ERROR); frames
    // that arrive on the stream afterwards are ignored (§5.1), so the content-length check never runs.
    const up = eagerUpstream();
    const ferry = await startFerry(ferryConfig("HTTP2", up.port));
    const c = await RawH2.connect(ferry.port());
    try {
      await c.handshake();
      await c.write((o) => c.post(o, 1, 1));
      const first = parseFrames((await readUntilIdle(c.conn, 500)).bytes);
      const resp = first.filter((f) => f.id === 1 && (f.type === FrameType.HEADERS || f.type === FrameType.DATA));
      assert(resp.length > 0 && (resp.at(-1)!.flags & Flag.END_STREAM) !== 0, "a complete response on stream 1");
      assertEquals(rsts(first, 1), [ErrorCode.NO_ERROR]);

      await c.write((o) => {
        putData(o, 1, new TextEncoder().encode("test"), false);
        putData(o, 1, new TextEncoder().encode("test"), true);
      });
      const { bytes, eof } = await readUntilIdle(c.conn, 500);
      const late = parseFrames(bytes);
      assertEquals(rsts(late, 1), []);
      assertEquals(goAways(late), []);
      assert(!eof, "connection stays open");
    } finally {
      c.close();
      await ferry.stop();
      up.close();
    }
  },
);
