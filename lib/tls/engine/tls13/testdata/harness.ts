/**
 * In-memory plumbing for engine tests: an {@link Endpoint} records what an engine reports, and {@link pump}
 * moves bytes between two endpoints (optionally in random splits, or through a tamper hook) until both are quiet.
 *
 * @module
 */

import type { TlsAlertError, TlsEngine, TlsEngineCallbacks, TlsHandshakeInfo } from "../../../../api/tls.ts";

/** One side of a test connection. */
export interface Endpoint {
  readonly engine: TlsEngine;
  /** Ciphertext written and not yet delivered. */
  readonly outbox: Uint8Array[];
  /** Plaintext received (copies). */
  readonly received: Uint8Array[];
  info: TlsHandshakeInfo | undefined;
  closed: boolean;
  error: TlsAlertError | undefined;
  /** Number of onError calls (must stay ≤ 1). */
  errors: number;
}

/** Hooks for an endpoint's application behaviour. */
export interface EndpointHooks {
  onData?(ep: Endpoint, data: Uint8Array): void;
  onHandshake?(ep: Endpoint, info: TlsHandshakeInfo): void;
}

/** Builds an endpoint around an engine factory. */
export function endpoint(build: (cb: TlsEngineCallbacks) => TlsEngine, hooks: EndpointHooks = {}): Endpoint {
  const ep = {
    outbox: [] as Uint8Array[],
    received: [] as Uint8Array[],
    info: undefined as TlsHandshakeInfo | undefined,
    closed: false,
    error: undefined as TlsAlertError | undefined,
    errors: 0,
  } as Endpoint;
  const engine = build({
    write: (d) => ep.outbox.push(d),
    onData: (d) => {
      ep.received.push(d.slice());
      hooks.onData?.(ep, d);
    },
    onHandshake: (info) => {
      ep.info = info;
      hooks.onHandshake?.(ep, info);
    },
    onClose: () => {
      ep.closed = true;
    },
    onError: (e) => {
      ep.error = e;
      ep.errors++;
    },
  });
  (ep as { engine: TlsEngine }).engine = engine;
  return ep;
}

/** Options of {@link pump}. */
export interface PumpOptions {
  /** Splits each delivered chunk (e.g. at random points). */
  split?: (data: Uint8Array) => Uint8Array[];
  /** Rewrites a chunk in flight from `from`; return undefined to drop it. */
  tamper?: (data: Uint8Array, from: "a" | "b") => Uint8Array | undefined;
  /** Bound on delivery rounds (default 10000). */
  maxRounds?: number;
}

/** Delivers queued bytes both ways until neither side has anything to send. */
export function pump(a: Endpoint, b: Endpoint, options: PumpOptions = {}): void {
  const max = options.maxRounds ?? 10000;
  for (let round = 0; round < max; round++) {
    if (a.outbox.length === 0 && b.outbox.length === 0) return;
    for (const [from, to, name] of [[a, b, "a"], [b, a, "b"]] as const) {
      const chunks = from.outbox.splice(0);
      for (let c of chunks) {
        if (options.tamper) {
          const t = options.tamper(c, name);
          if (t === undefined) continue;
          c = t;
        }
        for (const part of options.split ? options.split(c) : [c]) to.engine.receive(part);
      }
    }
  }
  throw new Error("pump: did not settle");
}

/** A seeded PRNG (mulberry32) for reproducible random tests. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A splitter cutting each chunk at random points (pieces of 1..maxPiece bytes). */
export function randomSplitter(rand: () => number, maxPiece: number): (data: Uint8Array) => Uint8Array[] {
  return (data) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < data.length;) {
      const n = Math.min(data.length - i, 1 + Math.floor(rand() * maxPiece));
      out.push(data.slice(i, i + n));
      i += n;
    }
    return out;
  };
}

/** Concatenates received chunks. */
export function joined(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
