/**
 * Component loggers with Envoy's levels, settable at runtime (admin `/logging`), one line per event:
 * `[2026-11-24 14:00:00.123][info][upstream] cluster "a": host 10.0.0.1:80 removed` (UTC).
 *
 * A disabled level costs one integer comparison: check {@link Logger.enabled} (or pass a thunk) before building
 * an expensive message, since a template literal argument is built before the call.
 *
 * @example
 * ```ts
 * const log = getLogger("upstream");
 * log.info(`cluster "a": added host 10.0.0.1:80`);
 * log.debug(() => `pool: ${pool.describe()}`); // built only when debug is on
 * setLogLevel("debug");
 * ```
 *
 * @module
 */

/** Envoy's log level names, from most to least verbose. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "critical" | "off";

/** All levels in order (index = severity). */
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "critical", "off"];

/** The components Ferry logs under (Envoy's names where Envoy has them); others may be created freely. */
export const LOG_COMPONENTS: readonly string[] = [
  "main",
  "config",
  "upstream",
  "http",
  "http2",
  "connection",
  "admin",
  "listener",
  "router",
  "filter",
  "pool",
  "hc",
  "dns",
  "tls",
  "xds",
  "runtime",
];

/** True if the string is a {@link LogLevel}. */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** Where formatted lines go (each ends with a newline). Default: stderr. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  try {
    const bytes = encoder.encode(line);
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // Logging must never take down the caller (a closed stderr, for instance).
  }
}

let sink: LogSink = stderrSink;
let defaultLevel = 2; // info
const loggers = new Map<string, Logger>();

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** Formats a wall-clock time (ms since epoch) as `2026-11-24 14:00:00.123` (UTC). */
export function formatLogTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** A message, or a function that builds it (called only when the level is enabled). */
export type LogMessage = string | (() => string);

/** A logger for one component. Obtain with {@link getLogger}; the same name returns the same logger. */
export class Logger {
  /** Component name, shown in brackets. */
  readonly component: string;
  /** Severity index of the current level (see {@link LOG_LEVELS}); read on every call, so kept public and plain. */
  level: number;

  constructor(component: string, level: number) {
    this.component = component;
    this.level = level;
  }

  /** True if messages at `level` are written. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.level && level !== "off";
  }

  /** Current level name. */
  get levelName(): LogLevel {
    return LOG_LEVELS[this.level]!;
  }

  #write(lvl: number, msg: LogMessage): void {
    let text: string;
    try {
      text = typeof msg === "function" ? msg() : msg;
    } catch (e) {
      text = `(log message failed: ${e instanceof Error ? e.message : String(e)})`;
    }
    sink(`[${formatLogTime(Date.now())}][${LOG_LEVELS[lvl]}][${this.component}] ${text}\n`);
  }

  /** Logs at `trace`. */
  trace(msg: LogMessage): void {
    if (this.level <= 0) this.#write(0, msg);
  }

  /** Logs at `debug`. */
  debug(msg: LogMessage): void {
    if (this.level <= 1) this.#write(1, msg);
  }

  /** Logs at `info`. */
  info(msg: LogMessage): void {
    if (this.level <= 2) this.#write(2, msg);
  }

  /** Logs at `warn`. */
  warn(msg: LogMessage): void {
    if (this.level <= 3) this.#write(3, msg);
  }

  /** Logs at `error`. */
  error(msg: LogMessage): void {
    if (this.level <= 4) this.#write(4, msg);
  }

  /** Logs at `critical`. */
  critical(msg: LogMessage): void {
    if (this.level <= 5) this.#write(5, msg);
  }

  /** Logs at a level given by name. */
  log(level: LogLevel, msg: LogMessage): void {
    const lvl = LOG_LEVELS.indexOf(level);
    if (lvl < 6 && this.level <= lvl) this.#write(lvl, msg);
  }
}

/** The logger of a component (created on first use at the current default level). */
export function getLogger(component: string): Logger {
  let l = loggers.get(component);
  if (l === undefined) {
    l = new Logger(component, defaultLevel);
    loggers.set(component, l);
  }
  return l;
}

/** Sets the level of every component (and of components created later), as `POST /logging?level=`. */
export function setLogLevel(level: LogLevel): void {
  defaultLevel = LOG_LEVELS.indexOf(level);
  for (const l of loggers.values()) l.level = defaultLevel;
}

/** Sets one component's level, as `POST /logging?<component>=<level>`. */
export function setComponentLogLevel(component: string, level: LogLevel): void {
  getLogger(component).level = LOG_LEVELS.indexOf(level);
}

/** The default level (for components not set individually). */
export function getLogLevel(): LogLevel {
  return LOG_LEVELS[defaultLevel]!;
}

/** Each known component's level, sorted by name (the well-known components always appear). */
export function getLogLevels(): Record<string, LogLevel> {
  for (const c of LOG_COMPONENTS) getLogger(c);
  const out: Record<string, LogLevel> = {};
  for (const name of [...loggers.keys()].sort()) out[name] = loggers.get(name)!.levelName;
  return out;
}

/** Replaces the sink (tests; embedding). Returns the previous sink so it can be restored. */
export function setLogSink(next: LogSink): LogSink {
  const prev = sink;
  sink = next;
  return prev;
}
