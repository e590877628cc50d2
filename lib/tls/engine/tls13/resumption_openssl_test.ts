/**
 * Resumption interop over real sockets with Debian's OpenSSL 3 on the standard TLS 1.3 suites: `openssl s_client
 * -sess_out` then `-sess_in` against our server (it must resume with our ticket), and our client against
 * `openssl s_server` (it must resume with OpenSSL's ticket). Skipped when `openssl` is not installed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createTls13Client, createTls13Server, SessionTicketKeys, Tls13SessionCache } from "./mod.ts";
import type { Tls13ServerOptions } from "./server.ts";
import type { Tls13GroupName } from "./groups.ts";
import { testPki } from "./testdata/pki.ts";
import { runOverSocket } from "./testdata/socket.ts";
import { freePort } from "../../../../tests/fakes/ports.ts";
import type { TlsHandshakeInfo } from "../../../api/tls.ts";

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

const enc = new TextEncoder();
const dec = new TextDecoder();

async function pkiDir(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "ferry_tls13_resume_" });
  for (const [name, pem] of Object.entries(testPki().files)) await Deno.writeTextFile(`${d}/${name}`, pem);
  return d;
}

/** Our echo server for up to `n` connections on one port; resolves with each handshake's facts (or error). */
function serveEngine(
  n: number,
  options: Partial<Tls13ServerOptions>,
): { port: number; results: Promise<(TlsHandshakeInfo | string)[]> } {
  const pki = testPki();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const results = (async () => {
    const out: (TlsHandshakeInfo | string)[] = [];
    const guard = setTimeout(() => listener.close(), 15000);
    try {
      for (let i = 0; i < n; i++) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch {
          break;
        }
        const s = runOverSocket(
          conn,
          (cb) => createTls13Server({ certificates: [pki.ecdsaServer, pki.sm2Server], ...options }, cb),
          {
            onData: (engine, data) => {
              engine.send(data);
              engine.close();
            },
          },
        );
        try {
          out.push(await s.handshake);
        } catch (e) {
          out.push(`error: ${e instanceof Error ? e.message : String(e)}`);
        }
        await s.done;
      }
    } finally {
      clearTimeout(guard);
      listener.close();
    }
    return out;
  })();
  return { port, results };
}

/** One `openssl s_client` run; returns its stdout (session summary included: no -quiet). */
async function sClient(port: number, dir: string, args: string[]): Promise<string> {
  const proc = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-tls1_3",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      "localhost",
      "-CAfile",
      `${dir}/ca_ecdsa.crt`,
      "-verify_return_error",
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = proc.stdin.getWriter();
  await w.write(enc.encode("ping from openssl\n"));
  const timer = setTimeout(() => proc.kill("SIGTERM"), 8000);
  const out = await proc.output().catch(() => undefined);
  clearTimeout(timer);
  await w.close().catch(() => {});
  return out ? dec.decode(out.stdout) : "";
}

for (const suite of ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]) {
  Deno.test({
    name: `tls13 server resumes openssl s_client -sess_in with its own ticket (${suite})`,
    ignore: !hasOpenssl,
    async fn() {
      const dir = await pkiDir();
      try {
        // Key name 16 × 0xab, so the test can find the ticket inside s_client's session file.
        const keys = new SessionTicketKeys([new Uint8Array(80).fill(0xab, 0, 16).fill(7, 16)]);
        const { port, results } = serveEngine(3, { sessionTickets: { keys } });
        const first = await sClient(port, dir, ["-ciphersuites", suite, "-sess_out", `${dir}/sess.pem`]);
        assert(first.includes("New, TLSv1.3"), first);
        assert(first.includes("ping from openssl"), first);
        const second = await sClient(port, dir, ["-ciphersuites", suite, "-sess_in", `${dir}/sess.pem`]);
        assert(second.includes("Reused, TLSv1.3"), second);
        assert(second.includes("ping from openssl"), second);
        // The same session with one ciphertext byte of the ticket flipped: s_client offers it (with a binder from
        // the right PSK), the ticket does not open, so we answer with a full handshake.
        const pem = await Deno.readTextFile(`${dir}/sess.pem`);
        const der = Uint8Array.from(atob(pem.replace(/-----[^-]+-----|\s/g, "")), (c) => c.charCodeAt(0));
        const at = der.findIndex((_, i) => der.subarray(i, i + 16).every((b) => b === 0xab) && i + 16 <= der.length);
        assert(at > 0, "ticket not found in the session file");
        der[at + 40]! ^= 0x55;
        const b64 = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n");
        await Deno.writeTextFile(
          `${dir}/bad.pem`,
          `-----BEGIN SSL SESSION PARAMETERS-----\n${b64}\n-----END SSL SESSION PARAMETERS-----\n`,
        );
        const third = await sClient(port, dir, ["-ciphersuites", suite, "-sess_in", `${dir}/bad.pem`]);
        assert(third.includes("New, TLSv1.3"), third);
        assert(third.includes("ping from openssl"), third);
        const r = await results;
        const infos = r.map((x) => typeof x === "string" ? x : `${x.cipher} ${x.resumed}`);
        assertEquals(infos, [`${suite} false`, `${suite} true`, `${suite} false`]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** Our client against `openssl s_server -naccept 2 -rev` twice with one cache; whether each handshake resumed. */
async function clientResumes(serverArgs: string[], groups: Tls13GroupName[]): Promise<boolean[]> {
  const dir = await pkiDir();
  const port = freePort();
  const proc = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-tls1_3",
      "-accept",
      `127.0.0.1:${port}`,
      "-naccept",
      "2",
      "-rev",
      ...serverArgs,
      "-cert",
      `${dir}/server_ecdsa.crt`,
      "-key",
      `${dir}/server_ecdsa.key`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += value;
    }
  })();
  proc.stderr.pipeTo(new WritableStream()).catch(() => {});
  try {
    const deadline = Date.now() + 5000;
    while (!text.includes("ACCEPT")) {
      if (Date.now() > deadline) throw new Error(`s_server did not start: ${text}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const pki = testPki();
    const cache = new Tls13SessionCache();
    const resumed: boolean[] = [];
    for (let i = 0; i < 2; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const s = runOverSocket(
        conn,
        (cb) =>
          createTls13Client({
            serverName: "localhost",
            trustedCertificates: [pki.ecdsaRoot],
            cipherSuites: ["TLS_AES_128_GCM_SHA256"],
            groups,
            sessionCache: cache,
          }, cb),
      );
      const info = await s.handshake;
      resumed.push(info.resumed);
      s.engine.send(enc.encode("hello from ferry\n"));
      assertEquals(dec.decode(await s.waitFor(17)), "yrref morf olleh\n");
      s.engine.close();
      s.close();
      await s.done;
    }
    return resumed;
  } finally {
    try {
      proc.kill("SIGTERM");
    } catch {
      // exited
    }
    await proc.status;
    await pump.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "tls13 client resumes with openssl s_server's ticket",
  ignore: !hasOpenssl,
  async fn() {
    assertEquals(await clientResumes([], ["x25519"]), [false, true]);
  },
});

Deno.test({
  name:
    "tls13 client resumes with openssl s_server's ticket after a HelloRetryRequest (binder over the HRR transcript)",
  ignore: !hasOpenssl,
  async fn() {
    // We share x25519; the server takes P-256 only, so both handshakes start with a HelloRetryRequest.
    assertEquals(await clientResumes(["-groups", "P-256"], ["x25519", "secp256r1"]), [false, true]);
  },
});

Deno.test({
  name: "tls13 server resumes openssl s_client after a HelloRetryRequest",
  ignore: !hasOpenssl,
  async fn() {
    const dir = await pkiDir();
    try {
      const keys = SessionTicketKeys.random();
      const { port, results } = serveEngine(2, {
        sessionTickets: { keys },
        groups: ["secp256r1", "x25519"],
        groupSelection: "server-preference",
      });
      const args = ["-groups", "X25519:P-256"];
      const first = await sClient(port, dir, [...args, "-sess_out", `${dir}/sess.pem`]);
      assert(first.includes("New, TLSv1.3"), first);
      const again = await sClient(port, dir, [...args, "-sess_in", `${dir}/sess.pem`]);
      assert(again.includes("Reused, TLSv1.3"), again);
      assert(again.includes("ping from openssl"), again);
      const r = (await results).map((x) => typeof x === "string" ? x : `${x.group} ${x.resumed}`);
      assertEquals(r, ["secp256r1 false", "secp256r1 true"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
