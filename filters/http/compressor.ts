/**
 * `envoy.filters.http.compressor`: compresses response bodies (and, when enabled, request bodies) with the
 * configured `compressor_library` — gzip (`envoy.compression.gzip.compressor`), brotli
 * (`envoy.compression.brotli.compressor`) or zstd (`envoy.compression.zstd.compressor`), all from Deno's built-in
 * `node:zlib`.
 *
 * Envoy's rules. A response is compressed when the request's `accept-encoding` picks the library's encoding
 * (q-values; an explicit token beats `*`; `identity` with a higher q, or `q=0`, refuses), the response has a body,
 * its `content-length` (if any) is at least `min_content_length` (30), its media type is one of `content_type`
 * (Envoy's default list; no `content-type` counts as allowed), it has no `content-encoding`, no
 * `cache-control: no-transform`, no `etag` when `disable_on_etag_header`, and it is not an upgrade. A compressible
 * response gets `vary: accept-encoding` whether or not it is then compressed; a compressed one loses
 * `content-length`, gains `content-encoding`, and a strong `etag` becomes weak. Request compression (off by
 * default) needs a `content-length` of at least the minimum, an allowed media type and no `content-encoding`.
 * Per route, `CompressorPerRoute` disables the filter or overrides `remove_accept_encoding_header`.
 *
 * Stats under `http.<stat_prefix>.compressor.<library name>.<gzip|brotli|zstd>.`: `compressed`, `not_compressed`,
 * `no_accept_header`, `header_identity`, `header_compressor_used`, `header_wildcard`, `header_not_valid`,
 * `content_length_too_small`, `not_compressed_etag`, `total_uncompressed_bytes`, `total_compressed_bytes`, and the
 * same under `request.` for request bodies.
 *
 * @module
 */
import type { HeaderMap } from "../../lib/api/headers.ts";
import type {
  FilterFactoryContext,
  FilterStatus,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader, typedConfig } from "../../lib/config/reader.ts";
import {
  checkContentType,
  type CompressionLibrary,
  FilterBodyCodec,
  hasNoTransform,
  mediaType,
  parseCompressorLibrary,
} from "./_compression.ts";
import { type FeatureFlag, flagEnabled, parseFeatureFlag } from "./_feature_flag.ts";
import { cachedPerRoute } from "./_per_route.ts";
import { type Counters, counters } from "./_stats.ts";

/** The compressor filter's `@type`. */
export const COMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor";
/** Its per-route `@type`. */
export const COMPRESSOR_PER_ROUTE_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";
const NAME = "envoy.filters.http.compressor";

/** Envoy's default `content_type` list. */
export const DEFAULT_CONTENT_TYPES: readonly string[] = [
  "text/html",
  "text/plain",
  "text/css",
  "application/javascript",
  "application/x-javascript",
  "text/javascript",
  "text/x-javascript",
  "text/ecmascript",
  "text/js",
  "text/jscript",
  "text/x-js",
  "application/ecmascript",
  "application/x-json",
  "application/xml",
  "application/json",
  "image/svg+xml",
  "text/xml",
  "application/xhtml+xml",
];

/** One direction's `common_config`. */
export interface DirectionConfig {
  /** `enabled.default_value` (response: true, request: false by default). */
  readonly enabled: boolean;
  /** `enabled.runtime_key`, read per request from `layered_runtime`. */
  readonly enabledKey: string | undefined;
  /** `min_content_length` (default 30). */
  readonly minContentLength: number;
  /** Lower-cased media types. */
  readonly contentTypes: ReadonlySet<string>;
}

/** Parsed compressor config. */
export interface CompressorConfig {
  /** The `compressor_library`. */
  readonly library: CompressionLibrary;
  /** `request_direction_config`. */
  readonly request: DirectionConfig;
  /** `response_direction_config` (or the deprecated top-level fields). */
  readonly response: DirectionConfig & {
    readonly disableOnEtagHeader: boolean;
    readonly removeAcceptEncodingHeader: boolean;
  };
  /** `choose_first` (meaningful with several compressor filters; kept for completeness). */
  readonly chooseFirst: boolean;
}

/** Parsed `CompressorPerRoute`. */
export interface CompressorPerRoute {
  /** `disabled: true`. */
  readonly disabled: boolean;
  /** `overrides.response_direction_config.remove_accept_encoding_header`, if set. */
  readonly removeAcceptEncodingHeader: boolean | undefined;
}

function parseCommon(
  o: ObjReader | undefined,
  dfltEnabled: boolean,
  legacy?: { minContentLength?: number; contentTypes?: string[] },
): DirectionConfig {
  let flag: FeatureFlag = { enabled: dfltEnabled, enabledKey: undefined };
  let min = legacy?.minContentLength ?? 30;
  let types = legacy?.contentTypes ?? [];
  if (o) {
    flag = parseFeatureFlag(o.obj("enabled"), dfltEnabled);
    min = o.int("min_content_length", { min: 0 }) ?? 30;
    types = o.strs("content_type").map((t, i) => checkContentType(t, `${o.at("content_type")}[${i}]`));
    o.done();
  }
  return {
    ...flag,
    minContentLength: min,
    contentTypes: new Set(types.length > 0 ? types : DEFAULT_CONTENT_TYPES),
  };
}

function parseCompressorConfig(raw: Record<string, unknown>, path: string): CompressorConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const lib = o.obj("compressor_library", { required: true })!;
  const library = parseCompressorLibrary(lib);
  // Deprecated v2-era fields: used when response_direction_config is absent, as Envoy does.
  const legacyMin = o.int("content_length", { min: 0 });
  const legacyTypes = o.strs("content_type").map((t, i) => checkContentType(t, `${o.at("content_type")}[${i}]`));
  const legacyEtag = o.bool("disable_on_etag_header") ?? false;
  const legacyRemove = o.bool("remove_accept_encoding_header") ?? false;
  const legacyEnabled = parseFeatureFlag(o.obj("runtime_enabled"), true);
  const rq = o.obj("request_direction_config");
  let request: DirectionConfig;
  if (rq) {
    request = parseCommon(rq.obj("common_config"), false);
    rq.done();
  } else request = parseCommon(undefined, false);
  request = rq ? request : { ...request, enabled: false, enabledKey: undefined };
  const rs = o.obj("response_direction_config");
  let response: CompressorConfig["response"];
  if (rs) {
    const common = parseCommon(rs.obj("common_config"), true);
    response = {
      ...common,
      disableOnEtagHeader: rs.bool("disable_on_etag_header") ?? false,
      removeAcceptEncodingHeader: rs.bool("remove_accept_encoding_header") ?? false,
    };
    rs.done();
  } else {
    const common = parseCommon(undefined, true, {
      ...(legacyMin !== undefined ? { minContentLength: legacyMin } : {}),
      contentTypes: legacyTypes,
    });
    response = {
      ...common,
      ...legacyEnabled,
      disableOnEtagHeader: legacyEtag,
      removeAcceptEncodingHeader: legacyRemove,
    };
  }
  const chooseFirst = o.bool("choose_first") ?? false;
  o.done();
  return { library, request, response, chooseFirst };
}

/** Parses a `CompressorPerRoute` entry (with its `@type`). */
export function parseCompressorPerRoute(raw: unknown, path: string): CompressorPerRoute {
  const o = typedConfig(raw, path, [COMPRESSOR_PER_ROUTE_TYPE]);
  const which = o.oneOf(["disabled", "overrides"] as const, { required: true });
  let disabled = false;
  let remove: boolean | undefined;
  if (which === "disabled") {
    disabled = o.bool("disabled") ?? false;
  } else {
    const ov = o.obj("overrides")!;
    const rd = ov.obj("response_direction_config");
    if (rd) {
      remove = rd.bool("remove_accept_encoding_header");
      rd.done();
    }
    ov.done();
  }
  o.done();
  return { disabled, removeAcceptEncodingHeader: remove };
}

/** How the request's `accept-encoding` decided. */
export type AcceptVerdict = "used" | "wildcard" | "identity" | "overshadowed" | "not_valid" | "no_header";

/** A compressor filter of the stream's chain, as {@link negotiate} weighs it. */
export interface RegisteredCompressor {
  /** Its `content-encoding` token. */
  readonly encoding: string;
  /** Its `choose_first`. */
  readonly chooseFirst: boolean;
}

/**
 * Envoy's encoding choice among the compressor filters of a stream (`registered`, in chain order; by default just
 * `mine`): each encoding weighs the q of its own `accept-encoding` entry, else that of `*`; `identity` only its own.
 * The highest q wins; on a tie a `choose_first` compressor (the last such), then the entry earlier in the header,
 * then the filter earlier in the chain. q=0, nothing acceptable, or `identity` winning means no compression;
 * another filter's encoding winning means this one is `overshadowed`.
 */
export function negotiate(
  acceptEncoding: string | undefined,
  mine: string,
  registered: readonly RegisteredCompressor[] = [{ encoding: mine, chooseFirst: false }],
): AcceptVerdict {
  if (acceptEncoding === undefined) return "no_header";
  const explicit = new Map<string, { q: number; at: number }>();
  let at = 0;
  for (const part of acceptEncoding.split(",")) {
    const [tok, ...params] = part.split(";");
    const token = tok!.trim().toLowerCase();
    if (token === "") continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q) || q < 0 || q > 1) continue;
    if (!explicit.has(token)) explicit.set(token, { q, at: at++ });
  }
  type Cand = { encoding: string; q: number; at: number; first: boolean; order: number; wildcard: boolean };
  let best: Cand | undefined;
  const better = (c: Cand, b: Cand | undefined): boolean => {
    if (b === undefined || c.q !== b.q) return b === undefined || c.q > b.q;
    if (c.first !== b.first) return c.first;
    if (c.first) return c.order > b.order; // the last choose_first compressor
    if (c.at !== b.at) return c.at < b.at;
    return c.order < b.order;
  };
  const star = explicit.get("*");
  registered.forEach((r, order) => {
    const e = explicit.get(r.encoding) ?? star;
    if (e === undefined) return;
    const c = { encoding: r.encoding, q: e.q, at: e.at, first: r.chooseFirst, order, wildcard: e === star };
    if (better(c, best)) best = c;
  });
  const id = explicit.get("identity");
  if (id !== undefined) {
    const c = { encoding: "identity", q: id.q, at: id.at, first: false, order: registered.length, wildcard: false };
    if (better(c, best)) best = c;
  }
  const b = best as Cand | undefined;
  if (b === undefined || b.q === 0) return "not_valid";
  if (b.encoding === "identity") return "identity";
  if (b.encoding !== mine) return "overshadowed";
  return b.wildcard ? "wildcard" : "used";
}

/**
 * The compressor filters of each stream, in chain order (registered in `decodeHeaders`), so that the filters of
 * one chain make one choice. Per stream, keyed by its StreamInfo: entries go with the stream.
 */
const streamCompressors = new WeakMap<object, RegisteredCompressor[]>();

/** The stats of one direction (the response's at the filter's scope, the request's under `request.`). */
const DIRECTION_STATS = ["compressed", "not_compressed", "total_uncompressed_bytes", "total_compressed_bytes"] as const;
type DirectionStats = Counters<typeof DIRECTION_STATS[number]>;

/** The stats at the filter's scope: the response direction's, then the response-only ones. */
const RESPONSE_STATS = [
  ...DIRECTION_STATS,
  "no_accept_header",
  "header_identity",
  "header_compressor_used",
  "header_compressor_overshadowed",
  "header_wildcard",
  "header_not_valid",
  "content_length_too_small",
  "not_compressed_etag",
] as const;

type CompressorStats = Counters<typeof RESPONSE_STATS[number]> & { readonly request: DirectionStats };

/** The stat each {@link AcceptVerdict} counts. */
const VERDICT_STATS: { readonly [v in AcceptVerdict]: typeof RESPONSE_STATS[number] } = {
  no_header: "no_accept_header",
  identity: "header_identity",
  not_valid: "header_not_valid",
  wildcard: "header_wildcard",
  overshadowed: "header_compressor_overshadowed",
  used: "header_compressor_used",
};

function contentTypeAllowed(h: HeaderMap, allowed: ReadonlySet<string>): boolean {
  const t = mediaType(h.get("content-type"));
  return t === undefined || allowed.has(t);
}

function isUpgrade(h: HeaderMap): boolean {
  const c = h.getJoined("connection");
  return h.has("upgrade") && c !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(c);
}

/** The per-stream compressor. */
export class CompressorFilter implements StreamFilter {
  readonly #cfg: CompressorConfig;
  readonly #cb: StreamFilterCallbacks;
  readonly #stats: CompressorStats;
  readonly #perRoute: (cb: StreamFilterCallbacks) => CompressorPerRoute | undefined;
  #acceptEncoding: string | undefined;
  #isHead = false;
  #off = false;
  #req: FilterBodyCodec | undefined;
  #res: FilterBodyCodec | undefined;

  constructor(
    cfg: CompressorConfig,
    cb: StreamFilterCallbacks,
    stats: CompressorStats,
    perRoute: (cb: StreamFilterCallbacks) => CompressorPerRoute | undefined,
  ) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#stats = stats;
    this.#perRoute = perRoute;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const pr = this.#perRoute(this.#cb);
    if (pr?.disabled) {
      this.#off = true;
      return "continue";
    }
    const cfg = this.#cfg;
    this.#acceptEncoding = headers.getJoined("accept-encoding");
    const info = this.#cb.streamInfo;
    let list = streamCompressors.get(info);
    if (list === undefined) streamCompressors.set(info, list = []);
    list.push({ encoding: cfg.library.encoding, chooseFirst: cfg.chooseFirst });
    this.#isHead = headers.get(":method") === "HEAD";
    if (pr?.removeAcceptEncodingHeader ?? cfg.response.removeAcceptEncodingHeader) headers.remove("accept-encoding");
    const rq = cfg.request;
    if (endStream || !flagEnabled(rq)) return "continue";
    const len = Number(headers.get("content-length") ?? NaN);
    const te = headers.getJoined("transfer-encoding");
    if (
      Number.isFinite(len) && len >= rq.minContentLength && contentTypeAllowed(headers, rq.contentTypes) &&
      !headers.has("content-encoding") && !(te !== undefined && /gzip|br|zstd|deflate|compress/i.test(te))
    ) {
      headers.remove("content-length");
      headers.set("content-encoding", cfg.library.encoding);
      const st = this.#stats.request;
      st.compressed.inc();
      this.#req = new FilterBodyCodec(cfg.library, this.#cb, {
        decode: true,
        compress: true,
        expectedLength: len,
        onEnd: (bytesIn, bytesOut) => {
          st.total_uncompressed_bytes.inc(bytesIn);
          st.total_compressed_bytes.inc(bytesOut);
        },
        onError: () => this.#cb.resetStream(),
      });
    } else {
      this.#stats.request.not_compressed.inc();
    }
    return "continue";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    return this.#req?.data(data, endStream) ?? "continue";
  }

  decodeTrailers(_trailers: HeaderMap): FilterStatus {
    return this.#req?.trailers() ?? "continue";
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const cfg = this.#cfg.response;
    if (this.#off || endStream || this.#isHead || !flagEnabled(cfg)) return "continue";
    const st = this.#stats;
    const lenV = headers.get("content-length");
    if (lenV !== undefined && Number(lenV) < cfg.minContentLength) {
      st.content_length_too_small.inc();
      st.not_compressed.inc();
      return "continue";
    }
    if (cfg.disableOnEtagHeader && headers.has("etag")) {
      st.not_compressed_etag.inc();
      st.not_compressed.inc();
      return "continue";
    }
    const compressible = !isUpgrade(headers) && contentTypeAllowed(headers, cfg.contentTypes) &&
      !hasNoTransform(headers.getJoined("cache-control")) && !headers.has("content-encoding");
    if (!compressible) {
      st.not_compressed.inc();
      return "continue";
    }
    const vary = headers.getJoined("vary");
    if (vary === undefined) headers.set("vary", "accept-encoding");
    else if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(vary)) headers.set("vary", `${vary}, accept-encoding`);
    const enc = this.#cfg.library.encoding;
    const verdict = negotiate(this.#acceptEncoding, enc, streamCompressors.get(this.#cb.streamInfo));
    st[VERDICT_STATS[verdict]].inc();
    const te = headers.getJoined("transfer-encoding");
    if ((verdict !== "used" && verdict !== "wildcard") || (te !== undefined && /gzip|br|zstd|deflate/i.test(te))) {
      st.not_compressed.inc();
      return "continue";
    }
    st.compressed.inc();
    headers.remove("content-length");
    headers.set("content-encoding", this.#cfg.library.encoding);
    const etag = headers.get("etag");
    if (etag !== undefined && !etag.startsWith("W/")) headers.set("etag", `W/${etag}`);
    const len = lenV === undefined ? NaN : Number(lenV);
    this.#res = new FilterBodyCodec(this.#cfg.library, this.#cb, {
      decode: false,
      compress: true,
      ...(Number.isFinite(len) ? { expectedLength: len } : {}),
      onEnd: (bytesIn, bytesOut) => {
        st.total_uncompressed_bytes.inc(bytesIn);
        st.total_compressed_bytes.inc(bytesOut);
      },
      onError: () => this.#cb.resetStream(),
    });
    return "continue";
  }

  encodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    return this.#res?.data(data, endStream) ?? "continue";
  }

  encodeTrailers(_trailers: HeaderMap): FilterStatus {
    return this.#res?.trailers() ?? "continue";
  }

  onDestroy(): void {
    this.#req?.destroy();
    this.#res?.destroy();
  }
}

/** The config-time step: stats and the per-route config cache, shared by the streams of this config. */
export function createCompressorFactory(
  config: CompressorConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const s = context.scope.scope(`compressor.${config.library.name}.${config.library.statPrefix}`);
  const stats: CompressorStats = {
    ...counters(s, RESPONSE_STATS),
    request: counters(s.scope("request"), DIRECTION_STATS),
  };
  const lookup = cachedPerRoute(NAME, parseCompressorPerRoute);
  const perRoute = (cb: StreamFilterCallbacks): CompressorPerRoute | undefined => lookup(cb.route);
  return (callbacks) => new CompressorFilter(config, callbacks, stats, perRoute);
}

/** The compressor filter factory. */
export const compressorFilterFactory: HttpFilterFactory<CompressorConfig> = {
  name: NAME,
  configTypes: [COMPRESSOR_TYPE],
  parseConfig: parseCompressorConfig,
  createFactory: createCompressorFactory,
  create(config, callbacks, context) {
    return createCompressorFactory(config, context)(callbacks);
  },
};
