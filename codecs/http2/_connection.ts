/**
 * The connection core shared by the HTTP/2 server and client codecs: frame reading, stream states (RFC 9113
 * §5.1), flow control in both directions, SETTINGS/PING/GOAWAY, flood accounting and output batching.
 *
 * Output: every frame goes into one {@link OutBuf}; it is written once when the outermost call into the codec
 * returns (a `dispatch`, an encoder call, a timer), so the frames produced for one input chunk leave in one write.
 *
 * Receive flow control: the connection window is replenished as DATA arrives (the bytes are then held by a stream
 * at most up to its own window, so memory stays bounded by streams × stream window); a stream's window is
 * replenished only as its data is delivered, so `readDisable(true)` on one stream withholds that stream's
 * WINDOW_UPDATEs and stalls no other stream.
 *
 * Send flow control: data beyond a stream's or the connection's window, or written while the socket is above its
 * high watermark, waits in the stream's queue (a copy); the stream reports its own watermarks from the queue's
 * size against `bufferLimit`. Queued streams are served frame by frame in turn when a window opens.
 *
 * @module
 */
import type {
  CodecOptions,
  Http2CounterName,
  Http2Stats,
  Stream,
  StreamCallbacks,
  StreamDecoder,
  StreamEncoder,
  StreamResetReason,
  WriteFn,
} from "../../lib/api/codec.ts";
import type { CodecErrorCode } from "../../lib/api/errors.ts";
import { HeaderMap, requestedUpgrade } from "../../lib/api/headers.ts";
import { Http2CodecError } from "./error.ts";
import {
  decodeRequest,
  decodeResponse,
  decodeTrailers,
  encodeRequest,
  encodeResponse,
  encodeTrailers,
  h1Upgrade,
  h2Upgrade,
  lastContentLength,
  lastRequestMethod,
  lastRequestProtocol,
} from "./_headers.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  errorCodeName,
  Flag,
  FRAME_HEADER_LENGTH,
  type FrameHeader,
  FrameType,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  OutBuf,
  parseFrameHeader,
  PREFACE,
  putData,
  putGoAway,
  putHeaderBlock,
  putPing,
  putRstStream,
  putSettings,
  putSettingsAck,
  putWindowUpdate,
  readU31,
  readU32,
  SettingId,
} from "./frames.ts";
import { HeaderListTooLargeError, HpackDecoder, HpackEncoder } from "./hpack.ts";
import { schedule, type WheelTimer } from "../../lib/network/timer_wheel.ts";

/** Ferry's HTTP/2 defaults (see `Http2Options`). */
export const H2_DEFAULTS = {
  maxConcurrentStreams: 100,
  initialStreamWindowSize: 65535,
  initialConnectionWindowSize: 1024 * 1024,
  hpackTableSize: 4096,
  maxOutboundFrames: 10000,
  maxOutboundControlFrames: 1000,
  maxConsecutiveInboundFramesWithEmptyPayload: 1,
  maxInboundPriorityFramesPerStream: 100,
  maxInboundWindowUpdateFramesPerDataFrameSent: 10,
  bufferLimit: 1024 * 1024,
} as const;

/** Streams opened before the rapid-reset rule applies, and the share of premature resets that trips it. */
const PREMATURE_RESET_MIN_STREAMS = 100;
/** CONTINUATION frames allowed in one header block. */
const MAX_CONTINUATIONS = 64;
/** How many locally reset stream ids are remembered, so that frames the peer sent before it saw the reset are ignored. */
const RECENT_RESETS = 256;
/** How long the graceful GOAWAY waits for the PING ack before the final GOAWAY. */
const DRAIN_PING_TIMEOUT_MS = 1000;

const EMPTY = new Uint8Array(0);
const SHUTDOWN_PING = new Uint8Array([0x46, 0x45, 0x52, 0x52, 0x59, 0x47, 0x41, 0x00]); // "FERRYGA\0"
const KEEPALIVE_PING = new Uint8Array([0x46, 0x45, 0x52, 0x52, 0x59, 0x4b, 0x41, 0x00]); // "FERRYKA\0"
const textEncoder = new TextEncoder();

/** A connection error inside frame handling; `dispatch` turns it into GOAWAY + {@link Http2CodecError}. */
class ConnError extends Error {
  constructor(
    readonly h2: number,
    message: string,
    readonly codecCode: CodecErrorCode = "Protocol",
    readonly status = 400,
  ) {
    super(message);
  }
}

function connError(code: number, message: string, codecCode?: CodecErrorCode, status?: number): never {
  throw new ConnError(code, message, codecCode, status);
}

interface Friend {
  encodeHeaders(c: Http2Connection, s: H2Stream, h: HeaderMap, end: boolean, informational: boolean): void;
  encodeData(c: Http2Connection, s: H2Stream, d: Uint8Array, end: boolean): void;
  encodeTrailers(c: Http2Connection, s: H2Stream, t: HeaderMap): void;
  reset(c: Http2Connection, s: H2Stream, reason: StreamResetReason): void;
  readDisable(c: Http2Connection, s: H2Stream, disable: boolean): void;
  bufferLimit(c: Http2Connection): number;
}
let friend: Friend;

/**
 * One HTTP/2 stream: its encoder (`StreamEncoder`) and transport side (`Stream`) in one object, plus the state the
 * connection keeps for it. The public fields are the codec's own bookkeeping; callers use only the
 * `StreamEncoder`/`Stream` members. Calls after the stream ended are ignored.
 */
export class H2Stream implements StreamEncoder, Stream {
  /** Always "HTTP/2". */
  readonly protocol = "HTTP/2";
  /** The stream id (client streams: 0 until the request headers are sent). */
  id = 0;
  /** Where decoded parts go. */
  decoder: StreamDecoder | null;
  /** Send window (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** What the peer may still send on the stream. */
  recvWindow: number;
  /** Bytes delivered but not yet credited back with a WINDOW_UPDATE. */
  unacked = 0;
  /** Queued output (copies) and the offset into its first chunk. */
  queue: Uint8Array[] = [];
  queueOff = 0;
  queued = 0;
  /** The encoder side ended (END_STREAM queued, with data or trailers). */
  endQueued = false;
  /** Trailers waiting behind queued data. */
  pendingTrailers: HeaderMap | null = null;
  /** END_STREAM sent on the wire. */
  localEnded = false;
  /** END_STREAM received. */
  remoteEnded = false;
  /** Final (non-1xx) headers received (client) / request headers received (server). */
  gotHeaders = false;
  /** content-length of the incoming message (-1: none) and DATA bytes received. */
  contentLength = -1;
  received = 0;
  /** readDisable nesting and the parts held meanwhile (copies); `heldEnd` marks END_STREAM after the last. */
  disabled = 0;
  held: (Uint8Array | HeaderMap)[] | null = null;
  heldEnd = false;
  deliverScheduled = false;
  /** Stream callbacks (watermarks, reset). */
  callbacks: StreamCallbacks[] | null = null;
  aboveHigh = false;
  closed = false;
  /** Client: the request was a HEAD or CONNECT (no content-length check on the response). */
  noBodyCheck = false;
  /**
   * The stream is a tunnel by extended CONNECT (RFC 8441) with this `:protocol` (e.g. `websocket`). Server: the
   * request was one, and an HTTP/1.1-style `101` response goes out as `200`. Client: an HTTP/1.1 upgrade request
   * went out as one, and its `200` comes back as `101` with `upgrade` (Envoy's transformUpgrade* helpers).
   */
  upgrade: string | null = null;
  /** Client: an extended CONNECT held until the peer's first SETTINGS say whether it accepts one (RFC 8441 §3). */
  deferred: { readonly headers: HeaderMap; readonly endStream: boolean } | null = null;
  #headersSent = false;
  readonly #conn: Http2Connection;

  /** Created by the codec only. */
  constructor(conn: Http2Connection, decoder: StreamDecoder | null, sendWindow: number, recvWindow: number) {
    this.#conn = conn;
    this.decoder = decoder;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** True once the (final) headers were encoded. */
  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** The transport side is this object. */
  get stream(): Stream {
    return this;
  }

  /** Writes a 1xx response (server only; ignored after the final headers). */
  encode1xxHeaders(headers: HeaderMap): void {
    if (this.#headersSent) return;
    friend.encodeHeaders(this.#conn, this, headers, false, true);
  }

  /** Writes the message head (HEADERS + CONTINUATION); once. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    friend.encodeHeaders(this.#conn, this, headers, endStream, false);
  }

  /** Writes body bytes as DATA frames as the windows allow; the rest waits (copied) in the stream's queue. */
  encodeData(data: Uint8Array, endStream: boolean): void {
    friend.encodeData(this.#conn, this, data, endStream);
  }

  /** Writes trailers (HEADERS with END_STREAM) behind any queued data. */
  encodeTrailers(trailers: HeaderMap): void {
    friend.encodeTrailers(this.#conn, this, trailers);
  }

  /**
   * Resets the stream: RST_STREAM (CANCEL; NO_ERROR once our side ended; PROTOCOL_ERROR for "protocol-error";
   * REFUSED_STREAM for "overflow"/"remote-refused-stream"). The stream's callbacks get `onResetStream`; the decoder
   * is not told (the caller reset it).
   */
  resetStream(reason: StreamResetReason): void {
    friend.reset(this.#conn, this, reason);
  }

  /** Stops (true) or resumes (false) delivering this stream's data and withholds its WINDOW_UPDATEs; nests. */
  readDisable(disable: boolean): void {
    friend.readDisable(this.#conn, this, disable);
  }

  /** Adds watermark/reset callbacks (dropped when the stream ends). */
  addCallbacks(callbacks: StreamCallbacks): void {
    if (this.closed) return;
    (this.callbacks ??= []).push(callbacks);
  }

  /** Removes callbacks added with {@link addCallbacks}. */
  removeCallbacks(callbacks: StreamCallbacks): void {
    const cbs = this.callbacks;
    if (cbs === null) return;
    const i = cbs.indexOf(callbacks);
    if (i >= 0) cbs.splice(i, 1);
  }

  /** Queued output above which the stream reports its high watermark. */
  get bufferLimit(): number {
    return friend.bufferLimit(this.#conn);
  }
}

/** What the concrete codecs hand the core. */
export interface CoreInit {
  /** Server side (true) or client side. */
  readonly server: boolean;
  /** Server: creates the decoder of a new request stream. */
  readonly newStream?: (encoder: H2Stream) => StreamDecoder;
  /** Client: the peer sent GOAWAY. */
  readonly onGoAway?: (lastStreamId: number) => void;
  /** Client: the stream capacity changed. */
  readonly onCapacityChanged?: () => void;
}

/**
 * The HTTP/2 connection core; {@link Http2ServerCodec} and {@link Http2ClientCodec} extend it. Not for direct use.
 */
export class Http2Connection {
  readonly #write: WriteFn;
  readonly #init: CoreInit;
  readonly #server: boolean;
  readonly #out = new OutBuf();
  #depth = 0;
  #flushing = false;
  // Our settings and limits.
  readonly #maxStreams: number;
  readonly #initialWindow: number;
  readonly #connWindowTarget: number;
  readonly #maxListSize: number;
  readonly #maxCount: number;
  readonly #maxBlock: number;
  readonly #bufferLimit: number;
  readonly #allowConnect: boolean;
  readonly #maxOutFrames: number;
  readonly #maxOutControl: number;
  readonly #maxEmpty: number;
  readonly #maxPriorityPerStream: number;
  readonly #maxWuPerData: number;
  readonly #stats: Http2Stats | undefined;
  readonly #closeConnection: ((reason: string) => void) | undefined;
  readonly #keepalive: { readonly intervalMs: number; readonly timeoutMs: number } | undefined;
  /** `:scheme` for requests without one (server) / the scheme we send (client). */
  protected readonly scheme: string;
  // Peer settings.
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;
  #peerMaxStreams = -1;
  #peerConnectProtocol = false;
  #gotSettings = false;
  // Windows.
  #connSend = DEFAULT_WINDOW;
  #connRecv = DEFAULT_WINDOW;
  #connUnacked = 0;
  // Streams.
  readonly #streams = new Map<number, H2Stream>();
  readonly #pending = new Set<H2Stream>();
  /** Client: extended CONNECT streams waiting for the peer's first SETTINGS. */
  #awaitingSettings: H2Stream[] = [];
  #peerSettingsSeen = false;
  #lastPeerId = 0;
  #nextLocalId = 1;
  #active = 0;
  readonly #recentResets = new Int32Array(RECENT_RESETS);
  #recentIdx = 0;
  // Reader.
  #prefaceLeft: number;
  readonly #fh: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 };
  #partial: Uint8Array | null = null;
  #partialLen = 0;
  #partialNeed = 0;
  // Header block in progress (HEADERS without END_HEADERS, then CONTINUATION).
  #hbStream = 0;
  #hbBuf: Uint8Array | null = null;
  #hbLen = 0;
  #hbEnd = false;
  #hbCount = 0;
  #hbBadPriority = false;
  readonly #dec: HpackDecoder;
  readonly #enc: HpackEncoder;
  // GOAWAY.
  #drainStarted = false;
  #goAwayFinal = false;
  #goAwayLastId = MAX_WINDOW;
  #goAwayReceived = false;
  #errorGoAwaySent = false;
  #keepAliveFlag = true;
  // Floods.
  #socketBlocked = false;
  #outFramesBlocked = 0;
  #outControlBlocked = 0;
  #flood: Http2CounterName | null = null;
  #emptyFrames = 0;
  #priorityFrames = 0;
  #windowUpdates = 0;
  #dataFramesSent = 0;
  #streamsOpened = 0;
  #prematureResets = 0;
  #refused = 0;
  // Timers and life.
  #dead = false;
  #closed = false;
  #drainTimer: WheelTimer | undefined;
  #kaInterval: ReturnType<typeof setInterval> | undefined;
  #kaTimeout: WheelTimer | undefined;
  #kaOutstanding = false;
  #inDispatch = false;
  /** The peer half-closed: nothing more is read, but responses under way may finish. */
  #inputDone = false;

  constructor(write: WriteFn, init: CoreInit, options: CodecOptions | undefined) {
    this.#write = write;
    this.#init = init;
    this.#server = init.server;
    const h2 = options?.http2 ?? {};
    this.#maxStreams = h2.maxConcurrentStreams ?? H2_DEFAULTS.maxConcurrentStreams;
    this.#initialWindow = clamp(h2.initialStreamWindowSize ?? H2_DEFAULTS.initialStreamWindowSize, 1, MAX_WINDOW);
    this.#connWindowTarget = clamp(
      h2.initialConnectionWindowSize ?? H2_DEFAULTS.initialConnectionWindowSize,
      DEFAULT_WINDOW,
      MAX_WINDOW,
    );
    const tableSize = h2.hpackTableSize ?? H2_DEFAULTS.hpackTableSize;
    this.#maxListSize = (options?.maxHeadersKb ?? 60) * 1024;
    // Pseudo-headers come on top of the regular fields that maxHeadersCount limits.
    this.#maxCount = (options?.maxHeadersCount ?? 100) + 6;
    this.#maxBlock = 2 * this.#maxListSize + 16384;
    this.#bufferLimit = options?.bufferLimit || H2_DEFAULTS.bufferLimit;
    this.#allowConnect = h2.allowConnect ?? false;
    this.#maxOutFrames = h2.maxOutboundFrames ?? H2_DEFAULTS.maxOutboundFrames;
    this.#maxOutControl = h2.maxOutboundControlFrames ?? H2_DEFAULTS.maxOutboundControlFrames;
    this.#maxEmpty = h2.maxConsecutiveInboundFramesWithEmptyPayload ??
      H2_DEFAULTS.maxConsecutiveInboundFramesWithEmptyPayload;
    this.#maxPriorityPerStream = h2.maxInboundPriorityFramesPerStream ?? H2_DEFAULTS.maxInboundPriorityFramesPerStream;
    this.#maxWuPerData = h2.maxInboundWindowUpdateFramesPerDataFrameSent ??
      H2_DEFAULTS.maxInboundWindowUpdateFramesPerDataFrameSent;
    this.#stats = options?.http2Stats;
    this.#closeConnection = options?.closeConnection;
    this.#keepalive = h2.connectionKeepalive;
    this.scheme = options?.secure ? "https" : "http";
    this.#dec = new HpackDecoder(tableSize);
    this.#enc = new HpackEncoder();
    this.#prefaceLeft = this.#server ? PREFACE.length : 0;

    const settings: number[] = [];
    if (!this.#server) {
      settings.push(SettingId.ENABLE_PUSH, 0);
    } else {
      settings.push(SettingId.MAX_CONCURRENT_STREAMS, this.#maxStreams);
    }
    settings.push(
      SettingId.INITIAL_WINDOW_SIZE,
      this.#initialWindow,
      SettingId.HEADER_TABLE_SIZE,
      tableSize,
      SettingId.MAX_FRAME_SIZE,
      DEFAULT_MAX_FRAME_SIZE,
      SettingId.MAX_HEADER_LIST_SIZE,
      this.#maxListSize,
    );
    if (this.#server && this.#allowConnect) settings.push(SettingId.ENABLE_CONNECT_PROTOCOL, 1);
    this.#depth++;
    if (!this.#server) {
      this.#out.ensure(PREFACE.length);
      this.#out.buf.set(PREFACE, 0);
      this.#out.len = PREFACE.length;
    }
    putSettings(this.#out, settings);
    if (this.#connWindowTarget > DEFAULT_WINDOW) {
      putWindowUpdate(this.#out, 0, this.#connWindowTarget - DEFAULT_WINDOW);
      this.#connRecv = this.#connWindowTarget;
    }
    this.#leave();
    if (this.#keepalive !== undefined && this.#keepalive.intervalMs > 0) {
      this.#kaInterval = setInterval(() => this.#keepalivePing(), this.#keepalive.intervalMs);
    }
  }

  // ---------------------------------------------------------------- shared surface for the concrete codecs

  /** Feeds bytes; see the codec module contract. Throws {@link Http2CodecError} on a connection error. */
  dispatch(data: Uint8Array): void {
    if (this.#dead || this.#inputDone) return;
    this.#depth++;
    this.#inDispatch = true;
    try {
      this.#parse(data);
      if (this.#flood !== null) this.#floodError();
    } catch (e) {
      if (e instanceof ConnError) throw this.#connectionError(e);
      throw e;
    } finally {
      this.#inDispatch = false;
      this.#leave();
    }
  }

  /** Writes GOAWAY for `err` (its `http2Code` if it is an {@link Http2CodecError}), unless one was sent for it. */
  sendProtocolError(err: Error): void {
    if (this.#errorGoAwaySent || this.#closed) return;
    const code = err instanceof Http2CodecError ? err.http2Code : ErrorCode.PROTOCOL_ERROR;
    this.#depth++;
    this.#sendGoAway(this.#lastPeerId, code, err.message);
    this.#errorGoAwaySent = true;
    this.#dead = true;
    this.#leave();
  }

  /** The connection is gone: open streams are reset ("connection-termination"), timers stop. */
  onConnectionClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dead = true;
    this.#clearTimers();
    this.#resetAll("connection-termination", "connection closed");
    this.#out.len = 0;
    this.#partial = null;
    this.#hbBuf = null;
  }

  /** Same as {@link onConnectionClose} (the connection manager's name for it). */
  destroy(): void {
    this.onConnectionClose();
  }

  /** The socket's output passed its high watermark: DATA waits in the streams' queues until it drains. */
  onAboveWriteBufferHighWatermark(): void {
    this.#socketBlocked = true;
  }

  /** The socket's output drained: flood counters start over and queued DATA goes out. */
  onBelowWriteBufferLowWatermark(): void {
    this.#socketBlocked = false;
    this.#outFramesBlocked = 0;
    this.#outControlBlocked = 0;
    if (this.#pending.size === 0 || this.#dead) return;
    this.#depth++;
    this.#servePending();
    this.#leave();
  }

  /** Streams open on the connection. */
  protected get openStreams(): number {
    return this.#streams.size;
  }

  /** Client: streams created and not yet ended. */
  protected get activeCount(): number {
    return this.#active;
  }

  /** False once a GOAWAY was sent or received, or the connection failed. */
  protected get keepAliveFlag(): boolean {
    return this.#keepAliveFlag && !this.#dead && !this.#goAwayReceived;
  }

  /** Client: the current stream capacity (the peer's limit capped by ours; 100 until the peer says). */
  protected get capacity(): number {
    const peer = this.#peerMaxStreams < 0 ? Math.min(100, this.#maxStreams) : this.#peerMaxStreams;
    return Math.min(peer, this.#maxStreams);
  }

  /** True once the connection failed or closed. */
  protected get dead(): boolean {
    return this.#dead;
  }

  /** Client: a new stream (its id is assigned when its headers are sent). */
  protected createClientStream(decoder: StreamDecoder): H2Stream {
    const s = new H2Stream(this, decoder, this.#peerInitialWindow, this.#initialWindow);
    this.#active++;
    return s;
  }

  /** Server: graceful GOAWAY, step one (GOAWAY 2^31-1 + PING); step two on the PING ack or after 1 s. */
  protected startDrain(): void {
    this.#keepAliveFlag = false;
    if (this.#drainStarted || this.#dead) return;
    this.#drainStarted = true;
    this.#depth++;
    this.#sendGoAway(MAX_WINDOW, ErrorCode.NO_ERROR);
    this.#putControl();
    putPing(this.#out, SHUTDOWN_PING, 0, false);
    this.#leave();
    this.#drainTimer = schedule(DRAIN_PING_TIMEOUT_MS, () => {
      this.#drainTimer = undefined;
      this.#depth++;
      this.#finalGoAway();
      this.#leave();
    });
  }

  /** Client: GOAWAY(NO_ERROR) before closing (the pool's drain). */
  protected sendGoAwayNoError(): void {
    if (this.#dead || this.#goAwayFinal) return;
    this.#depth++;
    this.#goAwayFinal = true;
    this.#keepAliveFlag = false;
    this.#sendGoAway(this.#lastPeerId, ErrorCode.NO_ERROR);
    this.#leave();
  }

  /** The peer half-closed: streams still receiving are reset, nothing more is read. */
  protected peerEnded(): void {
    if (this.#dead || this.#inputDone) return;
    this.#inputDone = true;
    this.#keepAliveFlag = false;
    this.#depth++;
    if (this.#server) {
      for (const s of [...this.#streams.values()]) {
        if (!s.remoteEnded) this.#closeStream(s, "connection-termination", "peer closed mid-stream", true);
      }
    } else {
      this.#dead = true;
      this.#resetAll("connection-termination", "upstream closed");
    }
    this.#leave();
  }

  // ---------------------------------------------------------------- output

  #leave(): void {
    if (--this.#depth > 0) return;
    if (this.#flood !== null && !this.#inDispatch && !this.#dead) {
      // Found outside dispatch (an encoder call, a timer): last words, then ask the owner to close.
      const name = this.#flood;
      this.#depth++;
      this.#sendGoAway(this.#lastPeerId, ErrorCode.ENHANCE_YOUR_CALM, name);
      this.#dead = true;
      this.#depth--;
      this.#flush();
      this.#closeConnection?.(`http2 ${name}`);
      return;
    }
    this.#flush();
  }

  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const out = this.#out;
      while (out.len > 0) {
        if (this.#closed) {
          out.len = 0;
          break;
        }
        const bytes = out.take();
        this.#write(bytes);
      }
      out.shrink();
    } finally {
      this.#flushing = false;
    }
  }

  /** Counts a frame about to be appended, for the outbound flood limits (only while the socket is blocked). */
  #putFrame(): void {
    if (!this.#socketBlocked) return;
    if (++this.#outFramesBlocked > this.#maxOutFrames && this.#flood === null) {
      this.#flood = "outbound_flood";
      this.#stats?.inc("outbound_flood");
    }
  }

  #putControl(): void {
    if (!this.#socketBlocked) return;
    this.#putFrame();
    if (++this.#outControlBlocked > this.#maxOutControl && this.#flood === null) {
      this.#flood = "outbound_control_flood";
      this.#stats?.inc("outbound_control_flood");
    }
  }

  #sendGoAway(lastId: number, code: number, debug?: string): void {
    this.#stats?.inc("goaway_sent");
    putGoAway(this.#out, lastId, code, debug ? textEncoder.encode(debug.slice(0, 256)) : undefined);
  }

  #sendRst(id: number, code: number): void {
    this.#putControl();
    this.#stats?.inc("tx_reset");
    putRstStream(this.#out, id, code);
    this.#recentResets[this.#recentIdx] = id;
    this.#recentIdx = (this.#recentIdx + 1) % RECENT_RESETS;
  }

  #recentlyReset(id: number): boolean {
    const r = this.#recentResets;
    for (let i = 0; i < RECENT_RESETS; i++) if (r[i] === id) return true;
    return false;
  }

  #finalGoAway(): void {
    if (this.#goAwayFinal || this.#dead) return;
    this.#goAwayFinal = true;
    this.#goAwayLastId = this.#lastPeerId;
    if (this.#drainTimer !== undefined) {
      this.#drainTimer.cancel();
      this.#drainTimer = undefined;
    }
    this.#sendGoAway(this.#lastPeerId, ErrorCode.NO_ERROR);
    // A drained server connection with nothing left in flight: its owner closes it now (no stream end will).
    if (this.#server && this.#streams.size === 0) this.#closeConnection?.("http2 drain complete");
  }

  /** Server: a graceful drain sent its first GOAWAY and not yet the final one (new streams may still arrive). */
  protected get drainPending(): boolean {
    return this.#drainStarted && !this.#goAwayFinal && !this.#dead;
  }

  #floodError(): never {
    connError(ErrorCode.ENHANCE_YOUR_CALM, `http2: ${this.#flood}`);
  }

  #connectionError(e: ConnError): Http2CodecError {
    const lastId = this.#lastPeerId;
    if (!this.#errorGoAwaySent && !this.#closed) {
      this.#sendGoAway(lastId, e.h2, e.message);
      this.#errorGoAwaySent = true;
    }
    this.#dead = true;
    this.#keepAliveFlag = false;
    this.#partial = null;
    this.#hbBuf = null;
    const msg = e.message.startsWith("http2: ") ? e.message : `http2: ${e.message}`;
    return new Http2CodecError(e.codecCode, `${msg} (${errorCodeName(e.h2)})`, {
      http2Code: e.h2,
      lastStreamId: lastId,
      status: e.status,
    });
  }

  #keepalivePing(): void {
    if (this.#dead || this.#kaOutstanding) return;
    this.#kaOutstanding = true;
    this.#depth++;
    this.#putControl();
    putPing(this.#out, KEEPALIVE_PING, 0, false);
    this.#leave();
    this.#kaTimeout = schedule(this.#keepalive!.timeoutMs, () => {
      this.#kaTimeout = undefined;
      if (this.#dead) return;
      this.#stats?.inc("keepalive_timeout");
      this.#depth++;
      this.#sendGoAway(this.#lastPeerId, ErrorCode.NO_ERROR, "keepalive timeout");
      this.#dead = true;
      this.#leave();
      this.#clearTimers();
      this.#closeConnection?.("http2 keepalive timeout");
    });
  }

  #clearTimers(): void {
    this.#drainTimer?.cancel();
    if (this.#kaInterval !== undefined) clearInterval(this.#kaInterval);
    this.#kaTimeout?.cancel();
    this.#drainTimer = this.#kaInterval = this.#kaTimeout = undefined;
  }

  // ---------------------------------------------------------------- input

  #parse(data: Uint8Array): void {
    let off = 0;
    const n = data.length;
    if (this.#prefaceLeft > 0) {
      const start = PREFACE.length - this.#prefaceLeft;
      const take = Math.min(this.#prefaceLeft, n);
      for (let i = 0; i < take; i++) {
        if (data[i] !== PREFACE[start + i]) connError(ErrorCode.PROTOCOL_ERROR, "invalid connection preface");
      }
      this.#prefaceLeft -= take;
      off = take;
    }
    const fh = this.#fh;
    while (off < n && !this.#dead) {
      if (this.#partialLen > 0) {
        const p = this.#partial!;
        if (this.#partialLen < FRAME_HEADER_LENGTH) {
          const take = Math.min(FRAME_HEADER_LENGTH - this.#partialLen, n - off);
          p.set(data.subarray(off, off + take), this.#partialLen);
          this.#partialLen += take;
          off += take;
          if (this.#partialLen < FRAME_HEADER_LENGTH) return;
          parseFrameHeader(p, 0, fh);
          this.#checkLength(fh);
          this.#partialNeed = FRAME_HEADER_LENGTH + fh.length;
        }
        const take = Math.min(this.#partialNeed - this.#partialLen, n - off);
        p.set(data.subarray(off, off + take), this.#partialLen);
        this.#partialLen += take;
        off += take;
        if (this.#partialLen < this.#partialNeed) return;
        this.#partialLen = 0;
        this.#frame(fh, p.subarray(FRAME_HEADER_LENGTH, this.#partialNeed));
        if (this.#flood !== null) this.#floodError();
        continue;
      }
      if (n - off < FRAME_HEADER_LENGTH) {
        this.#partial ??= new Uint8Array(FRAME_HEADER_LENGTH + DEFAULT_MAX_FRAME_SIZE);
        this.#partial.set(data.subarray(off, n), 0);
        this.#partialLen = n - off;
        return;
      }
      parseFrameHeader(data, off, fh);
      this.#checkLength(fh);
      const end = off + FRAME_HEADER_LENGTH + fh.length;
      if (end > n) {
        this.#partial ??= new Uint8Array(FRAME_HEADER_LENGTH + DEFAULT_MAX_FRAME_SIZE);
        this.#partial.set(data.subarray(off, n), 0);
        this.#partialLen = n - off;
        this.#partialNeed = end - off;
        return;
      }
      this.#frame(fh, data.subarray(off + FRAME_HEADER_LENGTH, end));
      off = end;
      if (this.#flood !== null) this.#floodError();
    }
  }

  #checkLength(fh: FrameHeader): void {
    if (fh.length > DEFAULT_MAX_FRAME_SIZE) {
      connError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${fh.length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
    }
  }

  #frame(fh: FrameHeader, p: Uint8Array): void {
    const type = fh.type;
    if (!this.#gotSettings) {
      if (type !== FrameType.SETTINGS || (fh.flags & Flag.ACK) !== 0) {
        connError(ErrorCode.PROTOCOL_ERROR, "the first frame must be SETTINGS");
      }
    }
    if (this.#hbStream !== 0 && type !== FrameType.CONTINUATION) {
      connError(ErrorCode.PROTOCOL_ERROR, "frame interleaved in a header block");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onData(fh, p);
      case FrameType.HEADERS:
        return this.#onHeaders(fh, p);
      case FrameType.PRIORITY:
        return this.#onPriority(fh, p);
      case FrameType.RST_STREAM:
        return this.#onRstStream(fh, p);
      case FrameType.SETTINGS:
        return this.#onSettings(fh, p);
      case FrameType.PUSH_PROMISE:
        return connError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE is not allowed");
      case FrameType.PING:
        return this.#onPing(fh, p);
      case FrameType.GOAWAY:
        return this.#onGoAway(fh, p);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(fh, p);
      case FrameType.CONTINUATION:
        return this.#onContinuation(fh, p);
    }
    // Unknown frame types are ignored (RFC 9113 §4.1).
  }

  /** An empty DATA/HEADERS/CONTINUATION frame without END_STREAM counts towards the empty-frame flood. */
  #emptyFrame(): void {
    if (++this.#emptyFrames > this.#maxEmpty) {
      this.#stats?.inc("inbound_empty_frames_flood");
      connError(ErrorCode.ENHANCE_YOUR_CALM, "http2: inbound_empty_frames_flood");
    }
  }

  /** True if `id` names a stream that the peer may not have opened yet (idle). */
  #isIdle(id: number): boolean {
    if (this.#server) return (id & 1) === 0 ? true : id > this.#lastPeerId;
    return (id & 1) === 0 || id >= this.#nextLocalId;
  }

  #onData(fh: FrameHeader, p: Uint8Array): void {
    const id = fh.streamId;
    if (id === 0) connError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const total = p.length;
    let start = 0;
    let end = total;
    if ((fh.flags & Flag.PADDED) !== 0) {
      if (total < 1) connError(ErrorCode.FRAME_SIZE_ERROR, "DATA too short for its padding");
      const pad = p[0]!;
      if (pad >= total) connError(ErrorCode.PROTOCOL_ERROR, "DATA padding exceeds the payload");
      start = 1;
      end = total - pad;
    }
    const endStream = (fh.flags & Flag.END_STREAM) !== 0;
    const len = end - start;
    if (len === 0 && !endStream) this.#emptyFrame();
    else this.#emptyFrames = 0;
    // Connection flow control counts the whole payload, padding included; we credit it back at once.
    if (total > this.#connRecv) connError(ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds the connection window");
    this.#connRecv -= total;
    this.#connUnacked += total;
    if (this.#connUnacked >= this.#connWindowTarget >>> 1) {
      putWindowUpdate(this.#out, 0, this.#connUnacked);
      this.#connRecv += this.#connUnacked;
      this.#connUnacked = 0;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) connError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      if (!this.#recentlyReset(id)) this.#sendRst(id, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (s.remoteEnded) return this.#streamError(s, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM", false);
    if (!s.gotHeaders) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "DATA before HEADERS", true);
    if (total > s.recvWindow) {
      return this.#streamError(s, ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds the stream window", false);
    }
    s.recvWindow -= total;
    s.unacked += total - len;
    s.received += len;
    if (s.contentLength >= 0 && (s.received > s.contentLength || (endStream && s.received !== s.contentLength))) {
      return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "DATA does not match content-length", true);
    }
    if (endStream) s.remoteEnded = true;
    const data = p.subarray(start, end);
    if (s.disabled > 0 || s.held !== null) {
      if (len > 0 || endStream) (s.held ??= []).push(len > 0 ? data.slice() : EMPTY);
      if (endStream) s.heldEnd = true;
      return;
    }
    s.decoder?.decodeData(data, endStream);
    if (endStream) this.#maybeClose(s);
    else this.#credit(s, len);
  }

  /** `n` bytes of the stream were consumed: WINDOW_UPDATE once half the window is owed. */
  #credit(s: H2Stream, n: number): void {
    s.unacked += n;
    if (s.closed || s.remoteEnded || s.unacked < this.#initialWindow >>> 1) return;
    putWindowUpdate(this.#out, s.id, s.unacked);
    s.recvWindow += s.unacked;
    s.unacked = 0;
  }

  #onHeaders(fh: FrameHeader, p: Uint8Array): void {
    const id = fh.streamId;
    if (id === 0) connError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let start = 0;
    let end = p.length;
    if ((fh.flags & Flag.PADDED) !== 0) {
      if (end < 1) connError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its padding");
      const pad = p[0]!;
      start = 1;
      end -= pad;
    }
    let badPriority = false;
    if ((fh.flags & Flag.PRIORITY) !== 0) {
      if (end - start < 5) connError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      if (readU31(p, start) === id) badPriority = true;
      start += 5;
    }
    if (end < start) connError(ErrorCode.PROTOCOL_ERROR, "HEADERS padding exceeds the payload");
    const endStream = (fh.flags & Flag.END_STREAM) !== 0;
    const frag = p.subarray(start, end);
    if (frag.length === 0 && !endStream) this.#emptyFrame();
    else this.#emptyFrames = 0;
    if ((fh.flags & Flag.END_HEADERS) !== 0) return this.#headerBlock(id, frag, endStream, badPriority);
    if (frag.length > this.#maxBlock) this.#blockTooLarge();
    this.#hbStream = id;
    this.#hbEnd = endStream;
    this.#hbCount = 0;
    this.#hbBadPriority = badPriority;
    if (this.#hbBuf === null || this.#hbBuf.length < frag.length * 2) {
      this.#hbBuf = new Uint8Array(Math.max(frag.length * 2, 4096));
    }
    this.#hbBuf.set(frag, 0);
    this.#hbLen = frag.length;
  }

  #blockTooLarge(): never {
    this.#stats?.inc("header_overflow");
    connError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large", "HeadersTooLarge", 431);
  }

  #onContinuation(fh: FrameHeader, p: Uint8Array): void {
    const id = fh.streamId;
    if (this.#hbStream === 0 || id !== this.#hbStream) {
      connError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block in progress");
    }
    const endHeaders = (fh.flags & Flag.END_HEADERS) !== 0;
    if (p.length === 0 && !endHeaders) this.#emptyFrame();
    else this.#emptyFrames = 0;
    if (++this.#hbCount > MAX_CONTINUATIONS) {
      this.#stats?.inc("header_overflow");
      connError(ErrorCode.ENHANCE_YOUR_CALM, "too many CONTINUATION frames", "HeadersTooLarge", 431);
    }
    const need = this.#hbLen + p.length;
    if (need > this.#maxBlock) this.#blockTooLarge();
    let buf = this.#hbBuf!;
    if (need > buf.length) {
      const b = new Uint8Array(Math.min(Math.max(need, buf.length * 2), this.#maxBlock));
      b.set(buf.subarray(0, this.#hbLen));
      buf = this.#hbBuf = b;
    }
    buf.set(p, this.#hbLen);
    this.#hbLen = need;
    if (!endHeaders) return;
    this.#hbStream = 0;
    const block = buf.subarray(0, need);
    // Large blocks are rare: do not keep their buffer.
    if (buf.length > 65536) this.#hbBuf = null;
    this.#headerBlock(id, block, this.#hbEnd, this.#hbBadPriority);
  }

  /** A complete header block: decode (keeping HPACK in sync even for streams we ignore), then route it. */
  #headerBlock(id: number, block: Uint8Array, endStream: boolean, badPriority: boolean): void {
    let wire: string[] | null;
    try {
      wire = this.#dec.decode(block, this.#maxListSize, this.#maxCount);
    } catch (e) {
      if (e instanceof HeaderListTooLargeError) {
        wire = null;
      } else {
        connError(ErrorCode.COMPRESSION_ERROR, `header block: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (this.#server) this.#serverHeaders(id, wire, endStream, badPriority);
    else this.#clientHeaders(id, wire, endStream, badPriority);
  }

  #serverHeaders(id: number, wire: string[] | null, endStream: boolean, badPriority: boolean): void {
    const s = this.#streams.get(id);
    if (s !== undefined) return this.#trailers(s, wire, endStream);
    if ((id & 1) === 0) connError(ErrorCode.PROTOCOL_ERROR, `client stream id ${id} is even`);
    if (id <= this.#lastPeerId) {
      if (this.#recentlyReset(id)) {
        this.#stats?.inc("headers_cb_no_stream");
        return;
      }
      connError(ErrorCode.PROTOCOL_ERROR, `stream id ${id} reused or not increasing`);
    }
    this.#lastPeerId = id;
    if (this.#goAwayFinal && id > this.#goAwayLastId) return; // after GOAWAY: ignored (RFC 9113 §6.8)
    if (badPriority) return this.#rejectNew(id, ErrorCode.PROTOCOL_ERROR, true);
    if (wire === null) {
      // Too large for our limits, but HPACK is in sync: only this stream fails, with a 431.
      this.#stats?.inc("header_overflow");
      const block = this.#enc.encode([":status", "431", "content-length", "0"]);
      this.#putFrame();
      putHeaderBlock(this.#out, id, block, true, this.#peerMaxFrame);
      if (!endStream) this.#sendRst(id, ErrorCode.NO_ERROR);
      return;
    }
    if (this.#streams.size >= this.#maxStreams) {
      this.#stats?.inc("stream_refused_errors");
      this.#sendRst(id, ErrorCode.REFUSED_STREAM);
      if (++this.#refused > this.#maxStreams) {
        connError(ErrorCode.ENHANCE_YOUR_CALM, "too many streams refused");
      }
      return;
    }
    const req = decodeRequest(wire, this.scheme, this.#allowConnect);
    if (typeof req === "string") return this.#rejectNew(id, ErrorCode.PROTOCOL_ERROR, true);
    const cl = lastContentLength;
    if (endStream && cl > 0) return this.#rejectNew(id, ErrorCode.PROTOCOL_ERROR, true);
    const st = new H2Stream(this, null, this.#peerInitialWindow, this.#initialWindow);
    st.id = id;
    st.gotHeaders = true;
    st.contentLength = cl;
    const upgrade = lastRequestProtocol;
    if (upgrade !== undefined) st.upgrade = upgrade.toLowerCase();
    st.remoteEnded = endStream;
    this.#streams.set(id, st);
    this.#streamsOpened++;
    this.#stats?.streamsActive(1);
    const dec = this.#init.newStream!(st);
    if (st.closed) return;
    st.decoder = dec;
    // An extended CONNECT (RFC 8441) goes on as the HTTP/1.1 upgrade it stands for (GET, `upgrade`, `connection:
    // upgrade`), as Envoy normalises it: routing, upgrade configs and an HTTP/1.1 upstream all see one form.
    dec.decodeHeaders(st.upgrade !== null ? h1Upgrade(req, st.upgrade) : new HeaderMap(req), endStream);
  }

  #rejectNew(id: number, code: number, malformed: boolean): void {
    if (malformed) this.#stats?.inc("rx_messaging_error");
    this.#sendRst(id, code);
  }

  #clientHeaders(id: number, wire: string[] | null, endStream: boolean, badPriority: boolean): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) connError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
      if (this.#recentlyReset(id)) {
        this.#stats?.inc("headers_cb_no_stream");
        return;
      }
      connError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${id}`);
    }
    if (badPriority) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "stream depends on itself", true);
    if (s.gotHeaders) return this.#trailers(s, wire, endStream);
    if (s.remoteEnded) return this.#streamError(s, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM", false);
    if (wire === null) {
      this.#stats?.inc("header_overflow");
      return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "response headers too large", false);
    }
    const resp = decodeResponse(wire);
    if (typeof resp === "string") return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, resp, true);
    const status = +resp[1]!;
    if (status < 200) {
      if (status === 101 || endStream) {
        return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "invalid informational response", true);
      }
      s.decoder?.decode1xxHeaders?.(new HeaderMap(resp));
      return;
    }
    s.gotHeaders = true;
    s.contentLength = s.noBodyCheck || status === 204 || status === 304 ? -1 : lastContentLength;
    if (endStream && s.contentLength > 0) {
      return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "content-length with no DATA", true);
    }
    if (endStream) s.remoteEnded = true;
    if (s.upgrade !== null && status < 300) {
      // The extended CONNECT succeeded: to an HTTP/1.1 client that asked for an upgrade it is a 101.
      resp[1] = "101";
      resp.push("upgrade", s.upgrade, "connection", "upgrade");
    }
    s.decoder?.decodeHeaders(new HeaderMap(resp), endStream);
    if (endStream) this.#maybeClose(s);
  }

  #trailers(s: H2Stream, wire: string[] | null, endStream: boolean): void {
    if (s.remoteEnded) return this.#streamError(s, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM", false);
    if (wire === null) {
      this.#stats?.inc("header_overflow");
      return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "trailers too large", false);
    }
    if (!endStream) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM", true);
    const t = decodeTrailers(wire);
    if (typeof t === "string") return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, t, true);
    if (s.contentLength >= 0 && s.received !== s.contentLength) {
      return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "DATA does not match content-length", true);
    }
    this.#stats?.inc("trailers");
    s.remoteEnded = true;
    const h = new HeaderMap(t);
    if (s.disabled > 0 || s.held !== null) {
      (s.held ??= []).push(h);
      s.heldEnd = true;
      return;
    }
    s.decoder?.decodeTrailers(h);
    this.#maybeClose(s);
  }

  #onPriority(fh: FrameHeader, p: Uint8Array): void {
    const id = fh.streamId;
    if (id === 0) connError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (++this.#priorityFrames > this.#maxPriorityPerStream * (1 + this.#streamsOpened)) {
      this.#stats?.inc("inbound_priority_frames_flood");
      connError(ErrorCode.ENHANCE_YOUR_CALM, "http2: inbound_priority_frames_flood");
    }
    if (p.length !== 5) return this.#streamErrorId(id, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY of wrong size");
    if (readU31(p, 0) === id) return this.#streamErrorId(id, ErrorCode.PROTOCOL_ERROR, "stream depends on itself");
  }

  #streamErrorId(id: number, code: number, detail: string): void {
    const s = this.#streams.get(id);
    if (s !== undefined) this.#streamError(s, code, detail, false);
    else this.#sendRst(id, code);
  }

  #onRstStream(fh: FrameHeader, p: Uint8Array): void {
    const id = fh.streamId;
    if (id === 0) connError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (p.length !== 4) connError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of wrong size");
    if (this.#isIdle(id)) connError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    const s = this.#streams.get(id);
    if (s === undefined) return;
    this.#stats?.inc("rx_reset");
    const code = readU32(p, 0);
    if (this.#server && !s.localEnded) {
      this.#prematureResets++;
      if (
        this.#streamsOpened >= PREMATURE_RESET_MIN_STREAMS && this.#prematureResets * 2 >= this.#streamsOpened
      ) {
        this.#stats?.inc("premature_reset");
        this.#closeStream(s, "remote-reset", "peer reset", true);
        connError(ErrorCode.ENHANCE_YOUR_CALM, "http2: too many streams reset before their response (rapid reset)");
      }
    }
    const reason: StreamResetReason = code === ErrorCode.REFUSED_STREAM ? "remote-refused-stream" : "remote-reset";
    this.#closeStream(s, reason, `peer reset: ${errorCodeName(code)}`, true);
  }

  #onSettings(fh: FrameHeader, p: Uint8Array): void {
    if (fh.streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if ((fh.flags & Flag.ACK) !== 0) {
      if (p.length !== 0) connError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ack with a payload");
      return;
    }
    if (p.length % 6 !== 0) connError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
    const first = !this.#gotSettings;
    this.#gotSettings = true;
    const oldCapacity = this.capacity;
    let sawMaxStreams = false;
    for (let i = 0; i < p.length; i += 6) {
      const id = (p[i]! << 8) | p[i + 1]!;
      const v = readU32(p, i + 2);
      switch (id) {
        case SettingId.HEADER_TABLE_SIZE:
          this.#enc.setMaxTableSize(v);
          break;
        case SettingId.ENABLE_PUSH:
          if (v > 1) connError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1");
          if (!this.#server && v !== 0) connError(ErrorCode.PROTOCOL_ERROR, "a server sent SETTINGS_ENABLE_PUSH=1");
          break;
        case SettingId.MAX_CONCURRENT_STREAMS:
          this.#peerMaxStreams = v;
          sawMaxStreams = true;
          break;
        case SettingId.INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) connError(ErrorCode.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
          const delta = v - this.#peerInitialWindow;
          this.#peerInitialWindow = v;
          if (delta !== 0) {
            for (const s of this.#streams.values()) {
              s.sendWindow += delta;
              if (s.sendWindow > MAX_WINDOW) connError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
            }
          }
          break;
        }
        case SettingId.MAX_FRAME_SIZE:
          if (v < DEFAULT_MAX_FRAME_SIZE || v > MAX_MAX_FRAME_SIZE) {
            connError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
          }
          this.#peerMaxFrame = v;
          break;
        case SettingId.MAX_HEADER_LIST_SIZE:
          break;
        case SettingId.ENABLE_CONNECT_PROTOCOL:
          if (v > 1) connError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1");
          this.#peerConnectProtocol = v === 1;
          break;
      }
    }
    if (first && !sawMaxStreams && this.#peerMaxStreams < 0) this.#peerMaxStreams = MAX_WINDOW;
    this.#putControl();
    putSettingsAck(this.#out);
    this.#peerSettingsSeen = true;
    if (this.#awaitingSettings.length > 0) {
      const waiting = this.#awaitingSettings;
      this.#awaitingSettings = [];
      for (const w of waiting) {
        const d = w.deferred;
        w.deferred = null;
        if (d === null || w.closed) continue;
        this.#encodeHeaders(w, d.headers, d.endStream, false);
        if (w.id !== 0 && (w.queued > 0 || w.endQueued || w.pendingTrailers !== null)) this.#pending.add(w);
      }
    }
    if (this.#pending.size > 0) this.#servePending();
    if (!this.#server && this.capacity !== oldCapacity) this.#init.onCapacityChanged?.();
  }

  /** Whether the peer accepts extended CONNECT (RFC 8441). */
  protected get peerConnectProtocol(): boolean {
    return this.#peerConnectProtocol;
  }

  #onPing(fh: FrameHeader, p: Uint8Array): void {
    if (fh.streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (p.length !== 8) connError(ErrorCode.FRAME_SIZE_ERROR, "PING of wrong size");
    if ((fh.flags & Flag.ACK) !== 0) {
      if (same8(p, SHUTDOWN_PING)) {
        if (this.#drainStarted) this.#finalGoAway();
      } else if (same8(p, KEEPALIVE_PING)) {
        this.#kaOutstanding = false;
        if (this.#kaTimeout !== undefined) {
          this.#kaTimeout.cancel();
          this.#kaTimeout = undefined;
        }
      }
      return;
    }
    this.#putControl();
    putPing(this.#out, p, 0, true);
  }

  #onGoAway(fh: FrameHeader, p: Uint8Array): void {
    if (fh.streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (p.length < 8) connError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY too short");
    const lastId = readU31(p, 0);
    this.#stats?.inc("goaway_received");
    this.#goAwayReceived = true;
    this.#keepAliveFlag = false;
    if (this.#server) return;
    this.#init.onGoAway?.(lastId);
    for (const s of [...this.#streams.values()]) {
      if (s.id > lastId) this.#closeStream(s, "remote-refused-stream", "above the peer's GOAWAY", true);
    }
  }

  #onWindowUpdate(fh: FrameHeader, p: Uint8Array): void {
    if (p.length !== 4) connError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of wrong size");
    if (++this.#windowUpdates > 5 + this.#maxWuPerData * this.#dataFramesSent) {
      this.#stats?.inc("inbound_window_update_frames_flood");
      connError(ErrorCode.ENHANCE_YOUR_CALM, "http2: inbound_window_update_frames_flood");
    }
    const inc = readU31(p, 0);
    const id = fh.streamId;
    if (id === 0) {
      if (inc === 0) connError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#connSend += inc;
      if (this.#connSend > MAX_WINDOW) connError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      if (this.#pending.size > 0) this.#servePending();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#isIdle(id)) connError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (inc === 0) return this.#streamError(s, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0", false);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      return this.#streamError(s, ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow", false);
    }
    if (s.queued > 0 || s.pendingTrailers !== null) this.#servePending();
  }

  // ---------------------------------------------------------------- stream life

  /** A stream error: RST_STREAM(code); the stream's decoder and callbacks are told. */
  #streamError(s: H2Stream, code: number, detail: string, malformed: boolean): void {
    if (malformed) this.#stats?.inc("rx_messaging_error");
    this.#sendRst(s.id, code);
    this.#closeStream(s, "protocol-error", detail, true);
  }

  #maybeClose(s: H2Stream): void {
    if (s.localEnded && s.remoteEnded && !s.closed && (s.held === null || s.held.length === 0)) {
      this.#closeStream(s, null, "", false);
    }
  }

  /**
   * Removes a stream. With a reason it was reset: the decoder (if `tellDecoder`) and the callbacks hear it.
   */
  #closeStream(s: H2Stream, reason: StreamResetReason | null, detail: string, tellDecoder: boolean): void {
    if (s.closed) return;
    s.closed = true;
    if (s.id !== 0 && this.#streams.delete(s.id)) this.#stats?.streamsActive(-1);
    if (!this.#server) this.#active--;
    this.#pending.delete(s);
    s.queue = [];
    s.queued = 0;
    s.held = null;
    s.pendingTrailers = null;
    const cbs = s.callbacks;
    s.callbacks = null;
    const dec = s.decoder;
    s.decoder = null;
    if (reason !== null) {
      if (tellDecoder) dec?.onReset?.(reason, detail);
      if (cbs !== null) { for (const c of cbs) c.onResetStream?.(reason, detail); }
    }
  }

  #resetAll(reason: StreamResetReason, detail: string): void {
    for (const s of [...this.#streams.values()]) this.#closeStream(s, reason, detail, true);
  }

  // ---------------------------------------------------------------- encoding

  #encodeHeaders(s: H2Stream, headers: HeaderMap, endStream: boolean, informational: boolean): void {
    if (s.closed) return;
    if (this.#dead) {
      if (!this.#server && s.id === 0) this.#closeStream(s, "connection-termination", "connection closed", true);
      return;
    }
    this.#depth++;
    try {
      let wire: string[];
      if (this.#server) {
        if (informational) {
          wire = encodeResponse(headers);
          const st = +wire[1]!;
          if (st < 100 || st > 199 || st === 101) wire[1] = "100";
          endStream = false;
        } else {
          wire = encodeResponse(headers);
          // An upgrade accepted by an HTTP/1.1 upstream (101) is a successful extended CONNECT here.
          if (s.upgrade !== null && wire[1] === "101") wire[1] = "200";
        }
      } else {
        if (this.#goAwayReceived) {
          this.#closeStream(s, "remote-refused-stream", "the peer sent GOAWAY", true);
          return;
        }
        const up = requestedUpgrade(headers);
        if (up !== undefined) {
          if (!this.#peerSettingsSeen) {
            s.deferred = { headers, endStream };
            this.#awaitingSettings.push(s);
            return;
          }
          if (!this.#peerConnectProtocol) {
            this.#closeStream(s, "remote-refused-stream", "the peer does not accept extended CONNECT", true);
            return;
          }
          s.upgrade = up;
          headers = h2Upgrade(headers, up);
        }
        wire = encodeRequest(headers, this.scheme);
        s.noBodyCheck = lastRequestMethod === "HEAD" || lastRequestMethod === "CONNECT";
        if (this.#nextLocalId > MAX_WINDOW) {
          this.#closeStream(s, "connection-termination", "stream ids exhausted", true);
          return;
        }
        s.id = this.#nextLocalId;
        this.#nextLocalId += 2;
        this.#streams.set(s.id, s);
        this.#stats?.streamsActive(1);
      }
      const block = this.#enc.encode(wire);
      this.#putFrame();
      putHeaderBlock(this.#out, s.id, block, endStream, this.#peerMaxFrame);
      if (endStream) {
        s.endQueued = true;
        s.localEnded = true;
        this.#maybeClose(s);
      }
    } finally {
      this.#leave();
    }
  }

  #encodeData(s: H2Stream, data: Uint8Array, endStream: boolean): void {
    if (s.deferred !== null && !s.closed && !s.endQueued) {
      // Held with its headers: sent once they go.
      if (endStream) s.endQueued = true;
      if (data.length > 0) {
        s.queue.push(data.slice());
        s.queued += data.length;
      }
      return;
    }
    if (s.closed || s.endQueued || this.#dead || s.id === 0) return;
    this.#depth++;
    if (endStream) s.endQueued = true;
    if (s.queued === 0) {
      const sent = this.#sendData(s, data, 0, endStream);
      if (sent < data.length || (endStream && !s.localEnded)) this.#enqueue(s, data.subarray(sent));
    } else {
      this.#enqueue(s, data);
    }
    if (s.localEnded) this.#maybeClose(s);
    this.#leave();
  }

  #enqueue(s: H2Stream, data: Uint8Array): void {
    if (data.length > 0) {
      s.queue.push(data.slice());
      s.queued += data.length;
    }
    this.#pending.add(s);
    if (!s.aboveHigh && s.queued > this.#bufferLimit) {
      s.aboveHigh = true;
      const cbs = s.callbacks;
      if (cbs !== null) { for (const c of cbs.slice()) c.onAboveWriteBufferHighWatermark(); }
    }
  }

  /**
   * Sends `data[from..]` as far as the windows, the socket and the frame size allow; END_STREAM goes on the last
   * frame when `endStream` and no trailers wait. Returns the offset reached. Sends at most one frame if `one`.
   */
  #sendData(s: H2Stream, data: Uint8Array, from: number, endStream: boolean, one = false): number {
    const n = data.length;
    let off = from;
    if (this.#socketBlocked) return off;
    const trailersWait = s.pendingTrailers !== null;
    do {
      const room = Math.min(s.sendWindow, this.#connSend, this.#peerMaxFrame);
      const chunk = Math.min(n - off, room);
      if (chunk <= 0 && !(off === n && endStream && !trailersWait)) break;
      const last = off + chunk === n;
      const fin = last && endStream && !trailersWait;
      this.#putFrame();
      putData(this.#out, s.id, data.subarray(off, off + chunk), fin);
      this.#dataFramesSent++;
      s.sendWindow -= chunk;
      this.#connSend -= chunk;
      off += chunk;
      if (fin) {
        s.localEnded = true;
        break;
      }
      if (one) break;
    } while (off < n);
    return off;
  }

  /** Serves queued streams one frame each in turn while the windows and the socket allow. */
  #servePending(): void {
    let progress = true;
    while (progress && this.#pending.size > 0 && !this.#socketBlocked && !this.#dead) {
      progress = false;
      for (const s of this.#pending) {
        if (this.#serveOne(s)) progress = true;
        if (this.#socketBlocked) break;
      }
    }
  }

  /** Sends one frame of `s`'s queue (or its trailers / END_STREAM); returns whether anything went out. */
  #serveOne(s: H2Stream): boolean {
    if (s.closed) {
      this.#pending.delete(s);
      return false;
    }
    let sent = false;
    if (s.queued > 0) {
      const head = s.queue[0]!;
      const isLastChunk = s.queue.length === 1;
      const before = s.queueOff;
      const after = this.#sendData(s, head, before, isLastChunk && s.endQueued, true);
      const n = after - before;
      if (n === 0 && !s.localEnded) return false;
      sent = true;
      s.queued -= n;
      if (after === head.length) {
        s.queue.shift();
        s.queueOff = 0;
      } else {
        s.queueOff = after;
      }
      if (s.aboveHigh && s.queued < this.#bufferLimit >>> 1) {
        s.aboveHigh = false;
        const cbs = s.callbacks;
        if (cbs !== null) { for (const c of cbs.slice()) c.onBelowWriteBufferLowWatermark(); }
        if (s.closed) return true;
      }
    }
    if (s.queued === 0) {
      if (s.pendingTrailers !== null) {
        const t = s.pendingTrailers;
        s.pendingTrailers = null;
        this.#putTrailers(s, t);
        sent = true;
      } else if (s.endQueued && !s.localEnded) {
        if (this.#socketBlocked) return sent;
        this.#putFrame();
        putData(this.#out, s.id, EMPTY, true);
        s.localEnded = true;
        sent = true;
      }
      if (s.localEnded || !s.endQueued) this.#pending.delete(s);
      if (s.localEnded) this.#maybeClose(s);
    }
    return sent;
  }

  #putTrailers(s: H2Stream, t: HeaderMap): void {
    const block = this.#enc.encode(encodeTrailers(t));
    this.#putFrame();
    putHeaderBlock(this.#out, s.id, block, true, this.#peerMaxFrame);
    s.localEnded = true;
  }

  #encodeTrailersFn(s: H2Stream, t: HeaderMap): void {
    if (s.closed || s.endQueued || this.#dead || s.id === 0) return;
    this.#depth++;
    s.endQueued = true;
    if (s.queued === 0) {
      this.#putTrailers(s, t);
      this.#maybeClose(s);
    } else {
      s.pendingTrailers = t;
      this.#pending.add(s);
    }
    this.#leave();
  }

  #reset(s: H2Stream, reason: StreamResetReason): void {
    if (s.closed) return;
    this.#depth++;
    if (s.id !== 0 && !this.#dead) {
      // A server abandoning a response sends NO_ERROR, as Envoy's reasonToReset does (a gRPC client then reports
      // INTERNAL "ended without gRPC status", where CANCEL would read as if it had cancelled the call itself); a
      // client no longer interested in a stream sends CANCEL (RFC 9113 §7).
      let code: number = this.#server || s.localEnded ? ErrorCode.NO_ERROR : ErrorCode.CANCEL;
      if (reason === "protocol-error") code = ErrorCode.PROTOCOL_ERROR;
      else if (reason === "overflow" || reason === "remote-refused-stream") code = ErrorCode.REFUSED_STREAM;
      this.#sendRst(s.id, code);
    }
    this.#closeStream(s, reason, "", false);
    this.#leave();
  }

  #readDisable(s: H2Stream, disable: boolean): void {
    if (s.closed) return;
    if (disable) {
      s.disabled++;
      return;
    }
    if (s.disabled === 0) return;
    if (--s.disabled > 0 || s.held === null || s.deliverScheduled) return;
    s.deliverScheduled = true;
    queueMicrotask(() => {
      s.deliverScheduled = false;
      if (s.closed || this.#closed) return;
      this.#depth++;
      try {
        this.#deliverHeld(s);
      } finally {
        this.#leave();
      }
    });
  }

  /** Delivers what was held while the stream was read-disabled, crediting its window as it goes. */
  #deliverHeld(s: H2Stream): void {
    const held = s.held;
    if (held === null) return;
    while (s.disabled === 0 && held.length > 0 && !s.closed) {
      const item = held.shift()!;
      const last = held.length === 0 && s.heldEnd;
      if (item instanceof Uint8Array) {
        s.decoder?.decodeData(item, last);
        if (!last) this.#credit(s, item.length);
      } else {
        s.decoder?.decodeTrailers(item);
      }
    }
    if (s.closed) return;
    if (held.length === 0) {
      if (s.heldEnd) {
        s.held = null;
        this.#maybeClose(s);
        return;
      }
      s.held = null;
      // Data that arrived while held was not credited; credit whatever is owed now.
      this.#credit(s, 0);
    }
  }

  static {
    friend = {
      encodeHeaders: (c, s, h, e, i) => c.#encodeHeaders(s, h, e, i),
      encodeData: (c, s, d, e) => c.#encodeData(s, d, e),
      encodeTrailers: (c, s, t) => c.#encodeTrailersFn(s, t),
      reset: (c, s, r) => c.#reset(s, r),
      readDisable: (c, s, d) => c.#readDisable(s, d),
      bufferLimit: (c) => c.#bufferLimit,
    };
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function same8(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== b[i]) return false;
  return true;
}
