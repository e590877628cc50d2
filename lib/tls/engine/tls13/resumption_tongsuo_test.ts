/**
 * TLS 1.3-SM (RFC 8998) resumption interop over real sockets with Tongsuo: `s_client -sess_out` / `-sess_in`
 * against our server (TLS_SM4_GCM_SM3 and TLS_SM4_CCM_SM3, curveSM2, sm2sig_sm3), and our client against
 * `s_server` with Tongsuo's tickets. Skipped (with a logged reason) unless `TONGSUO_BIN` points at Tongsuo.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createTls13Client, createTls13Server, SessionTicketKeys, Tls13SessionCache } from "./mod.ts";
import { testPki } from "./testdata/pki.ts";
import { runOverSocket } from "./testdata/socket.ts";
import { freePort } from "../../../../tests/fakes/ports.ts";
import { spawnTongsuo, TONGSUO_BIN } from "../../../../tests/integration/_peers.ts";

if (!TONGSUO_BIN) console.log("resumption_tongsuo_test: TONGSUO_BIN is not set: skipped");

const enc = new TextEncoder();
const dec = new TextDecoder();
const SM = ["-tls1_3", "-groups", "curveSM2", "-sigalgs", "sm2sig_sm3"];

async function pkiDir(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "ferry_tls13_tongsuo_" });
  for (const [name, pem] of Object.entries(testPki().files)) await Deno.writeTextFile(`${d}/${name}`, pem);
  return d;
}

async function sClient(port: number, dir: string, args: string[]): Promise<string> {
  const proc = spawnTongsuo([
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "localhost",
    "-CAfile",
    `${dir}/ca.crt`,
    "-verify_return_error",
    ...SM,
    ...args,
  ], "piped");
  const w = proc.stdin.getWriter();
  await w.write(enc.encode("ping from tongsuo\n"));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 8000);
  const out = await proc.output().catch(() => undefined);
  clearTimeout(timer);
  await w.close().catch(() => {});
  return out ? dec.decode(out.stdout) : "";
}

for (const suite of ["TLS_SM4_GCM_SM3", "TLS_SM4_CCM_SM3"] as const) {
  Deno.test({
    name: `tls13 server resumes Tongsuo s_client -sess_in with its own ticket (${suite})`,
    ignore: !TONGSUO_BIN,
    async fn() {
      const dir = await pkiDir();
      const pki = testPki();
      const keys = SessionTicketKeys.random();
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const served = (async () => {
        const out: string[] = [];
        for (let i = 0; i < 2; i++) {
          const conn = await listener.accept();
          const s = runOverSocket(
            conn,
            (cb) => createTls13Server({ certificates: [pki.sm2Server], sessionTickets: { keys } }, cb),
            {
              onData: (engine, data) => {
                engine.send(data);
                engine.close();
              },
            },
          );
          const info = await s.handshake.catch((e) => e as Error);
          out.push(info instanceof Error ? info.message : `${info.cipher} ${info.group} ${info.resumed}`);
          await s.done;
        }
        return out;
      })();
      try {
        const first = await sClient(port, dir, ["-ciphersuites", suite, "-sess_out", `${dir}/sess.pem`]);
        assert(first.includes(`New, TLSv1.3, Cipher is ${suite}`), first);
        assert(first.includes("ping from tongsuo"), first);
        const again = await sClient(port, dir, ["-ciphersuites", suite, "-sess_in", `${dir}/sess.pem`]);
        assert(again.includes(`Reused, TLSv1.3, Cipher is ${suite}`), again);
        assert(again.includes("ping from tongsuo"), again);
        assertEquals(await served, [`${suite} curveSM2 false`, `${suite} curveSM2 true`]);
      } finally {
        listener.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "tls13 client resumes TLS_SM4_GCM_SM3 with Tongsuo s_server's ticket",
  ignore: !TONGSUO_BIN,
  async fn() {
    const dir = await pkiDir();
    const port = freePort();
    const proc = spawnTongsuo([
      "s_server",
      ...SM,
      "-ciphersuites",
      "TLS_SM4_GCM_SM3",
      "-accept",
      `127.0.0.1:${port}`,
      "-naccept",
      "2",
      "-rev",
      "-cert",
      `${dir}/server.crt`,
      "-key",
      `${dir}/server.key`,
    ], "piped");
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
        const s = runOverSocket(conn, (cb) =>
          createTls13Client({
            serverName: "localhost",
            trustedCertificates: [pki.sm2Root],
            cipherSuites: ["TLS_SM4_GCM_SM3"],
            groups: ["curveSM2"],
            signatureSchemes: ["sm2sig_sm3"],
            sessionCache: cache,
          }, cb));
        const info = await s.handshake;
        resumed.push(info.resumed);
        s.engine.send(enc.encode("hello from ferry\n"));
        assertEquals(dec.decode(await s.waitFor(17)), "yrref morf olleh\n");
        s.engine.close();
        s.close();
        await s.done;
      }
      assertEquals(resumed, [false, true]);
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
  },
});
