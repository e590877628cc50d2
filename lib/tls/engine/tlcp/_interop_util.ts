/**
 * Interop-test support: runs an engine over a real socket. Private to the TLCP tests.
 *
 * @module
 */

import type { TlsAlertError, TlsEngineCallbacks, TlsHandshakeInfo } from "../../../api/tls.ts";
import type { TlcpEngine } from "./engine.ts";

/** A free loopback port: the one shared helper, re-exported for the interop tests that import it from here. */
export { freePort } from "../../../../tests/fakes/ports.ts";

/** What happened on one interop connection. */
export interface Outcome {
  info: TlsHandshakeInfo | undefined;
  error: TlsAlertError | undefined;
  data: string;
}

/** Runs an engine over a socket until it closes, fails, or `done(data)` says so; resolves with what happened. */
export function drive(
  conn: Deno.Conn,
  make: (cb: TlsEngineCallbacks) => TlcpEngine,
  onHandshake: (engine: TlcpEngine) => void,
  done: (data: string, engine: TlcpEngine) => boolean,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { info: undefined, error: undefined, data: "" };
    let writing = Promise.resolve();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      writing.finally(() => {
        try {
          conn.close();
        } catch { /* already closed */ }
        resolve(out);
      });
    };
    const timer = setTimeout(finish, timeoutMs);
    const engine: TlcpEngine = make({
      write: (b) => {
        writing = writing.then(async () => {
          for (let o = 0; o < b.length;) o += await conn.write(b.subarray(o));
        }).catch(() => {});
      },
      onData: (b) => {
        out.data += new TextDecoder().decode(b);
        if (done(out.data, engine)) finish();
      },
      onHandshake: (info) => {
        out.info = info;
        onHandshake(engine);
      },
      onClose: finish,
      onError: (e) => {
        out.error = e;
        finish();
      },
    });
    engine.start();
    (async () => {
      const buf = new Uint8Array(32 * 1024);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          engine.receive(buf.subarray(0, n));
          if (finished) return;
        }
      } catch { /* reset */ }
      finish();
    })();
  });
}
