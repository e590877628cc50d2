/**
 * The `auto` codec: HTTP/1.1 or HTTP/2 on the same listener, as Envoy's `codec_type: AUTO`.
 *
 * The protocol is chosen once per connection:
 * - by ALPN when TLS negotiated one (`h2` or `http/1.1`), with no look at the bytes;
 * - otherwise by the first bytes: the HTTP/2 connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, RFC 9113
 *   §3.4, "prior knowledge") selects HTTP/2, anything else HTTP/1.1. A prefix of the preface is held until the
 *   next bytes decide; the first byte that differs decides for HTTP/1.1 (no HTTP/1 method starts with `PRI *`).
 *
 * Until it is decided the codec is idle, keeps the connection alive and has no protocol (`""`); afterwards every
 * call goes to the chosen codec. Upstream (`createClient`) it is HTTP/1.1: a cluster names its protocol.
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  CodecFactory,
  CodecOptions,
  ServerCodecCallbacks,
  ServerConnectionCodec,
  WriteFn,
} from "../lib/api/codec.ts";
import type { CodecError } from "../lib/api/errors.ts";

/** The HTTP/2 client connection preface, RFC 9113 §3.4. */
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A server codec and the optional parts the connection manager calls when present. */
type InnerCodec = ServerConnectionCodec & { destroy?(): void; readonly multiplexed?: boolean };

/** Chooses HTTP/1.1 or HTTP/2 for one connection; see the module doc. */
export class DetectingServerCodec implements ServerConnectionCodec {
  #inner: InnerCodec | undefined;
  #held: Uint8Array | undefined;
  #shutdown = false;
  readonly #make: (h2: boolean) => InnerCodec;

  /** `make(true)` builds the HTTP/2 codec, `make(false)` the HTTP/1.1 one; called once, when decided. */
  constructor(make: (h2: boolean) => InnerCodec) {
    this.#make = make;
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
    const n = Math.min(have.length, PREFACE.length);
    let h2 = true;
    for (let i = 0; i < n; i++) {
      if (have[i] !== PREFACE[i]) {
        h2 = false;
        break;
      }
    }
    if (h2 && have.length < PREFACE.length) {
      // Copied: the caller reuses its read buffer.
      this.#held = held === undefined ? data.slice() : have;
      return;
    }
    this.#held = undefined;
    this.#choose(h2).dispatch(have);
  }

  /** Decides now (ALPN, or the first bytes). */
  #choose(h2: boolean): InnerCodec {
    const inner = this.#make(h2);
    this.#inner = inner;
    if (this.#shutdown) inner.shutdownNotice();
    return inner;
  }

  onEof(): void {
    this.#inner?.onEof();
  }

  sendProtocolError(err: CodecError): void {
    // Undecided means nothing was parsed, so no error can come from here; answer as HTTP/1 would.
    (this.#inner ?? this.#choose(false)).sendProtocolError(err);
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
      return new DetectingServerCodec((h2) => (h2 ? http2 : http1).createServer(write, callbacks, options));
    },
    createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks) {
      return http1.createClient(write, options, callbacks);
    },
  };
}
