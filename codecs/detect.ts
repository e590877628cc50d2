/**
 * Protocol detection on the first bytes of a connection.
 *
 * The `auto` codec: HTTP/1.1 or HTTP/2 on the same listener, as Envoy's `codec_type: AUTO`. The protocol is chosen
 * once per connection:
 * - by ALPN when TLS negotiated one (`h2` or `http/1.1`), with no look at the bytes;
 * - otherwise by the first bytes: the HTTP/2 connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, RFC 9113
 *   §3.4, "prior knowledge") selects HTTP/2, anything else HTTP/1.1. A prefix of the preface is held until the
 *   next bytes decide; the first byte that differs decides for HTTP/1.1 (no HTTP/1 method starts with `PRI *`).
 *
 * The same machinery takes any list of candidates, each a codec with a `detect(bytes)` predicate (true: this
 * protocol; false: not; undefined: more bytes needed), tried in order, then an optional fallback:
 * {@link createDetectingCodecFactory}. {@link RPC_DETECTORS} holds the RPC magics by codec name — Bolt (protocol
 * code 0x01/0x02 and a request type) and Dubbo (magic 0xdabb) — so that a listener can take Bolt, Dubbo, HTTP/2 and
 * HTTP/1.1 on one port (the RPC proxy's `protocol: AUTO`); a codec named there is used as soon as it is registered.
 *
 * Until it is decided the codec is idle, keeps the connection alive and has no protocol (`""`); afterwards every
 * call goes to the chosen codec. Upstream (`createClient`) it is the fallback (HTTP/1.1): a cluster names its
 * protocol.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  CodecFactory,
  CodecOptions,
  LocalReplyMapper,
  ServerCodecCallbacks,
  ServerConnectionCodec,
  StreamDecoder,
  StreamEncoder,
  WriteFn,
} from "../lib/api/codec.ts";
import { CodecError } from "../lib/api/errors.ts";
import type { HeaderMap } from "../lib/api/headers.ts";
import { httpLocalReply } from "../lib/stream/local_reply.ts";

/** The HTTP/2 client connection preface, RFC 9113 §3.4. */
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A server codec and the optional parts the connection manager calls when present. */
type InnerCodec = ServerConnectionCodec & { destroy?(): void; readonly multiplexed?: boolean };

/** A detection predicate: true (this protocol), false (not), undefined (more bytes needed). */
export type DetectFn = (bytes: Uint8Array) => boolean | undefined;

/** True once `bytes` start with the HTTP/2 preface; undefined while they are a prefix of it. */
export function detectHttp2Preface(bytes: Uint8Array): boolean | undefined {
  const n = Math.min(bytes.length, PREFACE.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== PREFACE[i]) return false;
  return bytes.length < PREFACE.length ? undefined : true;
}

/** Bolt: protocol code 0x01 (type at byte 1) or 0x02 (type at byte 2), and a request or oneway type. */
export function detectBolt(bytes: Uint8Array): boolean | undefined {
  if (bytes.length === 0) return undefined;
  const p = bytes[0];
  if (p !== 1 && p !== 2) return false;
  const t = bytes[p];
  if (t === undefined) return undefined;
  return t === 1 || t === 2;
}

/** Dubbo: the magic 0xdabb, then a request flag. */
export function detectDubbo(bytes: Uint8Array): boolean | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== 0xda) return false;
  if (bytes.length < 2) return undefined;
  if (bytes[1] !== 0xbb) return false;
  if (bytes.length < 3) return undefined;
  return (bytes[2]! & 0x80) !== 0;
}

/** The RPC protocols' detection by codec name; the RPC proxy's `AUTO` tries those registered. */
export const RPC_DETECTORS: Readonly<Record<string, DetectFn>> = { bolt: detectBolt, dubbo: detectDubbo };

/** Chooses a codec for one connection by its first bytes; see the module doc. */
export class DetectingServerCodec implements ServerConnectionCodec {
  #inner: InnerCodec | undefined;
  #held: Uint8Array | undefined;
  #shutdown = false;
  readonly #detect: readonly DetectFn[];
  readonly #make: (index: number) => InnerCodec | undefined;

  /**
   * Either `make(h2)` (HTTP/2 on the preface, else HTTP/1.1: `make(true)` builds the HTTP/2 codec, `make(false)` the
   * HTTP/1.1 one), or `detect` predicates and `make(i)` building the codec of the first that says true, with
   * `make(-1)` the fallback when all say false (undefined: no fallback, the bytes are a protocol error). `make` is
   * called once, when decided.
   */
  constructor(make: (h2: boolean) => InnerCodec);
  constructor(detect: readonly DetectFn[], make: (index: number) => InnerCodec | undefined);
  constructor(
    a: ((h2: boolean) => InnerCodec) | readonly DetectFn[],
    b?: (index: number) => InnerCodec | undefined,
  ) {
    if (typeof a === "function") {
      this.#detect = [detectHttp2Preface];
      const make = (i: number) => a(i === 0); // not assigned straight: see tests/gc_hygiene_test.ts
      this.#make = make;
    } else {
      this.#detect = a;
      this.#make = b!;
    }
  }

  /** The chosen codec, or undefined while undecided. */
  get chosen(): ServerConnectionCodec | undefined {
    return this.#inner;
  }

  /** "" until decided, then the chosen codec's protocol. */
  get protocol(): string {
    return this.#inner?.protocol ?? "";
  }

  /** True once HTTP/2 was chosen: streams are independent and a dispatch error is a connection error. */
  get multiplexed(): boolean {
    return this.#inner?.multiplexed ?? false;
  }

  dispatch(data: Uint8Array): void {
    const inner = this.#inner;
    if (inner !== undefined) return inner.dispatch(data);
    const held = this.#held;
    const have = held === undefined ? data : concat(held, data);
    let chosen = -1;
    let wait = false;
    for (let i = 0; i < this.#detect.length; i++) {
      const r = this.#detect[i]!(have);
      if (r === true) {
        chosen = i;
        break;
      }
      if (r === undefined) wait = true;
    }
    if (chosen < 0 && wait) {
      // Copied: the caller reuses its read buffer.
      this.#held = held === undefined ? data.slice() : have;
      return;
    }
    this.#held = undefined;
    const c = this.#choose(chosen);
    if (c === undefined) throw new CodecError("Protocol", "unknown protocol: no codec matches the first bytes");
    c.dispatch(have);
  }

  /** Decides now (ALPN, or the first bytes). */
  #choose(index: number): InnerCodec | undefined {
    const inner = this.#make(index);
    this.#inner = inner;
    if (inner !== undefined && this.#shutdown) inner.shutdownNotice();
    return inner;
  }

  onEof(): void {
    this.#inner?.onEof();
  }

  sendProtocolError(err: CodecError): void {
    // Undecided means nothing was parsed, so no error can come from here; answer as HTTP/1 would.
    (this.#inner ?? this.#choose(-1))?.sendProtocolError(err);
  }

  get keepAlive(): boolean {
    return this.#inner?.keepAlive ?? !this.#shutdown;
  }

  get idle(): boolean {
    return this.#inner?.idle ?? true;
  }

  shutdownNotice(): void {
    this.#shutdown = true;
    this.#inner?.shutdownNotice();
  }

  onConnectionClose(): void {
    this.#inner?.onConnectionClose?.();
  }

  onAboveWriteBufferHighWatermark(): void {
    this.#inner?.onAboveWriteBufferHighWatermark?.();
  }

  onBelowWriteBufferLowWatermark(): void {
    this.#inner?.onBelowWriteBufferLowWatermark?.();
  }

  /** Stops parsing (lingering close): forwarded to the chosen codec, held bytes dropped. */
  destroy(): void {
    this.#held = undefined;
    this.#inner?.destroy?.();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The `auto` codec factory over an HTTP/1.1 and an HTTP/2 codec factory (both from the codec registry, so a
 * replaced codec is honoured). `options.alpn` is the connection's negotiated ALPN protocol, if any.
 */
export function createDetectCodecFactory(http1: CodecFactory, http2: CodecFactory): CodecFactory {
  return {
    name: "auto",
    poolMode: http1.poolMode,
    createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): ServerConnectionCodec {
      const alpn = options?.alpn;
      if (alpn === "h2") return http2.createServer(write, callbacks, options);
      if (alpn === "http/1.1") return http1.createServer(write, callbacks, options);
      return new DetectingServerCodec((h2: boolean) => (h2 ? http2 : http1).createServer(write, callbacks, options));
    },
    createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks) {
      return http1.createClient(write, options, callbacks);
    },
  };
}

/** One candidate of {@link createDetectingCodecFactory}: a codec and the predicate that recognises it. */
export interface DetectCandidate {
  readonly codec: CodecFactory;
  readonly detect: DetectFn;
}

/** Wraps a stream decoder so that its request headers remember the codec whose local replies answer them. */
function tagRequests(
  callbacks: ServerCodecCallbacks,
  mapper: LocalReplyMapper,
  tags: WeakMap<HeaderMap, LocalReplyMapper>,
) {
  // Optional callbacks some codecs use (HTTP/1's errors in held-back input) are forwarded as they are.
  const extra = callbacks as ServerCodecCallbacks & { onDispatchError?(err: unknown): void };
  return {
    onDispatchError: (err: unknown) => extra.onDispatchError?.(err),
    newStream(encoder: StreamEncoder): StreamDecoder {
      const d = callbacks.newStream(encoder);
      const out: StreamDecoder = {
        decodeHeaders(h, end) {
          tags.set(h, mapper);
          d.decodeHeaders(h, end);
        },
        decodeData: (b, end) => d.decodeData(b, end),
        decodeTrailers: (t) => d.decodeTrailers(t),
        onReset: (r, detail) => d.onReset?.(r, detail),
      };
      return out;
    },
  } satisfies ServerCodecCallbacks & { onDispatchError(err: unknown): void };
}

/**
 * A detecting codec factory over `candidates` (tried in order) and an optional `fallback` (used when every
 * candidate says no; without one, such bytes are a protocol error). Local replies follow the codec that decoded
 * the request (RPC codecs answer in their protocol), else the fallback's, else the connection manager's HTTP
 * mapping. Upstream (`createClient`) it is the fallback, or the first candidate.
 */
export function createDetectingCodecFactory(
  name: string,
  candidates: readonly DetectCandidate[],
  fallback?: CodecFactory,
): CodecFactory {
  const detect = candidates.map((c) => c.detect);
  const tags = new WeakMap<HeaderMap, LocalReplyMapper>();
  const upstream = fallback ?? candidates[0]?.codec;
  if (upstream === undefined) throw new Error(`codec "${name}": no candidates`);
  const fallbackReply = fallback?.localReply;
  const anyReply = candidates.some((c) => c.codec.localReply !== undefined);
  const factory: CodecFactory = {
    name,
    poolMode: upstream.poolMode,
    createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): ServerConnectionCodec {
      return new DetectingServerCodec(detect, (i) => {
        const codec = i >= 0 ? candidates[i]!.codec : fallback;
        if (codec === undefined) return undefined;
        const lr = codec.localReply;
        const cb = lr !== undefined && anyReply ? tagRequests(callbacks, lr, tags) : callbacks;
        return codec.createServer(write, cb, options);
      });
    },
    createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks) {
      return upstream.createClient(write, options, callbacks);
    },
  };
  if (anyReply || fallbackReply !== undefined) {
    return {
      ...factory,
      localReply: (reply, request) => {
        const m = (request !== undefined ? tags.get(request) : undefined) ?? fallbackReply;
        return m !== undefined ? m(reply, request) : httpLocalReply(reply, request);
      },
    };
  }
  return factory;
}
