/**
 * `envoy.filters.http.decompressor`: undoes the `decompressor_library`'s encoding (gzip, brotli or zstd, from Deno's
 * built-in `node:zlib`) on request bodies going upstream and on response bodies coming back, as Envoy's.
 *
 * A body is decompressed when its direction is enabled (both are by default), the first `content-encoding` token is
 * the library's, and there is no `cache-control: no-transform` (unless `ignore_no_transform_header`). Then that
 * token leaves `content-encoding` (the header goes when it was the only one) and `content-length` goes. With
 * `request_direction_config.advertise_accept_encoding` (default true) and response decompression enabled, the
 * library's encoding is appended to the request's `accept-encoding`, so the upstream may compress. A gzip body that
 * inflates more than `max_inflate_ratio` times its size (100) is treated as corrupt; a corrupt body resets the
 * stream.
 *
 * Stats under `http.<stat_prefix>.decompressor.<library name>.<gzip|brotli|zstd>.{request,response}.`:
 * `decompressed`, `not_decompressed`, `total_compressed_bytes`, `total_uncompressed_bytes`, `decompression_error`.
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
import { ObjReader } from "../../lib/config/reader.ts";
import { type CompressionLibrary, FilterBodyCodec, hasNoTransform, parseDecompressorLibrary } from "./_compression.ts";
import { flagEnabled, parseFeatureFlag } from "./_feature_flag.ts";
import { type Counters, counters } from "./_stats.ts";

/** The decompressor filter's `@type`. */
export const DECOMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor";

/** One direction of the decompressor config. */
export interface DecompressDirection {
  /** `common_config.enabled.default_value` (default true). */
  readonly enabled: boolean;
  /** `common_config.enabled.runtime_key`, read per request from `layered_runtime`. */
  readonly enabledKey: string | undefined;
  /** `common_config.ignore_no_transform_header`. */
  readonly ignoreNoTransform: boolean;
}

/** Parsed decompressor config. */
export interface DecompressorConfig {
  /** The `decompressor_library`. */
  readonly library: CompressionLibrary;
  /** `request_direction_config`. */
  readonly request: DecompressDirection & { readonly advertiseAcceptEncoding: boolean };
  /** `response_direction_config`. */
  readonly response: DecompressDirection;
}

function parseDirection(o: ObjReader | undefined): DecompressDirection {
  if (!o) return { enabled: true, enabledKey: undefined, ignoreNoTransform: false };
  const flag = parseFeatureFlag(o.obj("enabled"), true);
  const ignoreNoTransform = o.bool("ignore_no_transform_header") ?? false;
  o.done();
  return { ...flag, ignoreNoTransform };
}

function parseDecompressorConfig(raw: Record<string, unknown>, path: string): DecompressorConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const library = parseDecompressorLibrary(o.obj("decompressor_library", { required: true })!);
  const rq = o.obj("request_direction_config");
  const request = { ...parseDirection(rq?.obj("common_config")), advertiseAcceptEncoding: true };
  if (rq) {
    request.advertiseAcceptEncoding = rq.bool("advertise_accept_encoding") ?? true;
    rq.done();
  }
  const rs = o.obj("response_direction_config");
  const response = parseDirection(rs?.obj("common_config"));
  rs?.done();
  o.done();
  return { library, request, response };
}

/** The stats of one direction (`decompressor.<name>.<prefix>.request.*` / `response.*`). */
const DIRECTION_STATS = [
  "decompressed",
  "not_decompressed",
  "total_compressed_bytes",
  "total_uncompressed_bytes",
  "decompression_error",
] as const;
type DirectionStats = Counters<typeof DIRECTION_STATS[number]>;

/**
 * If the first `content-encoding` token is `encoding` (and `no-transform` does not forbid it), removes it (and
 * `content-length`) and returns true.
 */
export function takeContentEncoding(h: HeaderMap, encoding: string, ignoreNoTransform: boolean): boolean {
  const ce = h.getJoined("content-encoding");
  if (ce === undefined) return false;
  const comma = ce.indexOf(",");
  const first = (comma < 0 ? ce : ce.slice(0, comma)).trim().toLowerCase();
  if (first !== encoding) return false;
  if (!ignoreNoTransform && hasNoTransform(h.getJoined("cache-control"))) return false;
  const rest = comma < 0 ? "" : ce.slice(comma + 1).trim();
  if (rest === "") h.remove("content-encoding");
  else h.set("content-encoding", rest);
  h.remove("content-length");
  return true;
}

/** `{expectedLength}` from `content-length` (the compressed size: a small body is inflated in one pass). */
function lengthOf(h: HeaderMap): { expectedLength?: number } {
  const v = h.get("content-length");
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? { expectedLength: n } : {};
}

/** The per-stream decompressor. */
export class DecompressorFilter implements StreamFilter {
  readonly #cfg: DecompressorConfig;
  readonly #cb: StreamFilterCallbacks;
  readonly #req: DirectionStats;
  readonly #res: DirectionStats;
  #reqCodec: FilterBodyCodec | undefined;
  #resCodec: FilterBodyCodec | undefined;

  constructor(cfg: DecompressorConfig, cb: StreamFilterCallbacks, stats: { req: DirectionStats; res: DirectionStats }) {
    this.#cfg = cfg;
    this.#cb = cb;
    this.#req = stats.req;
    this.#res = stats.res;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const cfg = this.#cfg;
    const enc = cfg.library.encoding;
    if (cfg.request.advertiseAcceptEncoding && flagEnabled(cfg.response)) {
      const ae = headers.getJoined("accept-encoding");
      if (ae === undefined || ae.trim() === "") headers.set("accept-encoding", enc);
      else if (!ae.split(",").some((t) => t.split(";")[0]!.trim().toLowerCase() === enc)) {
        headers.set("accept-encoding", `${ae},${enc}`);
      }
    }
    if (endStream || !flagEnabled(cfg.request)) return "continue";
    this.#reqCodec = this.#start(headers, cfg.request, this.#req, true);
    return "continue";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    return this.#reqCodec?.data(data, endStream) ?? "continue";
  }

  decodeTrailers(_trailers: HeaderMap): FilterStatus {
    return this.#reqCodec?.trailers() ?? "continue";
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): FilterStatus {
    const cfg = this.#cfg;
    if (endStream || !flagEnabled(cfg.response)) return "continue";
    this.#resCodec = this.#start(headers, cfg.response, this.#res, false);
    return "continue";
  }

  encodeData(data: Uint8Array, endStream: boolean): FilterStatus {
    return this.#resCodec?.data(data, endStream) ?? "continue";
  }

  encodeTrailers(_trailers: HeaderMap): FilterStatus {
    return this.#resCodec?.trailers() ?? "continue";
  }

  /** Takes this filter's encoding off the headers and starts a codec for the body, or counts not_decompressed. */
  #start(
    headers: HeaderMap,
    dir: DecompressDirection,
    st: DirectionStats,
    decode: boolean,
  ): FilterBodyCodec | undefined {
    const known = lengthOf(headers);
    if (!takeContentEncoding(headers, this.#cfg.library.encoding, dir.ignoreNoTransform)) {
      st.not_decompressed.inc();
      return undefined;
    }
    st.decompressed.inc();
    return new FilterBodyCodec(this.#cfg.library, this.#cb, {
      decode,
      compress: false,
      ...known,
      onEnd: (bytesIn, bytesOut) => {
        st.total_compressed_bytes.inc(bytesIn);
        st.total_uncompressed_bytes.inc(bytesOut);
      },
      onError: () => {
        st.decompression_error.inc();
        this.#cb.resetStream();
      },
    });
  }

  onDestroy(): void {
    this.#reqCodec?.destroy();
    this.#resCodec?.destroy();
  }
}

/** The config-time step: the stats of this config, shared by its streams. */
export function createDecompressorFactory(
  config: DecompressorConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const s = context.scope.scope(`decompressor.${config.library.name}.${config.library.statPrefix}`);
  const stats = {
    req: counters(s.scope("request"), DIRECTION_STATS),
    res: counters(s.scope("response"), DIRECTION_STATS),
  };
  return (callbacks) => new DecompressorFilter(config, callbacks, stats);
}

/** The decompressor filter factory. */
export const decompressorFilterFactory: HttpFilterFactory<DecompressorConfig> = {
  name: "envoy.filters.http.decompressor",
  configTypes: [DECOMPRESSOR_TYPE],
  parseConfig: parseDecompressorConfig,
  createFactory: createDecompressorFactory,
  create(config, callbacks, context) {
    return createDecompressorFactory(config, context)(callbacks);
  },
};
