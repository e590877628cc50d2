/**
 * Bulk throughput of the engine in memory (`deno bench -A lib/tls/engine/tls13/engine_bench.ts`): 1 MiB of
 * application data sealed by a client engine and opened by a server engine, per suite; full handshakes, and
 * handshakes resumed with a session ticket (psk_dhe_ke: ECDHE + PSK, no certificate or signature). Not a timed test.
 */
import type { TlsEngineCallbacks } from "../../../api/tls.ts";
import { createTls13Client, createTls13Server, SessionTicketKeys, Tls13SessionCache } from "./mod.ts";
import type { Tls13GroupName } from "./groups.ts";
import type { Tls13CipherSuiteName } from "./suites.ts";
import { endpoint, pump } from "./testdata/harness.ts";
import { testPki } from "./testdata/pki.ts";

const MIB = new Uint8Array(1 << 20);

function connected(suite: Tls13CipherSuiteName) {
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client({
      serverName: "localhost",
      trustedCertificates: [pki.sm2Root, pki.ecdsaRoot],
      cipherSuites: [suite],
    }, cb)
  );
  let received = 0;
  const s = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Server({ certificates: [pki.sm2Server, pki.ecdsaServer] }, {
      ...cb,
      onData: (d) => {
        received += d.length;
      },
    })
  );
  c.engine.start();
  pump(c, s);
  return {
    transfer() {
      received = 0;
      c.engine.send(MIB);
      for (const chunk of c.outbox.splice(0)) s.engine.receive(chunk);
      if (received !== MIB.length) throw new Error("short transfer");
    },
  };
}

for (
  const suite of [
    "TLS_SM4_GCM_SM3",
    "TLS_SM4_CCM_SM3",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
  ] as const
) {
  const conn = connected(suite);
  Deno.bench({ name: `tls13 ${suite} seal+open 1 MiB`, group: "bulk", fn: () => conn.transfer() });
}

Deno.bench({
  name: "tls13 full handshake TLS_SM4_GCM_SM3 curveSM2 sm2sig_sm3",
  group: "handshake",
  fn: () => {
    const pki = testPki();
    const c = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Client({
        serverName: "localhost",
        trustedCertificates: [pki.sm2Root],
        cipherSuites: ["TLS_SM4_GCM_SM3"],
        groups: ["curveSM2"],
      }, cb)
    );
    const s = endpoint((cb: TlsEngineCallbacks) => createTls13Server({ certificates: [pki.sm2Server] }, cb));
    c.engine.start();
    pump(c, s);
    if (!s.engine.handshakeComplete) throw new Error("handshake failed");
  },
});

Deno.bench({
  name: "tls13 full handshake TLS_AES_128_GCM_SHA256 x25519 ecdsa",
  group: "handshake",
  fn: () => {
    const pki = testPki();
    const c = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Client({
        serverName: "localhost",
        trustedCertificates: [pki.ecdsaRoot],
        cipherSuites: ["TLS_AES_128_GCM_SHA256"],
        groups: ["x25519"],
      }, cb)
    );
    const s = endpoint((cb: TlsEngineCallbacks) => createTls13Server({ certificates: [pki.ecdsaServer] }, cb));
    c.engine.start();
    pump(c, s);
    if (!s.engine.handshakeComplete) throw new Error("handshake failed");
  },
});

/** Client and server engines with tickets on, primed by one full handshake; each call is one resumed handshake. */
function resumer(suite: Tls13CipherSuiteName, group: Tls13GroupName, sm2: boolean): () => void {
  const pki = testPki();
  const keys = SessionTicketKeys.random();
  const cache = new Tls13SessionCache();
  const once = (expectResumed: boolean) => {
    const c = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Client({
        serverName: "localhost",
        trustedCertificates: [sm2 ? pki.sm2Root : pki.ecdsaRoot],
        cipherSuites: [suite],
        groups: [group],
        sessionCache: cache,
      }, cb)
    );
    const s = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Server({ certificates: [sm2 ? pki.sm2Server : pki.ecdsaServer], sessionTickets: { keys } }, cb)
    );
    c.engine.start();
    pump(c, s);
    if (s.info?.resumed !== expectResumed) throw new Error("resumption failed");
  };
  once(false);
  return () => once(true);
}

const resumedSm = resumer("TLS_SM4_GCM_SM3", "curveSM2", true);
Deno.bench({
  name: "tls13 resumed handshake TLS_SM4_GCM_SM3 curveSM2 (ticket)",
  group: "handshake",
  fn: resumedSm,
});

const resumedStd = resumer("TLS_AES_128_GCM_SHA256", "x25519", false);
Deno.bench({
  name: "tls13 resumed handshake TLS_AES_128_GCM_SHA256 x25519 (ticket)",
  group: "handshake",
  fn: resumedStd,
});

/**
 * The server's side only (what a terminator pays per handshake; the client's work is outside the timed part):
 * TLS_SM4_GCM_SM3 / curveSM2 / sm2sig_sm3 with tickets on, full and resumed. Each handshake is timed in two
 * parts, the ClientHello (→ the server's flight: ECDHE, key schedule, CertificateVerify) and the client Finished
 * (→ two NewSessionTickets).
 */
function serverSide(resume: boolean) {
  const pki = testPki();
  const keys = SessionTicketKeys.random();
  const cache = new Tls13SessionCache();
  const client = () =>
    endpoint((cb: TlsEngineCallbacks) =>
      createTls13Client({
        serverName: "localhost",
        trustedCertificates: [pki.sm2Root],
        cipherSuites: ["TLS_SM4_GCM_SM3"],
        groups: ["curveSM2"],
        ...(resume ? { sessionCache: cache } : {}),
      }, cb)
    );
  const server = () =>
    endpoint((cb: TlsEngineCallbacks) =>
      createTls13Server({ certificates: [pki.sm2Server], sessionTickets: { keys } }, cb)
    );
  if (resume) {
    const c = client(), s = server();
    c.engine.start();
    pump(c, s);
  }
  /** One handshake; `part` 0 times the ClientHello, 1 the client Finished. */
  return (b: Deno.BenchContext, part: 0 | 1) => {
    const c = client(), s = server();
    s.engine.start();
    c.engine.start();
    const hello = c.outbox.splice(0);
    if (part === 0) b.start();
    for (const x of hello) s.engine.receive(x);
    if (part === 0) b.end();
    for (const x of s.outbox.splice(0)) c.engine.receive(x);
    const fin = c.outbox.splice(0);
    if (part === 1) b.start();
    for (const x of fin) s.engine.receive(x);
    if (part === 1) b.end();
    for (const x of s.outbox.splice(0)) c.engine.receive(x);
    if (s.info?.resumed !== resume) throw new Error("unexpected handshake kind");
  };
}

for (const resume of [false, true]) {
  const run = serverSide(resume);
  const kind = resume ? "resumed" : "full";
  Deno.bench({
    name: `tls13 server side, ${kind} TLS_SM4_GCM_SM3: ClientHello -> flight`,
    group: "server",
    fn: (b) => run(b, 0),
  });
  Deno.bench({
    name: `tls13 server side, ${kind} TLS_SM4_GCM_SM3: client Finished -> tickets`,
    group: "server",
    fn: (b) => run(b, 1),
  });
}
