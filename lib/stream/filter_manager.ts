/**
 * The stream filter manager: one per stream, running the decoder filters in order and the encoder filters in
 * reverse, following the status protocol of `lib/api/stream_filter.ts` (Envoy's `FilterManager`).
 *
 * It knows no protocol: the owner of the stream (the HTTP connection manager today; the RPC proxies later) feeds
 * it decoded frames, receives the encoded frames that passed every encoder filter, and answers the questions
 * filters ask about their stream (route, stream info, local replies) through {@link FilterManagerCallbacks}.
 *
 * Semantics, as Envoy's:
 * - A filter that stops a frame still receives the frames after it (its hooks are called as they arrive), but
 *   nothing passes that filter until it continues; then everything it held moves on in order.
 * - `"stop-and-buffer"` on data keeps the body at that filter; when the filter continues, the buffered body goes
 *   on as one chunk, after held headers and before held data and trailers.
 * - A Promise result holds the frame like `"stop"`; it resolving to `"continue"` is `continueDecoding()` /
 *   `continueEncoding()`, and it rejecting is a filter failure.
 * - The last decoder filter (the terminal one, the router) consumes every frame: nothing is held after it.
 * - A throwing hook is reported to the owner ({@link FilterManagerCallbacks.onFilterError}), which answers with
 *   a 500 or resets; the filter manager stops passing that frame on. A Promise rejecting after the stream ended
 *   is still reported (to be logged).
 *
 * @example
 * ```ts ignore
 * const fm = new FilterManager(owner, [{ name: "router", create: (cb) => new RouterFilter(cb) }]);
 * fm.decodeHeaders(requestHeaders, true);
 * // ... the owner receives owner.encodeHeaders(...) for the response ...
 * fm.destroy();
 * ```
 *
 * @module
 */
import { HeaderMap } from "../api/headers.ts";
import type { RouteResult } from "../api/route.ts";
import type {
  DownstreamConnectionInfo,
  FilterResult,
  LocalReplyOptions,
  StreamFilter,
  StreamFilterCallbacks,
  StreamFilterFactoryCb,
  WatermarkCallbacks,
} from "../api/stream_filter.ts";
import type { StreamInfo } from "../api/stream_info.ts";

/**
 * What a {@link FilterManager} needs from the stream that owns it (Envoy's `FilterManagerCallbacks`): the facts and
 * services filters ask for, and the sink of the encode chain. The sink is called only while the manager is not
 * destroyed.
 */
export interface FilterManagerCallbacks {
  readonly streamInfo: StreamInfo;
  readonly connection: DownstreamConnectionInfo;
  /** The request headers once decoded (undefined before). */
  readonly requestHeaders: HeaderMap | undefined;
  /** The route for the request (computed once, until `clearRouteCache`). */
  readonly route: RouteResult | null;
  clearRouteCache(): void;
  /** Answers the request locally; the owner maps it to its protocol and calls {@link FilterManager.encodeLocal}. */
  sendLocalReply(status: number, body?: string, options?: LocalReplyOptions): void;
  encode1xxHeaders(headers: HeaderMap): void;
  resetStream(): void;
  readDisable(disable: boolean): void;
  addDownstreamWatermarkCallbacks(cbs: WatermarkCallbacks): void;
  readonly decoderBufferLimit: number;
  setStreamIdleTimeout(ms: number): void;
  /** A response frame passed every encoder filter: write it to the codec. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Uint8Array, endStream: boolean): void;
  encodeTrailers(trailers: HeaderMap): void;
  /** Filter `name`'s hook threw or its Promise rejected. The owner answers with a 500 or resets the stream. */
  onFilterError(name: string, error: unknown): void;
}

/** Frames of one direction, queued while a filter holds them. */
type Frame =
  | { k: "h"; h: HeaderMap; end: boolean }
  | { k: "d"; d: Uint8Array; end: boolean }
  | { k: "t"; h: HeaderMap };

/** A filter in the chain (continue* resumes from this filter). */
interface FilterSlot {
  readonly filter: StreamFilter;
  readonly name: string;
  readonly index: number;
  /** Data buffered by `"stop-and-buffer"`, per direction. */
  decodeBuf?: Uint8Array[] | undefined;
  encodeBuf?: Uint8Array[] | undefined;
  /** Frames this filter stopped or received after stopping, waiting for it to continue. */
  decodeHeld?: Frame[] | undefined;
  encodeHeld?: Frame[] | undefined;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * The callbacks one filter gets: a small object per filter per stream whose methods live on the prototype (an
 * object literal of closures cost ~1.5 KB of garbage per request when measured).
 */
class FilterCallbacks implements StreamFilterCallbacks {
  readonly #fm: FilterManager;
  readonly #o: FilterManagerCallbacks;
  readonly #i: number;

  constructor(fm: FilterManager, owner: FilterManagerCallbacks, index: number) {
    this.#fm = fm;
    this.#o = owner;
    this.#i = index;
  }

  get streamInfo(): StreamInfo {
    return this.#o.streamInfo;
  }

  get connection(): DownstreamConnectionInfo {
    return this.#o.connection;
  }

  get requestHeaders(): HeaderMap {
    return this.#o.requestHeaders ?? new HeaderMap();
  }

  get route(): RouteResult | null {
    return this.#o.route;
  }

  clearRouteCache(): void {
    this.#o.clearRouteCache();
  }

  continueDecoding(): void {
    this.#fm.resume(this.#i, true);
  }

  continueEncoding(): void {
    this.#fm.resume(this.#i, false);
  }

  sendLocalReply(status: number, body?: string, options?: LocalReplyOptions): void {
    if (!this.#fm.destroyed) this.#o.sendLocalReply(status, body, options);
  }

  encodeHeaders(h: HeaderMap, end: boolean): void {
    this.#fm.encodeFrom(this.#i, { k: "h", h, end });
  }

  encodeData(d: Uint8Array, end: boolean): void {
    this.#fm.encodeFrom(this.#i, { k: "d", d, end });
  }

  encodeTrailers(h: HeaderMap): void {
    this.#fm.encodeFrom(this.#i, { k: "t", h });
  }

  injectDecodedDataToFilterChain(d: Uint8Array, end: boolean): void {
    this.#fm.decodeFrom(this.#i, { k: "d", d, end });
  }

  injectEncodedDataToFilterChain(d: Uint8Array, end: boolean): void {
    this.#fm.encodeFrom(this.#i, { k: "d", d, end });
  }

  encode1xxHeaders(h: HeaderMap): void {
    if (!this.#fm.destroyed) this.#o.encode1xxHeaders(h);
  }

  resetStream(): void {
    if (!this.#fm.destroyed) this.#o.resetStream();
  }

  readDisable(disable: boolean): void {
    this.#o.readDisable(disable);
  }

  addDownstreamWatermarkCallbacks(cbs: WatermarkCallbacks): void {
    this.#o.addDownstreamWatermarkCallbacks(cbs);
  }

  get decoderBufferLimit(): number {
    return this.#o.decoderBufferLimit;
  }

  setStreamIdleTimeout(ms: number): void {
    this.#o.setStreamIdleTimeout(ms);
  }
}

/** One stream's filter chain; see the module doc. */
export class FilterManager {
  readonly #o: FilterManagerCallbacks;
  readonly #slots: FilterSlot[] = [];
  /** A local reply or reset ended decoding: further decode frames are dropped. */
  #decodingDone = false;
  #destroyed = false;
  #responseStarted = false;
  readonly #log: ((msg: string) => void) | undefined;

  /**
   * Creates every filter of the chain for one stream, in config order (the terminal filter last).
   * `log` receives failures of `onDestroy` hooks, which have nobody else to tell.
   */
  constructor(
    owner: FilterManagerCallbacks,
    factories: readonly StreamFilterFactoryCb[],
    log?: (msg: string) => void,
  ) {
    this.#o = owner;
    this.#log = log;
    for (let i = 0; i < factories.length; i++) {
      const f = factories[i]!;
      this.#slots.push({ filter: f.create(new FilterCallbacks(this, owner, i)), name: f.name, index: i });
    }
  }

  /** True once {@link destroy} ran: no hook is called after it. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** True once response headers entered the encode chain (from a filter or a local reply). */
  get responseStarted(): boolean {
    return this.#responseStarted;
  }

  /** True once decoding ended early ({@link stopDecoding}). */
  get decodingDone(): boolean {
    return this.#decodingDone;
  }

  // ---- decode side ----

  /** Request headers from the codec enter the decoder filters. */
  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.#run({ k: "h", h: headers, end: endStream }, 0, true);
  }

  /** Request body from the codec (valid only during the call; copied when held). */
  decodeData(data: Uint8Array, endStream: boolean): void {
    if (this.#decodingDone) return;
    this.#run({ k: "d", d: data, end: endStream }, 0, true);
  }

  /** Request trailers from the codec. */
  decodeTrailers(trailers: HeaderMap): void {
    if (this.#decodingDone) return;
    this.#run({ k: "t", h: trailers }, 0, true);
  }

  /** A request frame from filter `index` (injected, transformed body) enters the filters after it. */
  decodeFrom(index: number, f: Frame): void {
    if (this.#destroyed || this.#decodingDone) return;
    this.#run(f, index + 1, true);
  }

  /** Ends decoding early (a local reply went out): held and later request frames are dropped. */
  stopDecoding(): void {
    this.#decodingDone = true;
    for (const sl of this.#slots) sl.decodeHeld = undefined;
  }

  // ---- encode side ----

  /** A response frame from filter `index` (the router, or a filter answering itself) enters the filters before it. */
  encodeFrom(index: number, f: Frame): void {
    if (this.#destroyed) return;
    if (f.k === "h") this.#responseStarted = true;
    this.#run(f, index - 1, false);
  }

  /** A locally generated response enters the encoder filters from the last one. */
  encodeLocalHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#destroyed) return;
    this.#responseStarted = true;
    this.#run({ k: "h", h: headers, end: endStream }, this.#slots.length - 1, false);
  }

  /** The body of a locally generated response (after {@link encodeLocalHeaders}). */
  encodeLocalData(data: Uint8Array, endStream: boolean): void {
    if (this.#destroyed) return;
    this.#run({ k: "d", d: data, end: endStream }, this.#slots.length - 1, false);
  }

  /** The trailers of a locally generated response (gRPC, RPC protocols). */
  encodeLocalTrailers(trailers: HeaderMap): void {
    if (this.#destroyed) return;
    this.#run({ k: "t", h: trailers }, this.#slots.length - 1, false);
  }

  /** Resumes after `continueDecoding`/`continueEncoding` of filter `index`. */
  resume(index: number, decode: boolean): void {
    if (this.#destroyed) return;
    const slot = this.#slots[index];
    if (!slot) return;
    const held = decode ? slot.decodeHeld : slot.encodeHeld;
    const next = decode ? index + 1 : index - 1;
    if (held === undefined) {
      // A "stop-and-buffer" filter releasing its buffered data at end of stream.
      const buf = decode ? slot.decodeBuf : slot.encodeBuf;
      if (buf && buf.length > 0) {
        if (decode) slot.decodeBuf = undefined;
        else slot.encodeBuf = undefined;
        this.#run({ k: "d", d: concat(buf), end: true }, next, decode);
      }
      return;
    }
    if (decode) slot.decodeHeld = undefined;
    else slot.encodeHeld = undefined;
    const buf = decode ? slot.decodeBuf : slot.encodeBuf;
    if (buf && buf.length > 0) {
      if (decode) slot.decodeBuf = undefined;
      else slot.encodeBuf = undefined;
      // Buffered body goes after the held headers, before held data/trailers.
      const at = held.length > 0 && held[0]!.k === "h" ? 1 : 0;
      const firstData = held[at];
      if (firstData && firstData.k === "d") held[at] = { k: "d", d: concat([...buf, firstData.d]), end: firstData.end };
      else held.splice(at, 0, { k: "d", d: concat(buf), end: held.length === at });
    }
    for (const f of held) {
      if (this.#destroyed || (decode && this.#decodingDone)) return;
      this.#run(f, next, decode);
    }
  }

  /** Calls every filter's `onDestroy` once; after this no hook or callback has any effect. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const s of this.#slots) {
      try {
        s.filter.onDestroy?.();
      } catch (e) {
        this.#log?.(`http filter "${s.name}" onDestroy failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  /** Passes `f` through filters starting at `i` (decode: ascending; encode: descending), then to the sink. */
  #run(f: Frame, i: number, decode: boolean): void {
    const slots = this.#slots;
    while (decode ? i < slots.length : i >= 0) {
      if (this.#destroyed || (decode && this.#decodingDone)) return;
      const slot = slots[i]!;
      const r = this.#call(slot, f, decode);
      if (r === "failed") return;
      if (decode && i === slots.length - 1) {
        // The terminal filter (router) consumes everything; nothing after it to hold frames for.
        if (typeof r === "object") r.then(undefined, (e) => this.#failed(slot, e));
        return;
      }
      const held = decode ? slot.decodeHeld : slot.encodeHeld;
      if (r === "continue") {
        const buf = decode ? slot.decodeBuf : slot.encodeBuf;
        if (buf && buf.length > 0 && f.k === "d") {
          if (decode) slot.decodeBuf = undefined;
          else slot.encodeBuf = undefined;
          buf.push(f.d);
          f = { k: "d", d: concat(buf), end: f.end };
        }
        if (held !== undefined) {
          // The filter stopped an earlier frame: this one waits behind it.
          held.push(f.k === "d" ? { k: "d", d: f.d.slice(), end: f.end } : f);
          return;
        }
        i = decode ? i + 1 : i - 1;
        continue;
      }
      // Consumed by the filter (which injected what goes on): nothing is held.
      if (r === "stop-no-buffer" && f.k !== "h") return;
      if (r === "stop-and-buffer" && f.k === "d") {
        if (decode) (slot.decodeBuf ??= []).push(f.d.slice());
        else (slot.encodeBuf ??= []).push(f.d.slice());
        return;
      }
      const copy = f.k === "d" ? { k: "d" as const, d: f.d.slice(), end: f.end } : f;
      if (held !== undefined) held.push(copy);
      else if (decode) slot.decodeHeld = [copy];
      else slot.encodeHeld = [copy];
      if (typeof r === "object") {
        r.then(
          (st) => {
            if (st === "continue") this.resume(slot.index, decode);
          },
          (e) => this.#failed(slot, e),
        );
      }
      return;
    }
    if (!decode) this.#sink(f);
  }

  #sink(f: Frame): void {
    if (this.#destroyed) return;
    if (f.k === "h") this.#o.encodeHeaders(f.h, f.end);
    else if (f.k === "d") this.#o.encodeData(f.d, f.end);
    else this.#o.encodeTrailers(f.h);
  }

  /** Calls one hook; a throw is reported and gives "failed". Returns "continue" for absent hooks. */
  #call(slot: FilterSlot, f: Frame, decode: boolean): FilterResult | "failed" {
    const flt = slot.filter;
    try {
      if (decode) {
        if (f.k === "h") return flt.decodeHeaders ? flt.decodeHeaders(f.h, f.end) : "continue";
        if (f.k === "d") return flt.decodeData ? flt.decodeData(f.d, f.end) : "continue";
        return flt.decodeTrailers ? flt.decodeTrailers(f.h) : "continue";
      }
      if (f.k === "h") return flt.encodeHeaders ? flt.encodeHeaders(f.h, f.end) : "continue";
      if (f.k === "d") return flt.encodeData ? flt.encodeData(f.d, f.end) : "continue";
      return flt.encodeTrailers ? flt.encodeTrailers(f.h) : "continue";
    } catch (e) {
      this.#failed(slot, e);
      return "failed";
    }
  }

  #failed(slot: FilterSlot, e: unknown): void {
    // Reported even after destroy (a late rejection): the owner logs it and does nothing else then.
    this.#o.onFilterError(slot.name, e);
  }
}
