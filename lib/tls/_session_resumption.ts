/**
 * Envoy's session-resumption fields of a TLS context, shared by the `gm` and `native` parsers and the secret
 * provider: `session_ticket_keys` (`TlsSessionTicketKeys`: `keys`, each an 80-byte `DataSource`),
 * `disable_stateless_session_resumption`, `disable_stateful_session_resumption`, `session_timeout` (server) and
 * `max_session_keys` (client).
 *
 * @module
 */
import { hkdfSync } from "node:crypto";
import { ConfigError } from "../api/errors.ts";
import type { ObjReader } from "../config/reader.ts";
import { SESSION_TICKET_KEY_LENGTH, SessionTicketKeys } from "./engine/tls13/session_ticket.ts";
import { errorText } from "./_common.ts";

/** Envoy's default `session_timeout`: 7200 s. */
export const DEFAULT_SESSION_TIMEOUT_S = 7200;
/** TLS 1.3 caps a ticket's lifetime at 7 days (RFC 8446 §4.6.1). */
const MAX_SESSION_TIMEOUT_S = 604800;

/** A server context's resumption settings. */
export interface ServerResumption {
  /**
   * Keys that seal and open TLS 1.3 tickets: the configured ones, or (Envoy's behaviour without keys) a key of this
   * process and context (see `processSeed`), so tickets resume only on this process. Undefined when stateless
   * resumption is disabled.
   */
  readonly ticketKeys: SessionTicketKeys | undefined;
  /** Whether keys were configured (inline or from a secret), for the native provider's warning. */
  readonly keysConfigured: boolean;
  /** Session-ID (stateful) resumption on: the TLCP session cache. */
  readonly stateful: boolean;
  /** Session lifetime in seconds (TLS 1.3 ticket lifetime, TLCP cache entry lifetime). */
  readonly sessionTimeout: number;
}

/**
 * The process's ticket-key seed: 32 random bytes made by the first context that needs one and kept in the
 * environment, which the worker threads of `--concurrency N` share with the main thread. So a context without
 * `session_ticket_keys` gets the same key in every event loop (a ticket issued by one resumes on another, as in
 * Envoy's threads sharing one SSL_CTX) and a new key per process.
 */
const SEED_ENV = "FERRY_SESSION_TICKET_SEED";

/** The number of event loops serving the listeners (`--concurrency`), set by `main.ts` for every thread to read. */
const LOOPS_ENV = "FERRY_EVENT_LOOPS";

/** Records how many event loops serve this process's listeners (before the config is parsed). */
export function setEventLoops(n: number): void {
  try {
    Deno.env.set(LOOPS_ENV, String(n));
  } catch { /* no env permission: each loop keeps its own sessions */ }
}

/** How many event loops serve this process's listeners: 1 unless `main.ts` said otherwise. */
export function eventLoops(): number {
  try {
    const n = Number(Deno.env.get(LOOPS_ENV) ?? 1);
    return Number.isInteger(n) && n > 1 ? n : 1;
  } catch {
    return 1;
  }
}

function processSeed(): Uint8Array | undefined {
  try {
    let hex = Deno.env.get(SEED_ENV);
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) {
      hex = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
      Deno.env.set(SEED_ENV, hex);
    }
    return Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
  } catch {
    return undefined; // no env permission: a key of this event loop only
  }
}

/** The default ticket key of the context at `path`: from the process seed, else random. */
function defaultTicketKeys(path: string): SessionTicketKeys {
  const seed = processSeed();
  if (!seed) return SessionTicketKeys.random();
  const info = new TextEncoder().encode(`ferry session ticket key ${path}`);
  return new SessionTicketKeys([new Uint8Array(hkdfSync("sha256", seed, new Uint8Array(0), info, 80))]);
}

/** A `DataSource` as bytes: `filename` read as binary, `inline_bytes` base64, strings as UTF-8. */
function readBytes(o: ObjReader): Uint8Array {
  const which = o.oneOf(["filename", "inline_bytes", "inline_string", "environment_variable"] as const, {
    required: true,
  })!;
  o.unsupported("watched_directory", "is not supported (session ticket keys are read once at load)");
  let out: Uint8Array;
  if (which === "filename") {
    const file = o.str("filename", { required: true })!;
    try {
      out = Deno.readFileSync(file);
    } catch (e) {
      throw new ConfigError(o.at("filename"), `cannot read ${JSON.stringify(file)}: ${errorText(e)}`);
    }
  } else if (which === "inline_bytes") {
    const b64 = o.str("inline_bytes", { required: true })!;
    try {
      out = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    } catch {
      throw new ConfigError(o.at("inline_bytes"), "is not valid base64");
    }
  } else if (which === "inline_string") {
    out = new TextEncoder().encode(o.str("inline_string", { required: true })!);
  } else {
    const name = o.str("environment_variable", { required: true })!;
    const v = Deno.env.get(name);
    if (v === undefined) throw new ConfigError(o.at("environment_variable"), `${JSON.stringify(name)} is not set`);
    out = new TextEncoder().encode(v);
  }
  o.done();
  return out;
}

/**
 * Parses a `TlsSessionTicketKeys` message (`{keys: [DataSource, ...]}`) at `o`'s path. A key that is not 80 bytes is
 * a {@link ConfigError} naming `keys[i]`.
 */
export function readSessionTicketKeys(o: ObjReader): SessionTicketKeys {
  const keys = o.objs("keys", (k) => {
    const bytes = readBytes(k);
    if (bytes.length !== SESSION_TICKET_KEY_LENGTH) {
      throw new ConfigError(k.path, `is ${bytes.length} bytes; a session ticket key is ${SESSION_TICKET_KEY_LENGTH}`);
    }
    return bytes;
  }, { nonEmpty: true });
  o.done();
  return new SessionTicketKeys(keys);
}

/**
 * Reads the resumption fields of a server context (a `DownstreamTlsContext` or a `GmTlsContext`).
 * `session_ticket_keys_sds_secret_config` must have been resolved into `session_ticket_keys` by then (the gm
 * provider's secret references are); `sdsKeys` says it was present unresolved (native contexts), which counts as
 * configured keys that cannot be read here.
 */
export function parseServerResumption(o: ObjReader, options: { sdsKeys?: boolean } = {}): ServerResumption {
  const keysO = o.obj("session_ticket_keys");
  const configured = keysO ? readSessionTicketKeys(keysO) : undefined;
  const statelessOff = o.bool("disable_stateless_session_resumption") ?? false;
  const statefulOff = o.bool("disable_stateful_session_resumption") ?? false;
  if (statelessOff && (keysO || options.sdsKeys)) {
    throw new ConfigError(
      o.at("disable_stateless_session_resumption"),
      "cannot be true with session_ticket_keys (the keys would never be used)",
    );
  }
  const ms = o.durationMs("session_timeout");
  let sessionTimeout = DEFAULT_SESSION_TIMEOUT_S;
  if (ms !== undefined) {
    if (ms < 0 || ms > MAX_SESSION_TIMEOUT_S * 1000 || ms % 1000 !== 0) {
      throw new ConfigError(o.at("session_timeout"), `must be whole seconds from 0 to ${MAX_SESSION_TIMEOUT_S}s`);
    }
    sessionTimeout = ms / 1000;
  }
  return {
    ticketKeys: statelessOff ? undefined : configured ?? defaultTicketKeys(o.path),
    keysConfigured: configured !== undefined || options.sdsKeys === true,
    stateful: !statefulOff,
    sessionTimeout,
  };
}

/** Envoy's `max_session_keys` of an `UpstreamTlsContext` (default 1; 0 disables client resumption). */
export function parseMaxSessionKeys(o: ObjReader): number {
  return o.int("max_session_keys", { min: 0 }) ?? 1;
}
