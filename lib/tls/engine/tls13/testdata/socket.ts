/**
 * Runs an engine over a real TCP connection for interop tests: bytes read from the socket go to `receive`,
 * `write` callbacks go to the socket in order, and the returned promises settle on handshake, data and close.
 *
 * @module
 */

import type { TlsAlertError, TlsEngine, TlsEngineCallbacks, TlsHandshakeInfo } from "../../../../api/tls.ts";

/** A running engine over a socket. */
export interface SocketSession {
  readonly engine: TlsEngine;
  /** Resolves with the handshake facts, rejects with the engine error. */
  readonly handshake: Promise<TlsHandshakeInfo>;
  /** All plaintext received so far. */
  readonly received: () => Uint8Array;
  /** Resolves once `n` plaintext bytes arrived (rejects on error or close before that). */
  waitFor(n: number): Promise<Uint8Array>;
  /** Resolves when the socket finished (peer close or error); carries the error, if any. */
  readonly done: Promise<TlsAlertError | undefined>;
  /** Closes the socket. */
  close(): void;
}

/** Hooks for a session's application behaviour. */
export interface SessionHooks {
  onData?(engine: TlsEngine, data: Uint8Array): void;
  onHandshake?(engine: TlsEngine, info: TlsHandshakeInfo): void;
  onClose?(engine: TlsEngine): void;
}

/** Wires `build`'s engine to `conn`; call after the connection is open. Starts the engine. */
export function runOverSocket(
  conn: Deno.Conn,
  build: (cb: TlsEngineCallbacks) => TlsEngine,
  hooks: SessionHooks = {},
): SocketSession {
  let chunks: Uint8Array[] = [];
  let total = 0;
  let error: TlsAlertError | undefined;
  let ended = false;
  let writing = Promise.resolve();
  let waiters: { n: number; resolve: (b: Uint8Array) => void; reject: (e: unknown) => void }[] = [];
  let hsResolve!: (i: TlsHandshakeInfo) => void;
  let hsReject!: (e: unknown) => void;
  const handshake = new Promise<TlsHandshakeInfo>((res, rej) => {
    hsResolve = res;
    hsReject = rej;
  });
  handshake.catch(() => {});
  const all = () => {
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    chunks = [out];
    return out;
  };
  const settle = () => {
    for (const w of waiters) {
      if (total >= w.n) w.resolve(all());
      else if (ended) w.reject(error ?? new Error(`socket ended after ${total} of ${w.n} bytes`));
    }
    waiters = waiters.filter((w) => total < w.n && !ended);
  };
  let closed = false;
  const closeConn = () => {
    if (closed) return;
    closed = true;
    writing.finally(() => {
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  };
  const engine: TlsEngine = build({
    write: (d) => {
      writing = writing.then(async () => {
        for (let o = 0; o < d.length;) o += await conn.write(d.subarray(o));
      }).catch(() => {});
    },
    onData: (d) => {
      chunks.push(d.slice());
      total += d.length;
      hooks.onData?.(engine, d);
      settle();
    },
    onHandshake: (info) => {
      hsResolve(info);
      hooks.onHandshake?.(engine, info);
    },
    onClose: () => {
      hooks.onClose?.(engine);
    },
    onError: (e) => {
      error = e;
      hsReject(e);
    },
  });
  const done = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        engine.receive(buf.subarray(0, n));
        if (error) break;
      }
    } catch {
      // reset by peer
    }
    ended = true;
    hsReject(error ?? new Error("socket closed before the handshake completed"));
    settle();
    await writing;
    closeConn();
    return error;
  })();
  engine.start();
  return {
    engine,
    handshake,
    received: all,
    waitFor: (n) =>
      new Promise<Uint8Array>((resolve, reject) => {
        waiters.push({ n, resolve, reject });
        settle();
      }),
    done,
    close: closeConn,
  };
}
