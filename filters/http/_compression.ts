/**
 * The compression libraries of the compressor and decompressor filters (Envoy's `envoy.compression.*` extensions):
 * gzip, brotli and zstd, all from Deno's built-in `node:zlib` (native zlib, brotli and zstd; no third-party code).
 * Each library config is parsed from its `@type`; a {@link CodecStream} then turns a body, chunk by chunk, into
 * its compressed (or decompressed) form. A body that arrives whole in one chunk takes the synchronous one-shot path
 * (`gzipSync`, ...), which is several times faster than the stream and answers within the filter hook.
 *
 * @module
 */
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import { ConfigError } from "../../lib/api/errors.ts";
import { type ObjReader, typedConfig } from "../../lib/config/reader.ts";
import type { FilterStatus, StreamFilterCallbacks } from "../../lib/api/stream_filter.ts";
import { concatBytes } from "./_bytes.ts";

/** The `@type` URLs of the compressor libraries. */
export const GZIP_COMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip";
/** Brotli compressor `@type`. */
export const BROTLI_COMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli";
/** Zstd compressor `@type`. */
export const ZSTD_COMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd";
/** Gzip decompressor `@type`. */
export const GZIP_DECOMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip";
/** Brotli decompressor `@type`. */
export const BROTLI_DECOMPRESSOR_TYPE =
  "type.googleapis.com/envoy.extensions.compression.brotli.decompressor.v3.Brotli";
/** Zstd decompressor `@type`. */
export const ZSTD_DECOMPRESSOR_TYPE = "type.googleapis.com/envoy.extensions.compression.zstd.decompressor.v3.Zstd";

/** A `content-encoding` token Ferry can produce or undo. */
export type Encoding = "gzip" | "br" | "zstd";

/** A parsed compression library (`compressor_library` / `decompressor_library`). */
export interface CompressionLibrary {
  /** `compressor_library.name` (free text, part of the stat names). */
  readonly name: string;
  /** The `content-encoding` token. */
  readonly encoding: Encoding;
  /** The library's stat prefix, as Envoy's: `gzip`, `brotli`, `zstd`. */
  readonly statPrefix: string;
  /** Options for `node:zlib`. */
  readonly options: zlib.ZlibOptions | zlib.BrotliOptions | Record<string, unknown>;
  /** Decompressor: the most output bytes per input byte before the stream is treated as a bomb (gzip's ratio). */
  readonly maxInflateRatio: number;
}

const GZIP_LEVELS: Record<string, number> = {
  DEFAULT_COMPRESSION: 6,
  BEST_SPEED: 1,
  BEST_COMPRESSION: 9,
};
for (let i = 1; i <= 9; i++) GZIP_LEVELS[`COMPRESSION_LEVEL_${i}`] = i;
const GZIP_STRATEGIES: Record<string, number> = {
  DEFAULT_STRATEGY: zlib.constants.Z_DEFAULT_STRATEGY,
  FILTERED: zlib.constants.Z_FILTERED,
  HUFFMAN_ONLY: zlib.constants.Z_HUFFMAN_ONLY,
  RLE: zlib.constants.Z_RLE,
  FIXED: zlib.constants.Z_FIXED,
};
const BROTLI_MODES: Record<string, number> = {
  DEFAULT: zlib.constants.BROTLI_MODE_GENERIC,
  GENERIC: zlib.constants.BROTLI_MODE_GENERIC,
  TEXT: zlib.constants.BROTLI_MODE_TEXT,
  FONT: zlib.constants.BROTLI_MODE_FONT,
};
const ZSTD_STRATEGIES = [
  "DEFAULT",
  "FAST",
  "DFAST",
  "GREEDY",
  "LAZY",
  "LAZY2",
  "BTLAZY2",
  "BTOPT",
  "BTULTRA",
  "BTULTRA2",
] as const;

function chunkSize(o: ObjReader): number {
  return o.int("chunk_size", { min: 4096, max: 65536 }) ?? 4096;
}

/** Reads a TypedExtensionConfig: its `name`, and its `typed_config` (one of `types`) and that `@type`. */
function readExtension(o: ObjReader, types: readonly string[]): { name: string; t: ObjReader; type: unknown } {
  const name = o.str("name", { required: true });
  const path = o.at("typed_config");
  const raw = o.value("typed_config", { required: true });
  o.done();
  const t = typedConfig(raw, path, types);
  return { name, t, type: (raw as Record<string, unknown>)["@type"] };
}

/** Reads `compressor_library` (a TypedExtensionConfig): gzip, brotli or zstd with Envoy's defaults. */
export function parseCompressorLibrary(o: ObjReader): CompressionLibrary {
  const { name, t, type } = readExtension(o, [GZIP_COMPRESSOR_TYPE, BROTLI_COMPRESSOR_TYPE, ZSTD_COMPRESSOR_TYPE]);
  if (type === GZIP_COMPRESSOR_TYPE) {
    const memLevel = t.int("memory_level", { min: 1, max: 9 }) ?? 5;
    const level = GZIP_LEVELS[t.enumOf("compression_level", Object.keys(GZIP_LEVELS)) ?? "DEFAULT_COMPRESSION"]!;
    const strategy =
      GZIP_STRATEGIES[t.enumOf("compression_strategy", Object.keys(GZIP_STRATEGIES)) ?? "DEFAULT_STRATEGY"]!;
    const windowBits = t.int("window_bits", { min: 9, max: 15 }) ?? 12;
    const cs = chunkSize(t);
    t.done();
    return {
      name,
      encoding: "gzip",
      statPrefix: "gzip",
      options: { level, memLevel, strategy, windowBits, chunkSize: cs },
      maxInflateRatio: 0,
    };
  }
  if (type === BROTLI_COMPRESSOR_TYPE) {
    const c = zlib.constants;
    const quality = t.int("quality", { min: 0, max: 11 }) ?? 3;
    const mode = BROTLI_MODES[t.enumOf("encoder_mode", Object.keys(BROTLI_MODES)) ?? "DEFAULT"]!;
    const lgwin = t.int("window_bits", { min: 10, max: 24 }) ?? 18;
    const lgblock = t.int("input_block_bits", { min: 16, max: 24 }) ?? 24;
    const noLcm = t.bool("disable_literal_context_modeling") ?? false;
    const cs = chunkSize(t);
    t.done();
    return {
      name,
      encoding: "br",
      statPrefix: "brotli",
      options: {
        chunkSize: cs,
        params: {
          [c.BROTLI_PARAM_QUALITY]: quality,
          [c.BROTLI_PARAM_MODE]: mode,
          [c.BROTLI_PARAM_LGWIN]: lgwin,
          [c.BROTLI_PARAM_LGBLOCK]: lgblock,
          [c.BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING]: noLcm ? 1 : 0,
        },
      },
      maxInflateRatio: 0,
    };
  }
  const c = zlib.constants as unknown as Record<string, number>;
  const level = t.int("compression_level", { min: 1, max: 22 }) ?? 3;
  const checksum = t.bool("enable_checksum") ?? false;
  const strategy = ZSTD_STRATEGIES.indexOf(t.enumOf("strategy", ZSTD_STRATEGIES) ?? "DEFAULT");
  if (t.has("dictionary")) t.unsupported("dictionary", "is not supported (no zstd dictionaries in node:zlib)");
  const cs = chunkSize(t);
  t.done();
  const params: Record<number, number> = {
    [c["ZSTD_c_compressionLevel"]!]: level,
    [c["ZSTD_c_checksumFlag"]!]: checksum ? 1 : 0,
  };
  if (strategy > 0) params[c["ZSTD_c_strategy"]!] = strategy;
  return { name, encoding: "zstd", statPrefix: "zstd", options: { chunkSize: cs, params }, maxInflateRatio: 0 };
}

/** Reads `decompressor_library`: gzip (`window_bits`, `max_inflate_ratio`), brotli or zstd. */
export function parseDecompressorLibrary(o: ObjReader): CompressionLibrary {
  const { name, t, type } = readExtension(o, [
    GZIP_DECOMPRESSOR_TYPE,
    BROTLI_DECOMPRESSOR_TYPE,
    ZSTD_DECOMPRESSOR_TYPE,
  ]);
  if (type === GZIP_DECOMPRESSOR_TYPE) {
    // Envoy's default window is 15 (accepts any gzip stream); a smaller one rejects streams made with a larger one.
    const windowBits = t.int("window_bits", { min: 9, max: 15 }) ?? 15;
    const cs = chunkSize(t);
    const maxInflateRatio = t.int("max_inflate_ratio", { min: 1, max: 1032 }) ?? 100;
    t.done();
    return { name, encoding: "gzip", statPrefix: "gzip", options: { windowBits, chunkSize: cs }, maxInflateRatio };
  }
  if (type === BROTLI_DECOMPRESSOR_TYPE) {
    t.bool("disable_ring_buffer_reallocation");
    const cs = chunkSize(t);
    t.done();
    return { name, encoding: "br", statPrefix: "brotli", options: { chunkSize: cs }, maxInflateRatio: 0 };
  }
  if (t.has("dictionaries")) t.unsupported("dictionaries", "is not supported (no zstd dictionaries in node:zlib)");
  const cs = chunkSize(t);
  t.done();
  return { name, encoding: "zstd", statPrefix: "zstd", options: { chunkSize: cs }, maxInflateRatio: 0 };
}

type Transform = {
  on(ev: "data", cb: (b: Uint8Array) => void): void;
  on(ev: "end", cb: () => void): void;
  on(ev: "error", cb: (e: unknown) => void): void;
  write(b: Uint8Array): boolean;
  end(): void;
  destroy(): void;
};

function createTransform(lib: CompressionLibrary, compress: boolean): Transform {
  const z = zlib as unknown as Record<string, (o: unknown) => Transform>;
  const fn = compress
    ? { gzip: "createGzip", br: "createBrotliCompress", zstd: "createZstdCompress" }[lib.encoding]
    : { gzip: "createGunzip", br: "createBrotliDecompress", zstd: "createZstdDecompress" }[lib.encoding];
  // A 64 KiB output buffer: with zlib's 4 KiB (Envoy's chunk_size default) each 4 KiB of output is one stream
  // event, and gzip level 1 ran at 41 MB/s instead of 138 MB/s (64 KiB text body, 16 KiB input chunks).
  const o = lib.options as { chunkSize?: number };
  return z[fn]!({ ...lib.options, chunkSize: Math.max(o.chunkSize ?? 0, 65536) });
}

function oneShot(lib: CompressionLibrary, compress: boolean, data: Uint8Array): Uint8Array {
  const z = zlib as unknown as Record<string, (d: Uint8Array, o: unknown) => Uint8Array>;
  const fn = compress
    ? { gzip: "gzipSync", br: "brotliCompressSync", zstd: "zstdCompressSync" }[lib.encoding]
    : { gzip: "gunzipSync", br: "brotliDecompressSync", zstd: "zstdDecompressSync" }[lib.encoding];
  // The output buffer grows by chunkSize: zstd with 4 KiB took 14 ms for a 64 KiB text body, 1.4 ms with 64 KiB.
  const chunkSize = Math.max((lib.options as { chunkSize?: number }).chunkSize ?? 0, 65536);
  const opts = lib.maxInflateRatio > 0
    ? { ...lib.options, chunkSize, maxOutputLength: Math.max(1, data.length) * lib.maxInflateRatio }
    : { ...lib.options, chunkSize };
  return z[fn]!(data, opts);
}

const EMPTY = new Uint8Array(0);

/**
 * The largest body (with a known length) transformed in one synchronous pass: at gzip level 6 (~50 MB/s on one core
 * of the bench machine) it holds the event loop about 2.5 ms.
 */
export const ONE_SHOT_LIMIT = 128 * 1024;

function asBytes(b: Uint8Array): Uint8Array {
  return Buffer.isBuffer(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b;
}

/**
 * A body transformed chunk by chunk (compression or decompression). Output goes to `onOutput` in order, the last
 * call with `end` true; a failure (corrupt input, an inflate ratio over the limit) goes to `onError` once, after
 * which nothing more is emitted. Output may come synchronously from {@link push} (one-shot path) or later.
 */
export class CodecStream {
  readonly #lib: CompressionLibrary;
  readonly #compress: boolean;
  readonly #onOutput: (data: Uint8Array, end: boolean) => void;
  readonly #onError: (e: unknown) => void;
  #z: Transform | undefined;
  #in = 0;
  #out = 0;
  #failed = false;
  #closed = false;
  /** While the body is collected for one synchronous pass: its chunks; undefined once streaming. */
  #held: Uint8Array[] | undefined;
  #heldLimit = 0;

  constructor(
    lib: CompressionLibrary,
    opts: {
      compress: boolean;
      onOutput: (data: Uint8Array, end: boolean) => void;
      onError: (e: unknown) => void;
      /**
       * The body's length when known (`content-length`): a body of at most {@link ONE_SHOT_LIMIT} bytes is collected
       * and transformed in one synchronous pass at its end, several times cheaper than the stream (bodies of unknown
       * length stream, so a slow, long-lived response is never held back).
       */
      expectedLength?: number;
    },
  ) {
    if (opts.expectedLength !== undefined && opts.expectedLength <= ONE_SHOT_LIMIT) {
      this.#held = [];
      this.#heldLimit = ONE_SHOT_LIMIT;
    }
    this.#lib = lib;
    this.#compress = opts.compress;
    this.#onOutput = opts.onOutput;
    this.#onError = opts.onError;
  }

  /** Bytes taken in so far. */
  get bytesIn(): number {
    return this.#in;
  }

  /** Bytes given out so far. */
  get bytesOut(): number {
    return this.#out;
  }

  /** Takes the next chunk of the body; `end` on the last one (which may be empty). */
  push(data: Uint8Array, end: boolean): void {
    if (this.#failed || this.#closed) return;
    this.#in += data.length;
    if (this.#held !== undefined) {
      if (this.#in <= this.#heldLimit) {
        if (data.length > 0) this.#held.push(end ? data : data.slice());
        if (!end) return;
        const all = this.#held;
        this.#held = undefined;
        data = all.length === 1 ? all[0]! : concatBytes(all);
      } else {
        // Longer than announced: stream from here on, starting with what was collected.
        const held = this.#held;
        this.#held = undefined;
        const z = this.#start();
        for (const c of held) z.write(c);
      }
    }
    if (this.#z === undefined && end) {
      // The whole body in one call: one synchronous pass.
      let out: Uint8Array;
      try {
        out = asBytes(oneShot(this.#lib, this.#compress, data));
      } catch (e) {
        this.#fail(e);
        return;
      }
      this.#closed = true;
      this.#out += out.length;
      this.#onOutput(out, true);
      return;
    }
    const z = this.#z ?? this.#start();
    if (data.length > 0) z.write(data.slice());
    if (end) {
      this.#closed = true;
      z.end();
    }
  }

  #start(): Transform {
    const z = createTransform(this.#lib, this.#compress);
    this.#z = z;
    z.on("data", (b) => {
      if (this.#failed) return;
      const bytes = asBytes(b);
      this.#out += bytes.length;
      if (this.#lib.maxInflateRatio > 0 && this.#out > Math.max(1, this.#in) * this.#lib.maxInflateRatio) {
        this.#fail(new Error(`inflate ratio over ${this.#lib.maxInflateRatio}`));
        return;
      }
      this.#onOutput(bytes, false);
    });
    z.on("end", () => {
      if (!this.#failed) this.#onOutput(EMPTY, true);
    });
    z.on("error", (e) => this.#fail(e));
    return z;
  }

  #fail(e: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#z?.destroy();
    this.#onError(e);
  }

  /** Stops the stream (the HTTP stream ended early); no more output. */
  destroy(): void {
    this.#failed = true;
    this.#z?.destroy();
  }
}

/**
 * One direction of a stream's body through a {@link CodecStream}, as the compressor and decompressor filters pass
 * it on: each data chunk goes in ("stop-no-buffer"), the output goes back into the filter chain (decoded or
 * encoded side), and trailers are held ("stop") until the last output has gone, then the chain continues.
 */
export class FilterBodyCodec {
  readonly #cb: StreamFilterCallbacks;
  readonly #decode: boolean;
  readonly #stream: CodecStream;
  #trailersHeld = false;
  #destroyed = false;

  constructor(
    lib: CompressionLibrary,
    cb: StreamFilterCallbacks,
    opts: {
      /** The request (decode) side, else the response (encode) side. */
      decode: boolean;
      compress: boolean;
      /** See {@link CodecStream}'s `expectedLength`. */
      expectedLength?: number;
      /** Called once, before the last output goes on, with the stream's byte counts. */
      onEnd: (bytesIn: number, bytesOut: number) => void;
      onError: () => void;
    },
  ) {
    this.#cb = cb;
    this.#decode = opts.decode;
    this.#stream = new CodecStream(lib, {
      compress: opts.compress,
      ...(opts.expectedLength === undefined ? {} : { expectedLength: opts.expectedLength }),
      onOutput: (d, end) => {
        if (end) opts.onEnd(this.#stream.bytesIn, this.#stream.bytesOut);
        if (end && this.#trailersHeld) {
          if (d.length > 0) this.#inject(d, false);
          this.#resume();
        } else this.#inject(d, end);
      },
      onError: opts.onError,
    });
  }

  /** A data hook: takes the chunk in. */
  data(data: Uint8Array, endStream: boolean): FilterStatus {
    this.#stream.push(data, endStream);
    return "stop-no-buffer";
  }

  /** A trailers hook: ends the body and holds the trailers until its last output. */
  trailers(): FilterStatus {
    this.#trailersHeld = true;
    this.#stream.push(new Uint8Array(0), true);
    return "stop";
  }

  /** Stops the codec (the HTTP stream is gone); held trailers stay held. */
  destroy(): void {
    this.#destroyed = true;
    this.#stream.destroy();
  }

  #inject(d: Uint8Array, end: boolean): void {
    if (this.#decode) this.#cb.injectDecodedDataToFilterChain(d, end);
    else this.#cb.injectEncodedDataToFilterChain(d, end);
  }

  /**
   * Lets the held trailers go after the last body output. Deferred to a microtask: the output may come from within
   * the trailers hook itself (one-shot path), before it returned "stop" and the trailers were held.
   */
  #resume(): void {
    queueMicrotask(() => {
      if (this.#destroyed) return;
      if (this.#decode) this.#cb.continueDecoding();
      else this.#cb.continueEncoding();
    });
  }
}

/** Throws unless `s` is a media type (`type/subtype`). */
export function checkContentType(s: string, path: string): string {
  if (!/^[\w.+-]+\/[\w.+*-]+$/.test(s.trim())) throw new ConfigError(path, `"${s}" is not a media type`);
  return s.trim().toLowerCase();
}

/** The media type of a `content-type` value: lower-cased, parameters dropped. */
export function mediaType(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const i = v.indexOf(";");
  return (i < 0 ? v : v.slice(0, i)).trim().toLowerCase();
}

/** True when a `cache-control` value has the `no-transform` directive. */
export function hasNoTransform(v: string | undefined): boolean {
  return v !== undefined && /(^|,)\s*no-transform\s*(,|$)/i.test(v);
}
