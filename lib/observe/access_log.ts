/**
 * Access logs: Envoy's `access_log` entries (file, stdout, stderr sinks; text and JSON formats; the common
 * filters) parsed once at config time, and loggers that format a {@link StreamInfo} and hand the line to a
 * buffered sink. Writing never throws into the data path and never blocks it: lines are buffered and written
 * asynchronously at least every second or every 64 KiB.
 *
 * @example
 * ```ts
 * const configs = parseAccessLogs(raw.access_log, "static_resources.listeners[0].access_log");
 * const loggers = configs.map((c) => createAccessLogger(c));
 * for (const l of loggers) l.log(info); // at stream end
 * await defaultAccessLogManager.close(); // at shutdown
 * ```
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { AccessLogger, ResponseFlag, StreamInfo } from "../api/stream_info.ts";
import { describe, joinPath, ObjReader } from "../config/reader.ts";
import { Registry } from "../config/registry.ts";
import {
  type AccessLogFormatter,
  compileJsonFormat,
  compileTextFormat,
  DEFAULT_ACCESS_LOG_FORMAT,
  RESPONSE_FLAGS,
} from "./access_log_format.ts";
import { getLogger } from "./log.ts";

export { DEFAULT_ACCESS_LOG_FORMAT } from "./access_log_format.ts";
export type { AccessLogFormatter } from "./access_log_format.ts";

/** `@type` of the file access logger. */
export const FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
/** `@type` of the stdout access logger. */
export const STDOUT_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
/** `@type` of the stderr access logger. */
export const STDERR_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

const KNOWN_UNSUPPORTED_TYPES = [
  "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
  "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig",
  "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
  "type.googleapis.com/envoy.extensions.access_loggers.fluentd.v3.FluentdAccessLogConfig",
  "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog",
];

/** Where lines go. */
export type AccessLogSinkConfig = { kind: "file"; path: string } | { kind: "stdout" } | { kind: "stderr" };

/** A predicate over a finished stream (Envoy's `AccessLogFilter`). */
export type AccessLogFilter = (info: StreamInfo) => boolean;

/** One parsed `access_log` entry. */
export interface AccessLogConfig {
  /** The entry's `name` (informational). */
  readonly name: string;
  readonly sink: AccessLogSinkConfig;
  /** The compiled format. */
  readonly formatter: AccessLogFormatter;
  /** `log_format.content_type`, if set. */
  readonly contentType?: string;
  /** Only streams for which this returns true are logged. */
  readonly filter?: AccessLogFilter;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

function readDataSourceString(o: ObjReader): string {
  const which = o.oneOf(["inline_string", "inline_bytes", "filename", "environment_variable"] as const, {
    required: true,
  });
  let s: string;
  switch (which!) {
    case "inline_string":
      s = o.str("inline_string")!;
      break;
    case "inline_bytes": {
      const b = o.str("inline_bytes")!;
      try {
        s = new TextDecoder().decode(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
      } catch {
        throw new ConfigError(o.at("inline_bytes"), "is not valid base64");
      }
      break;
    }
    case "filename": {
      const f = o.str("filename")!;
      try {
        s = Deno.readTextFileSync(f);
      } catch (e) {
        throw new ConfigError(o.at("filename"), `cannot read ${JSON.stringify(f)}: ${(e as Error).message}`);
      }
      break;
    }
    case "environment_variable": {
      const name = o.str("environment_variable")!;
      const v = Deno.env.get(name);
      if (v === undefined) throw new ConfigError(o.at("environment_variable"), `${describe(name)} is not set`);
      s = v;
      break;
    }
  }
  o.done();
  return s;
}

/** Parses Envoy's `SubstitutionFormatString` (`log_format`). */
export function parseSubstitutionFormat(
  raw: unknown,
  path: string,
): { formatter: AccessLogFormatter; contentType?: string } {
  const o = new ObjReader(raw, path);
  const which = o.oneOf(["text_format", "json_format", "text_format_source"] as const, { required: true })!;
  const omitEmptyValues = o.bool("omit_empty_values") ?? false;
  const contentType = o.str("content_type");
  o.unsupported("formatters", "formatter extensions are not supported");
  let sortProperties = false;
  const jfo = o.obj("json_format_options");
  if (jfo !== undefined) {
    sortProperties = jfo.bool("sort_properties") ?? false;
    jfo.done();
  }
  let formatter: AccessLogFormatter;
  if (which === "text_format") {
    formatter = compileTextFormat(o.str("text_format")!, o.at("text_format"), { omitEmptyValues });
  } else if (which === "text_format_source") {
    const src = o.obj("text_format_source")!;
    const text = readDataSourceString(src);
    formatter = compileTextFormat(text, src.path, { omitEmptyValues });
  } else {
    formatter = compileJsonFormat(o.value("json_format"), o.at("json_format"), {
      omitEmptyValues,
      sortProperties,
      typed: true,
    });
  }
  o.done();
  return contentType === undefined ? { formatter } : { formatter, contentType };
}

type Op = "EQ" | "GE" | "LE" | "NE";

function parseComparison(o: ObjReader, key: string): { op: Op; value: number } {
  const c = o.obj("comparison", { required: true })!;
  const op = c.enumOf("op", ["EQ", "GE", "LE", "NE"] as const) ?? "EQ";
  const v = c.obj("value", { required: true })!;
  const value = v.int("default_value", { min: 0 }) ?? 0;
  // Ferry has no runtime layer: the key is accepted (Envoy requires it) and the default value always applies.
  v.str("runtime_key");
  v.done();
  c.done();
  void key;
  return { op, value };
}

function compare(op: Op, a: number, b: number): boolean {
  switch (op) {
    case "EQ":
      return a === b;
    case "GE":
      return a >= b;
    case "LE":
      return a <= b;
    case "NE":
      return a !== b;
  }
}

const FILTER_KINDS = [
  "status_code_filter",
  "duration_filter",
  "not_health_check_filter",
  "response_flag_filter",
  "and_filter",
  "or_filter",
  "traceable_filter",
  "runtime_filter",
  "header_filter",
  "grpc_status_filter",
  "extension_filter",
  "metadata_filter",
  "log_type_filter",
] as const;

function isHealthCheck(info: StreamInfo): boolean {
  // StreamInfo has no health-check mark yet; honour one if the connection manager sets it, else recognise
  // Envoy's own health checker by its user agent.
  if ((info as StreamInfo & { healthCheck?: boolean }).healthCheck === true) return true;
  return info.requestHeaders?.get("user-agent")?.startsWith("Envoy/HC") ?? false;
}

/** Parses Envoy's `AccessLogFilter`. */
export function parseAccessLogFilter(raw: unknown, path: string): AccessLogFilter {
  const o = new ObjReader(raw, path);
  const kind = o.oneOf(FILTER_KINDS, { required: true })!;
  let f: AccessLogFilter;
  switch (kind) {
    case "status_code_filter": {
      const s = o.obj(kind)!;
      const { op, value } = parseComparison(s, kind);
      s.done();
      f = (i) => compare(op, i.responseCode ?? 0, value);
      break;
    }
    case "duration_filter": {
      const s = o.obj(kind)!;
      const { op, value } = parseComparison(s, kind);
      s.done();
      f = (i) => i.durationMs !== undefined && compare(op, Math.floor(i.durationMs), value);
      break;
    }
    case "not_health_check_filter": {
      o.obj(kind)!.done();
      f = (i) => !isHealthCheck(i);
      break;
    }
    case "response_flag_filter": {
      const s = o.obj(kind)!;
      const flags = s.strs("flags");
      flags.forEach((fl, k) => {
        if (!(RESPONSE_FLAGS as readonly string[]).includes(fl)) {
          throw new ConfigError(joinPath(s.at("flags"), k), `${describe(fl)} is not a known response flag`);
        }
      });
      s.done();
      const set = new Set(flags as ResponseFlag[]);
      f = set.size === 0 ? (i) => i.responseFlags.length > 0 : (i) => i.responseFlags.some((x) => set.has(x));
      break;
    }
    case "and_filter":
    case "or_filter": {
      const s = o.obj(kind)!;
      const subs = s.arr("filters", (item, p) => parseAccessLogFilter(item, p), { nonEmpty: true });
      if (subs.length < 2) throw new ConfigError(s.at("filters"), "must have at least two entries");
      s.done();
      f = kind === "and_filter" ? (i) => subs.every((g) => g(i)) : (i) => subs.some((g) => g(i));
      break;
    }
    default:
      throw new ConfigError(o.at(kind), "is not supported");
  }
  o.done();
  return f;
}

/** What a sink factory reads from its typed config: where lines go, and the format when it has one. */
export interface ParsedAccessLogSink {
  readonly sink: AccessLogSinkConfig;
  readonly format?: { formatter: AccessLogFormatter; contentType?: string };
}

/**
 * An access-log sink as a registered factory (DESIGN §4): keyed by its typed-config `@type`, it reads its config
 * (`parse`, consuming the fields it knows from `o`; the caller rejects the rest) and opens its target when the first
 * logger of a thread needs it (`open`). `key` says which configs share one target (one handle per file).
 */
export interface AccessLogSinkFactory {
  /** The sink kind (`AccessLogSinkConfig.kind`). */
  readonly name: AccessLogSinkConfig["kind"];
  /** Accepted `@type` URLs. */
  readonly configTypes: readonly string[];
  parse(o: ObjReader, typeUrl: string): ParsedAccessLogSink;
  open(config: AccessLogSinkConfig): SinkTarget;
  /** Configs with the same key share one buffered sink. */
  key(config: AccessLogSinkConfig): string;
  /** Names the sink in error messages (`access log "/var/log/a.log"`). */
  describe(config: AccessLogSinkConfig): string;
}

const fileSinkFactory: AccessLogSinkFactory = {
  name: "file",
  configTypes: [FILE_ACCESS_LOG_TYPE],
  parse(o) {
    const sink: AccessLogSinkConfig = { kind: "file", path: o.str("path", { required: true }) };
    const which = o.oneOf(["format", "json_format", "typed_json_format", "log_format"] as const);
    if (which === "format") {
      const s = o.str("format")!;
      // An empty legacy format means the default, as in Envoy.
      return {
        sink,
        format: { formatter: compileTextFormat(s === "" ? DEFAULT_ACCESS_LOG_FORMAT : s, o.at("format")) },
      };
    }
    if (which === "json_format" || which === "typed_json_format") {
      const formatter = compileJsonFormat(o.value(which), o.at(which), { typed: which === "typed_json_format" });
      return { sink, format: { formatter } };
    }
    if (which === "log_format") {
      return { sink, format: parseSubstitutionFormat(o.value("log_format"), o.at("log_format")) };
    }
    return { sink };
  },
  open: (cfg) => fileTarget(cfg.kind === "file" ? cfg.path : ""),
  key: (cfg) => cfg.kind === "file" ? `file:${cfg.path}` : cfg.kind,
  describe: (cfg) => cfg.kind === "file" ? `access log "${cfg.path}"` : `access log ${cfg.kind}`,
};

function streamSinkFactory(kind: "stdout" | "stderr", typeUrl: string): AccessLogSinkFactory {
  return {
    name: kind,
    configTypes: [typeUrl],
    parse(o) {
      const sink: AccessLogSinkConfig = { kind };
      if (!o.has("log_format")) return { sink };
      return { sink, format: parseSubstitutionFormat(o.value("log_format"), o.at("log_format")) };
    },
    open: () => stdTarget(kind === "stdout" ? Deno.stdout : Deno.stderr),
    key: () => kind,
    describe: () => `access log ${kind}`,
  };
}

/** The built-in access-log sinks: file, stdout and stderr. */
export const builtinAccessLogSinks: readonly AccessLogSinkFactory[] = [
  fileSinkFactory,
  streamSinkFactory("stdout", STDOUT_ACCESS_LOG_TYPE),
  streamSinkFactory("stderr", STDERR_ACCESS_LOG_TYPE),
];

/** The built-in sinks by name and `@type` (a static list, registered once; duplicates are an error). */
const sinkRegistry = new Registry<AccessLogSinkFactory>("access log sink", builtinAccessLogSinks);

function parseTypedConfig(
  raw: unknown,
  path: string,
): { sink: AccessLogSinkConfig; formatter: AccessLogFormatter; contentType?: string } {
  const o = new ObjReader(raw, path);
  const t = o.str("@type", { required: true });
  const factory = sinkRegistry.byType(t);
  if (factory === undefined) {
    if (KNOWN_UNSUPPORTED_TYPES.includes(t)) throw new ConfigError(o.at("@type"), `${describe(t)} is not supported`);
    const known = builtinAccessLogSinks.flatMap((f) => f.configTypes).map((x) => describe(x)).join(", ");
    throw new ConfigError(o.at("@type"), `${describe(t)} is not one of ${known}`);
  }
  const { sink, format } = factory.parse(o, t);
  o.done();
  return { sink, ...(format ?? { formatter: compileTextFormat(DEFAULT_ACCESS_LOG_FORMAT, path) }) };
}

/**
 * Parses a list of Envoy `access_log` entries (as found on the HTTP connection manager and the TCP proxy; listeners reject `access_log`)
 * at `path` (e.g. `static_resources.listeners[0].access_log`). Absent or null gives an empty list. Throws a
 * {@link ConfigError} naming the field for anything unknown or unsupported.
 */
export function parseAccessLogs(rawList: unknown, path: string): AccessLogConfig[] {
  if (rawList === undefined || rawList === null) return [];
  if (!Array.isArray(rawList)) throw new ConfigError(path, `expected a list, got ${describe(rawList)}`);
  return rawList.map((raw, k) => {
    const p = joinPath(path, k);
    const o = new ObjReader(raw, p);
    const name = o.str("name") ?? "";
    const filterRaw = o.value("filter");
    const filter = filterRaw === undefined ? undefined : parseAccessLogFilter(filterRaw, o.at("filter"));
    const tc = parseTypedConfig(o.value("typed_config", { required: true }), o.at("typed_config"));
    o.done();
    const cfg: { -readonly [K in keyof AccessLogConfig]: AccessLogConfig[K] } = {
      name,
      sink: tc.sink,
      formatter: tc.formatter,
    };
    if (tc.contentType !== undefined) cfg.contentType = tc.contentType;
    if (filter !== undefined) cfg.filter = filter;
    return cfg;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Sinks

/** Something bytes can be written to (a file, stdout, stderr). */
export interface SinkTarget {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Options of a {@link BufferedSink}. */
export interface BufferedSinkOptions {
  /** For error messages: `access log "/var/log/a.log"`. */
  name: string;
  /** Opens (or reopens) the target; may throw. */
  open: () => SinkTarget;
  /** Flush at least this often while lines are pending (default 1000 ms). */
  flushIntervalMs?: number;
  /** Flush when this many characters are pending (default 64 KiB). */
  flushBytes?: number;
  /** Drop lines (counted in {@link BufferedSink.dropped}) when this much is pending (default 16 MiB). */
  maxPendingBytes?: number;
}

const encoder = new TextEncoder();

/**
 * A line buffer in front of a {@link SinkTarget}: `write` appends to memory; the buffer goes out in one async
 * write when it reaches `flushBytes` or after `flushIntervalMs`. Writes are serialized; errors are logged
 * (rate-limited) and the lines dropped, never thrown to the caller.
 */
export class BufferedSink {
  readonly name: string;
  /** Lines dropped because the target failed or fell too far behind. */
  dropped = 0;
  readonly #open: () => SinkTarget;
  readonly #interval: number;
  readonly #flushBytes: number;
  readonly #maxPending: number;
  #target: SinkTarget | undefined;
  #chunks: string[] = [];
  #size = 0;
  /** Characters handed to the writer but not yet written. */
  #inflight = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #lastError = 0;

  constructor(options: BufferedSinkOptions) {
    this.name = options.name;
    this.#open = options.open;
    this.#interval = options.flushIntervalMs ?? 1000;
    this.#flushBytes = options.flushBytes ?? 64 * 1024;
    this.#maxPending = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.#target = options.open();
  }

  /** Characters buffered and not yet handed to the target. */
  get pending(): number {
    return this.#size;
  }

  /** Appends one line (which carries its own newline). Never throws. */
  write(line: string): void {
    if (this.#closed) {
      this.dropped++;
      return;
    }
    if (this.#size + this.#inflight > this.#maxPending) {
      this.dropped++;
      return;
    }
    this.#chunks.push(line);
    this.#size += line.length;
    if (this.#size >= this.#flushBytes) {
      void this.flush();
    } else if (this.#timer === undefined) {
      const timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, this.#interval);
      // A pending flush must not keep the process alive; shutdown calls close().
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  #report(what: string, e: unknown): void {
    const now = Date.now();
    if (now - this.#lastError < 10_000) return;
    this.#lastError = now;
    getLogger("main").error(`${this.name}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** Writes everything buffered; resolves when it is written (or dropped on error). Never rejects. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#chunks.length === 0) return this.#chain;
    const data = this.#chunks.length === 1 ? this.#chunks[0]! : this.#chunks.join("");
    const lines = this.#chunks.length;
    this.#chunks = [];
    this.#size = 0;
    this.#inflight += data.length;
    this.#chain = this.#chain.then(async () => {
      try {
        const t = this.#target;
        if (t === undefined) throw new Error("not open");
        const bytes = encoder.encode(data);
        let off = 0;
        while (off < bytes.length) off += await t.write(bytes.subarray(off));
      } catch (e) {
        this.dropped += lines;
        this.#report("write failed", e);
      } finally {
        this.#inflight -= data.length;
      }
    });
    return this.#chain;
  }

  /** Flushes, closes and opens the target again (log rotation: Envoy's `/reopen_logs`). Never rejects. */
  async reopen(): Promise<void> {
    await this.flush();
    this.#closeTarget();
    try {
      this.#target = this.#open();
    } catch (e) {
      this.#report("reopen failed", e);
    }
  }

  /** Flushes and closes; later writes are dropped. Never rejects. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#closeTarget();
  }

  #closeTarget(): void {
    try {
      this.#target?.close();
    } catch (e) {
      this.#report("close failed", e);
    }
    this.#target = undefined;
  }
}

function fileTarget(path: string): SinkTarget {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { write: true, append: true, create: true });
  } catch (e) {
    throw new Error(`access log "${path}": cannot open: ${(e as Error).message}`, { cause: e });
  }
  return { write: (p) => f.write(p), close: () => f.close() };
}

function stdTarget(s: typeof Deno.stdout | typeof Deno.stderr): SinkTarget {
  return { write: (p) => s.write(p), close: () => {} };
}

/**
 * Owns the sinks of one thread, shared by path so that several loggers writing one file share one handle and
 * one buffer. Shutdown calls {@link AccessLogManager.close}; log rotation calls {@link AccessLogManager.reopen}.
 */
export class AccessLogManager {
  readonly #sinks = new Map<string, BufferedSink>();
  readonly #options: Partial<Omit<BufferedSinkOptions, "name" | "open">>;

  constructor(options: Partial<Omit<BufferedSinkOptions, "name" | "open">> = {}) {
    this.#options = options;
  }

  /** The shared sink for a config, opened on first use (throws if a file cannot be opened). */
  sink(cfg: AccessLogSinkConfig): BufferedSink {
    const factory = sinkRegistry.byName(cfg.kind);
    if (factory === undefined) throw new Error(`access log sink "${cfg.kind}" is not registered`);
    const key = factory.key(cfg);
    let s = this.#sinks.get(key);
    if (s === undefined) {
      s = new BufferedSink({ ...this.#options, name: factory.describe(cfg), open: () => factory.open(cfg) });
      this.#sinks.set(key, s);
    }
    return s;
  }

  /** Flushes every sink. */
  async flush(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.flush()));
  }

  /** Reopens every file sink (after log rotation). */
  async reopen(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.reopen()));
  }

  /** Flushes and closes every sink; the manager can be used again afterwards (new sinks are opened). */
  async close(): Promise<void> {
    const all = [...this.#sinks.values()];
    this.#sinks.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}

/** The manager used when {@link createAccessLogger} is given none. */
export const defaultAccessLogManager: AccessLogManager = new AccessLogManager();

/**
 * Creates the logger for one parsed entry. `log(info)` applies the filter, formats and buffers the line; it never
 * throws. Throws (at config time) if a file cannot be opened.
 */
export function createAccessLogger(
  config: AccessLogConfig,
  options: { manager?: AccessLogManager } = {},
): AccessLogger {
  const sink = (options.manager ?? defaultAccessLogManager).sink(config.sink);
  const { formatter, filter } = config;
  let lastError = 0;
  return {
    log(info: StreamInfo): void {
      try {
        if (filter !== undefined && !filter(info)) return;
        sink.write(formatter.format(info));
      } catch (e) {
        const now = Date.now();
        if (now - lastError > 10_000) {
          lastError = now;
          getLogger("main").error(`${sink.name}: format failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    },
  };
}

/** Flushes every sink of the default manager (at shutdown, before exit). Never rejects. */
export function flushAccessLogs(): Promise<void> {
  return defaultAccessLogManager.flush();
}

/** Reopens every sink of the default manager (log rotation; admin `/reopen_logs`). Never rejects. */
export function reopenAccessLogs(): Promise<void> {
  return defaultAccessLogManager.reopen();
}

/** Flushes and closes every sink of the default manager. Never rejects. */
export function closeAccessLogs(): Promise<void> {
  return defaultAccessLogManager.close();
}
