/**
 * Interop over real sockets with Debian's OpenSSL 3 (`openssl s_server` / `s_client`, standard TLS 1.3 suites;
 * the SM suites need Tongsuo or GmSSL). Skipped when `openssl` is not installed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createTls13Client, createTls13Server } from "./mod.ts";
import type { Tls13ClientOptions } from "./client.ts";
import type { Tls13ServerOptions } from "./server.ts";
import { testPki } from "./testdata/pki.ts";
import { runOverSocket } from "./testdata/socket.ts";
import { freePort } from "../../../../tests/fakes/ports.ts";

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

const enc = new TextEncoder();
const dec = new TextDecoder();
let dir: string | undefined;

async function pkiDir(): Promise<string> {
  if (dir) return dir;
  const d = await Deno.makeTempDir({ prefix: "ferry_tls13_" });
  for (const [name, pem] of Object.entries(testPki().files)) await Deno.writeTextFile(`${d}/${name}`, pem);
  dir = d;
  return d;
}

/** Starts `openssl s_server` and resolves once it accepts; returns the port and the process. */
async function opensslServer(args: string[]): Promise<{ port: number; proc: Deno.ChildProcess; output: () => string }> {
  const d = await pkiDir();
  const port = freePort();
  const proc = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-tls1_3",
      "-accept",
      `127.0.0.1:${port}`,
      "-naccept",
      "1",
      "-cert",
      `${d}/server_ecdsa.crt`,
      "-key",
      `${d}/server_ecdsa.key`,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pumpOut = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += value;
    }
  })();
  const deadline = Date.now() + 5000;
  while (!text.includes("ACCEPT")) {
    if (Date.now() > deadline) throw new Error(`s_server did not start: ${text}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  proc.stderr.pipeTo(new WritableStream()).catch(() => {});
  pumpOut.catch(() => {});
  return { port, proc, output: () => text };
}

async function stopProcess(proc: Deno.ChildProcess): Promise<void> {
  try {
    proc.kill("SIGTERM");
  } catch {
    // already exited
  }
  try {
    await proc.stdin.close();
  } catch {
    // closed
  }
  await proc.status;
}

/** Our client against `openssl s_server -rev` (it echoes each line reversed). */
async function clientToOpenssl(
  serverArgs: string[],
  options: Partial<Tls13ClientOptions>,
): Promise<{ cipher: string; group: string | undefined; alpn: string | undefined; echo: string }> {
  const pki = testPki();
  const { port, proc } = await opensslServer(["-rev", ...serverArgs]);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const s = runOverSocket(
      conn,
      (cb) => createTls13Client({ serverName: "localhost", trustedCertificates: [pki.ecdsaRoot], ...options }, cb),
    );
    const info = await s.handshake;
    s.engine.send(enc.encode("hello from ferry\n"));
    const got = await s.waitFor(17);
    s.engine.close();
    s.close();
    await s.done;
    return { cipher: info.cipher, group: info.group, alpn: info.alpn, echo: dec.decode(got) };
  } finally {
    await stopProcess(proc);
  }
}

/** `openssl s_client` against our server (which echoes, then closes). Resolves with s_client's stdout. */
async function opensslToServer(
  clientArgs: string[],
  options: Partial<Tls13ServerOptions>,
): Promise<{ info: string | undefined; error: string | undefined; stdout: string; code: number }> {
  const pki = testPki();
  const d = await pkiDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const guard = setTimeout(() => listener.close(), 5000);
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      return { info: undefined, error: "no connection" };
    } finally {
      clearTimeout(guard);
    }
    listener.close();
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
    let info: string | undefined;
    try {
      const i = await s.handshake;
      info = `${i.cipher} ${i.group} ${i.alpn ?? "-"} ${i.sni ?? "-"} ${i.peerCertificates.length}`;
    } catch {
      // reported through done
    }
    const err = await s.done;
    return { info, error: err?.alert };
  })();
  const proc = new Deno.Command("openssl", {
    args: [
      "s_client",
      ...(clientArgs.includes("-tls1_2") ? [] : ["-tls1_3"]),
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      "localhost",
      "-CAfile",
      `${d}/ca_ecdsa.crt`,
      "-verify_return_error",
      "-quiet",
      ...clientArgs,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = proc.stdin.getWriter();
  await w.write(enc.encode("ping from openssl\n"));
  const timer = setTimeout(() => proc.kill("SIGTERM"), 5000);
  const out = await proc.output().catch(() => undefined);
  clearTimeout(timer);
  await w.close().catch(() => {});
  const r = await served;
  return { ...r, stdout: out ? dec.decode(out.stdout) : "", code: out?.code ?? -1 };
}

const standardSuites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"] as const;

for (const suite of standardSuites) {
  Deno.test({
    name: `tls13 client ${suite} interoperates with openssl s_server`,
    ignore: !hasOpenssl,
    async fn() {
      const r = await clientToOpenssl(["-ciphersuites", suite], { cipherSuites: [suite] });
      assertEquals(r.cipher, suite);
      assertEquals(r.group, "x25519");
      assertEquals(r.echo, "yrref morf olleh\n");
    },
  });

  Deno.test({
    name: `tls13 server ${suite} interoperates with openssl s_client`,
    ignore: !hasOpenssl,
    async fn() {
      const r = await opensslToServer(["-ciphersuites", suite], {});
      assertEquals(r.info, `${suite} x25519 - localhost 0`);
      assertEquals(r.stdout, "ping from openssl\n");
    },
  });
}

Deno.test({
  name: "tls13 client secp256r1 and ALPN with openssl s_server",
  ignore: !hasOpenssl,
  async fn() {
    const r = await clientToOpenssl(["-groups", "P-256", "-alpn", "h2,http/1.1"], {
      groups: ["secp256r1", "x25519"],
      alpn: ["http/1.1"],
    });
    assertEquals([r.group, r.alpn], ["secp256r1", "http/1.1"]);
  },
});

Deno.test({
  name: "tls13 client answers a HelloRetryRequest from openssl s_server",
  ignore: !hasOpenssl,
  async fn() {
    // We send an x25519 share only; the server accepts P-256 only.
    const r = await clientToOpenssl(["-groups", "P-256"], { groups: ["x25519", "secp256r1"] });
    assertEquals(r.group, "secp256r1");
    assertEquals(r.echo, "yrref morf olleh\n");
  },
});

Deno.test({
  name: "tls13 client presents its certificate to openssl s_server -Verify",
  ignore: !hasOpenssl,
  async fn() {
    const d = await pkiDir();
    const r = await clientToOpenssl(["-Verify", "1", "-CAfile", `${d}/ca_ecdsa.crt`, "-verify_return_error"], {
      certificate: testPki().ecdsaClient,
    });
    assertEquals(r.echo, "yrref morf olleh\n");
  },
});

Deno.test({
  name: "tls13 client rejects openssl's certificate for a wrong name with bad_certificate",
  ignore: !hasOpenssl,
  async fn() {
    const pki = testPki();
    const { port, proc } = await opensslServer([]);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const s = runOverSocket(
        conn,
        (cb) => createTls13Client({ serverName: "wrong.test", trustedCertificates: [pki.ecdsaRoot] }, cb),
      );
      const err = await s.done;
      assertEquals(err?.alert, "bad_certificate");
    } finally {
      await stopProcess(proc);
    }
  },
});

Deno.test({
  name: "tls13 server serves openssl s_client over secp256r1 with ALPN",
  ignore: !hasOpenssl,
  async fn() {
    const r = await opensslToServer(["-groups", "P-256", "-alpn", "h2,http/1.1"], { alpn: ["http/1.1", "h2"] });
    assertEquals(r.info, "TLS_AES_128_GCM_SHA256 secp256r1 http/1.1 localhost 0");
    assertEquals(r.stdout, "ping from openssl\n");
  },
});

Deno.test({
  name: "tls13 server sends openssl s_client a HelloRetryRequest for its preferred group",
  ignore: !hasOpenssl,
  async fn() {
    // s_client shares X25519 only; the server insists on P-256.
    const r = await opensslToServer(["-groups", "X25519:P-256"], {
      groups: ["secp256r1", "x25519"],
      groupSelection: "server-preference",
    });
    assertEquals(r.info, "TLS_AES_128_GCM_SHA256 secp256r1 - localhost 0");
    assertEquals(r.stdout, "ping from openssl\n");
  },
});

Deno.test({
  name: "tls13 server verifies an openssl s_client certificate",
  ignore: !hasOpenssl,
  async fn() {
    const d = await pkiDir();
    const pki = testPki();
    const r = await opensslToServer(["-cert", `${d}/client_ecdsa.crt`, "-key", `${d}/client_ecdsa.key`], {
      clientAuth: "require",
      clientCaCertificates: [pki.ecdsaRoot],
    });
    // s_client completes its chain from -CAfile: leaf + root.
    assertEquals(r.info, "TLS_AES_128_GCM_SHA256 x25519 - localhost 2");
    assertEquals(r.stdout, "ping from openssl\n");
  },
});

Deno.test({
  name: "tls13 server answers an openssl s_client without a required certificate with certificate_required",
  ignore: !hasOpenssl,
  async fn() {
    const pki = testPki();
    const r = await opensslToServer([], { clientAuth: "require", clientCaCertificates: [pki.ecdsaRoot] });
    assertEquals(r.error, "certificate_required");
    assert(r.info === undefined);
  },
});

Deno.test({
  name: "tls13 server refuses an openssl s_client that offers only TLS 1.2 with protocol_version",
  ignore: !hasOpenssl,
  async fn() {
    const r = await opensslToServer(["-tls1_2"], {});
    assertEquals(r.error, "protocol_version");
  },
});

/** Reads a child's stdout and stderr into one growing string. */
function collect(proc: Deno.ChildProcess): () => string {
  let text = "";
  for (const stream of [proc.stdout, proc.stderr]) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += value;
      }
    })().catch(() => {});
  }
  return () => text;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test({
  name: "tls13 server handles KeyUpdate (update_requested) from openssl s_client",
  ignore: !hasOpenssl,
  async fn() {
    const pki = testPki();
    const d = await pkiDir();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const proc = new Deno.Command("openssl", {
      // Interactive mode (no -quiet): a line "K" makes s_client send KeyUpdate(update_requested).
      args: ["s_client", "-tls1_3", "-connect", `127.0.0.1:${port}`, "-CAfile", `${d}/ca_ecdsa.crt`],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = collect(proc);
    const conn = await listener.accept();
    listener.close();
    const s = runOverSocket(conn, (cb) => createTls13Server({ certificates: [pki.ecdsaServer] }, cb), {
      onData: (engine, data) => engine.send(data),
    });
    await s.handshake;
    const w = proc.stdin.getWriter();
    try {
      await w.write(enc.encode("marker-before-1\n"));
      await until(() => out().includes("marker-before-1"), "the first echo");
      // s_client handles one command per stdin read: wait until it did the update before the next line.
      await w.write(enc.encode("K\n"));
      await until(() => out().includes("KEYUPDATE"), "s_client's KeyUpdate");
      await w.write(enc.encode("marker-after-peer-update-2\n"));
      await until(() => out().includes("marker-after-peer-update-2"), "the echo after KeyUpdate");
      // And one initiated by us, with a request for the client's.
      s.engine.keyUpdate!(true);
      await w.write(enc.encode("marker-after-our-update-3\n"));
      await until(() => out().includes("marker-after-our-update-3"), "the echo after our KeyUpdate");
    } finally {
      await w.close().catch(() => {});
      proc.kill("SIGTERM");
      await proc.status;
      await s.done;
    }
    assertEquals(dec.decode(s.received()), "marker-before-1\nmarker-after-peer-update-2\nmarker-after-our-update-3\n");
  },
});

Deno.test({
  name: "tls13 client handles KeyUpdate (update_requested) from openssl s_server",
  ignore: !hasOpenssl,
  async fn() {
    const pki = testPki();
    const d = await pkiDir();
    const port = freePort();
    const proc = new Deno.Command("openssl", {
      args: [
        "s_server",
        "-tls1_3",
        "-accept",
        `127.0.0.1:${port}`,
        "-naccept",
        "1",
        "-cert",
        `${d}/server_ecdsa.crt`,
        "-key",
        `${d}/server_ecdsa.key`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = collect(proc);
    await until(() => out().includes("ACCEPT"), "s_server");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const s = runOverSocket(
      conn,
      (cb) => createTls13Client({ serverName: "localhost", trustedCertificates: [pki.ecdsaRoot] }, cb),
    );
    await s.handshake;
    const w = proc.stdin.getWriter();
    try {
      s.engine.send(enc.encode("marker-one-1\n"));
      await until(() => out().includes("marker-one-1"), "the first line at s_server");
      await w.write(enc.encode("K\n")); // s_server: KeyUpdate(update_requested)
      // s_server handles "K" only alone in a stdin read and prints nothing we can see through a pipe: repeat the
      // next line until one arrives (a copy read together with the "K" is dropped, after the update).
      const deadline = Date.now() + 5000;
      while (s.received().length === 0) {
        if (Date.now() > deadline) throw new Error("timed out waiting for the line from s_server");
        await new Promise((r) => setTimeout(r, 100));
        if (s.received().length === 0) await w.write(enc.encode("from server\n"));
      }
      s.engine.send(enc.encode("marker-two-2\n")); // under our updated key
      await until(() => out().includes("marker-two-2"), "the line after KeyUpdate at s_server");
      s.engine.keyUpdate!(false);
      s.engine.send(enc.encode("marker-three-3\n"));
      await until(() => out().includes("marker-three-3"), "the line after our KeyUpdate at s_server");
    } finally {
      await w.close().catch(() => {});
      proc.kill("SIGTERM");
      await proc.status;
      s.close();
      await s.done;
    }
    assert(dec.decode(s.received()).startsWith("from server\n"));
  },
});

Deno.test({
  name: "tls13 interop temp files are removed",
  ignore: !hasOpenssl,
  async fn() {
    if (dir) await Deno.remove(dir, { recursive: true });
    dir = undefined;
  },
});
