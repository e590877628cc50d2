/**
 * `envoy.filters.http.buffer`: buffers the whole request before it goes on, answering `413 Payload Too Large` when
 * the body passes `max_request_bytes`; a request without `content-length` gets one (as in Envoy). A
 * `BufferPerRoute` entry in `typed_per_filter_config` disables the filter (`disabled: true`) or replaces its
 * limit (`buffer`). Stats `http.<prefix>.buffer.rq_too_large`.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { Counter } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { DISABLED, PerRouteConfigs } from "./_per_route.ts";

/** The buffer filter's `@type`. */
export const BUFFER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer";
/** The per-route entry's `@type`. */
export const BUFFER_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

const NAME = "envoy.filters.http.buffer";

/** Parsed `Buffer`. */
export interface BufferConfig {
  /** `max_request_bytes` (required, > 0). */
  readonly maxRequestBytes: number;
}

/** Parsed `BufferPerRoute`: disabled, or a replacement config. */
export type BufferPerRoute = { readonly disabled: true } | { readonly disabled: false; readonly config: BufferConfig };

function readBuffer(o: ObjReader): BufferConfig {
  o.skip("@type");
  const v = o.value("max_request_bytes", { required: true });
  let n: number | undefined;
  if (v !== null && typeof v === "object") n = new ObjReader(v, o.at("max_request_bytes")).int("value");
  else n = o.int("max_request_bytes");
  if (n === undefined || n <= 0 || n > 0xffff_ffff) {
    throw new ConfigError(o.at("max_request_bytes"), "must be an integer in [1, 4294967295]");
  }
  o.done();
  return { maxRequestBytes: n };
}

function readBufferPerRoute(o: ObjReader): BufferPerRoute {
  const which = o.oneOf(["disabled", "buffer"] as const, { required: true });
  let r: BufferPerRoute;
  if (which === "disabled") {
    if (o.bool("disabled") !== true) throw new ConfigError(o.at("disabled"), "must be true");
    r = { disabled: true };
  } else {
    r = { disabled: false, config: readBuffer(o.obj("buffer")!) };
  }
  o.done();
  return r;
}

/** The per-stream buffer filter. */
export class BufferFilter implements StreamFilter {
  readonly #limitFor: (cb: StreamFilterCallbacks) => number;
  #limit = 0;
  readonly #cb: StreamFilterCallbacks;
  readonly #tooLarge: Counter;
  #headers: HeaderMap | undefined;
  #bytes = 0;
  #active = false;

  /** `limitFor` gives the stream's limit (0: disabled) once its route is known, in `decodeHeaders`. */
  constructor(limitFor: (cb: StreamFilterCallbacks) => number, cb: StreamFilterCallbacks, tooLarge: Counter) {
    this.#limitFor = limitFor;
    this.#cb = cb;
    this.#tooLarge = tooLarge;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): FilterResult {
    if (endStream) return "continue";
    this.#limit = this.#limitFor(this.#cb);
    if (this.#limit === 0) return "continue";
    const cl = headers.get("content-length");
    if (cl !== undefined && Number(cl) > this.#limit) return this.#reject();
    this.#active = true;
    this.#headers = headers;
    return "stop";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterResult {
    if (!this.#active) return "continue";
    this.#bytes += data.length;
    if (this.#bytes > this.#limit) return this.#reject();
    if (!endStream) return "stop-and-buffer";
    this.#finish();
    // The held headers and the buffered body go on together.
    return Promise.resolve("continue");
  }

  decodeTrailers(_trailers: HeaderMap): FilterResult {
    if (!this.#active) return "continue";
    this.#finish();
    return Promise.resolve("continue");
  }

  #finish(): void {
    this.#active = false;
    const h = this.#headers;
    if (h && !h.has("content-length") && !h.has("transfer-encoding")) h.set("content-length", String(this.#bytes));
  }

  #reject(): FilterResult {
    this.#active = false;
    this.#tooLarge.inc();
    this.#cb.sendLocalReply(413, "Payload Too Large", { details: "request_payload_too_large" });
    return "stop";
  }
}

/** The config-time step: the stat and the cache of per-route entries. */
export function createBufferFactory(
  config: BufferConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const tooLarge = context.scope.scope("buffer").counter("rq_too_large");
  const perRoute = new PerRouteConfigs(NAME, [BUFFER_PER_ROUTE_TYPE], readBufferPerRoute);
  const limitFor = (cb: StreamFilterCallbacks): number => {
    const r = perRoute.lookup(cb);
    if (r === undefined) return config.maxRequestBytes;
    return r === DISABLED || r.disabled ? 0 : r.config.maxRequestBytes;
  };
  return (callbacks) => new BufferFilter(limitFor, callbacks, tooLarge);
}

/** The buffer filter factory. */
export const bufferFilterFactory: HttpFilterFactory<BufferConfig> = {
  name: NAME,
  configTypes: [BUFFER_TYPE],
  parseConfig: (raw, path) => readBuffer(new ObjReader(raw, path)),
  createFactory: createBufferFactory,
  create(config, callbacks, context) {
    return createBufferFactory(config, context)(callbacks);
  },
};
