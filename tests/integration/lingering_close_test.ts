/**
 * Lingering close over real sockets, on both socket engines: a client still sending when Ferry answers with an
 * error (431 for a head that is too large, 413 before a large body) reads the whole answer instead of a TCP
 * reset, also over TLS, and a client that never closes is let go after the lingering timeout
 * (`downstream_cx_delayed_close_timeout`).
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import {
  catchAllRoute,
  hcmBootstrap,
  itOpts,
  readHead,
  sleep,
  spawnFerry,
  startFerry,
  startRawServer,
  stat,
  staticCluster,
} from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";
import type { FerryProcess } from "./_harness.ts";

const enc = new TextEncoder();

/** Routes: `/big` answers 413 at once (before reading the body), everything else 200. */
const ROUTES = `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/big" }
    direct_response: { status: 413, body: { inline_string: "too big for us" } }
  - match: { prefix: "/" }
    direct_response: { status: 200, body: { inline_string: "hi" } }`;

async function startLingering(io: "epoll" | "deno"): Promise<{ ferry: FerryProcess; port: number; admin: number }> {
  const port = freePort();
  const admin = freePort();
  const ferry = await spawnFerry(
    ["--drain-time-s", "1", "--config-yaml", hcmBootstrap({ routes: ROUTES, port, adminPort: admin })],
    { adminPort: admin, ...(io === "deno" ? { env: { FERRY_IO: "deno" } } : {}) },
  );
  await ferry.waitForLog(new RegExp(`listener "test" accepting on 127\\.0\\.0\\.1:${port} \\(${io}\\)`));
  return { ferry, port, admin };
}

async function adminStat(admin: number, name: string): Promise<number | undefined> {
  const r = await fetch(
    `http://127.0.0.1:${admin}/stats?format=json&filter=${encodeURIComponent(`^${name.replace(/\./g, "\\.")}$`)}`,
  );
  const j = await r.json() as { stats: { name?: string; value?: number }[] };
  return j.stats.find((s) => s.name === name)?.value;
}

/**
 * Sends `head` and `rest` as fast as the socket takes them, and only then reads the answer, as a client that does not
 * look at the answer before it has sent its whole request. Resolves with everything read up to EOF (or the error
 * that ended the read: a reset).
 */
async function sendThenRead(
  port: number | (() => Promise<Deno.Conn>),
  head: string,
  rest: Uint8Array,
): Promise<{ text: string; err?: string }> {
  const c = typeof port === "number" ? await Deno.connect({ hostname: "127.0.0.1", port }) : await port();
  let writeErr: string | undefined;
  try {
    const all = new Uint8Array(head.length + rest.length);
    all.set(enc.encode(head));
    all.set(rest, head.length);
    for (let off = 0; off < all.length;) off += await c.write(all.subarray(off));
  } catch (e) {
    // The server stopped reading and reset the connection.
    writeErr = `write: ${e instanceof Error ? e.name : String(e)}`;
  }
  let text = "";
  let err: string | undefined;
  const dec = new TextDecoder();
  const buf = new Uint8Array(65536);
  const deadline = setTimeout(() => {
    err = "no EOF within 10 s";
    try {
      c.close();
    } catch { /* closed */ }
  }, 10_000);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
  } catch (e) {
    err ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  } finally {
    clearTimeout(deadline);
  }
  try {
    c.close();
  } catch { /* closed */ }
  err ??= writeErr;
  return err === undefined ? { text } : { text, err };
}

/** Asserts a complete response: the status line, and exactly content-length bytes of body after the head. */
function assertComplete(got: { text: string; err?: string }, status: RegExp, label: string): void {
  assertEquals(
    got.err,
    undefined,
    `${label}: ended in an error after reading ${JSON.stringify(got.text.slice(0, 80))}`,
  );
  assertMatch(got.text, status, label);
  const at = got.text.indexOf("\r\n\r\n");
  assert(at > 0, `${label}: no complete head`);
  const cl = /\r\ncontent-length: (\d+)\r\n/i.exec(got.text.slice(0, at + 2));
  assert(cl !== null, `${label}: no content-length`);
  assertEquals(got.text.length - at - 4, Number(cl[1]), `${label}: body length`);
}

for (const io of ["epoll", "deno"] as const) {
  Deno.test(
    `lingering close (${io}): a client still sending a 100 KiB head reads the whole 431, every time`,
    itOpts,
    async () => {
      const { ferry, port, admin } = await startLingering(io);
      try {
        const big = enc.encode(`${"a".repeat(100 * 1024)}\r\n\r\n`);
        for (let i = 0; i < 5; i++) {
          const got = await sendThenRead(port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", big);
          assertComplete(got, /^HTTP\/1\.1 431 /, `try ${i}`);
          assertMatch(got.text, /\r\nconnection: close\r\n/);
        }
        assertEquals(await adminStat(admin, "http.test.downstream_rq_too_large"), 5);
        // The clients closed first: no lingering period ran out.
        assertEquals(await adminStat(admin, "http.test.downstream_cx_delayed_close_timeout"), 0);
        assertEquals((await ferry.stop()).code, 0);
      } finally {
        await ferry.kill();
      }
    },
  );

  Deno.test(
    `lingering close (${io}): a client still sending a 1 MiB body reads the whole 413 answered before it`,
    itOpts,
    async () => {
      const { ferry, port } = await startLingering(io);
      try {
        const body = new Uint8Array(1024 * 1024).fill(0x62);
        for (let i = 0; i < 5; i++) {
          const got = await sendThenRead(
            port,
            `POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`,
            body,
          );
          assertComplete(got, /^HTTP\/1\.1 413 /, `try ${i}`);
          assert(got.text.endsWith("too big for us"), `try ${i}: ${JSON.stringify(got.text)}`);
        }
        assertEquals((await ferry.stop()).code, 0);
      } finally {
        await ferry.kill();
      }
    },
  );

  Deno.test(
    `lingering close (${io}): a client that never closes is closed after the lingering timeout, and counted`,
    itOpts,
    async () => {
      const { ferry, port, admin } = await startLingering(io);
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await c.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n"));
        // The answer, then EOF at once: the write side is shut while Ferry goes on reading.
        const buf = new Uint8Array(4096);
        let text = "";
        for (let n; (n = await c.read(buf)) !== null;) text += new TextDecoder().decode(buf.subarray(0, n));
        assertMatch(text, /^HTTP\/1\.1 400 /);
        // Ferry still reads (and drops) what comes: the connection is still open.
        await c.write(enc.encode("more bytes nobody will parse"));
        assertEquals(await adminStat(admin, "http.test.downstream_cx_active"), 1);
        // Without more input it gives up after the lingering read timeout (1 s).
        let closed = false;
        for (let i = 0; i < 60 && !closed; i++) {
          await sleep(50);
          closed = (await adminStat(admin, "http.test.downstream_cx_active")) === 0;
        }
        assert(closed, "the lingering connection was not closed");
        assertEquals(await adminStat(admin, "http.test.downstream_cx_delayed_close_timeout"), 1);
        assertEquals(await adminStat(admin, "http.test.downstream_cx_destroy_local"), 1);
        assertEquals((await ferry.stop()).code, 0);
      } finally {
        c.close();
        await ferry.kill();
      }
    },
  );
}

Deno.test("lingering close over native TLS: the 431 and the early 413 arrive whole", itOpts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-linger-" });
  const pki = generateTestPki({ gm: false, hosts: ["localhost"], ips: ["127.0.0.1"] });
  for (const [name, pem] of Object.entries(pki)) await Deno.writeTextFile(`${dir}/${name}`, pem);
  const tls = `transport_socket:
  name: envoy.transport_sockets.tls
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
    common_tls_context:
      tls_certificates:
      - certificate_chain: { filename: ${dir}/server_ecdsa.crt }
        private_key: { filename: ${dir}/server_ecdsa.key }`;
  const yaml = hcmBootstrap({ routes: ROUTES }).replace(
    "    - filters:\n",
    `    - ${tls.split("\n").join("\n      ")}\n      filters:\n`,
  );
  const f = await startFerry(yaml);
  const connect = () =>
    Deno.connectTls({ hostname: "localhost", port: f.port(), caCerts: [pki["ca_ecdsa.crt"]!] }) as Promise<Deno.Conn>;
  try {
    const big = enc.encode(`${"a".repeat(100 * 1024)}\r\n\r\n`);
    const body = new Uint8Array(1024 * 1024).fill(0x62);
    for (let i = 0; i < 3; i++) {
      assertComplete(
        await sendThenRead(connect, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", big),
        /^HTTP\/1\.1 431 /,
        "431",
      );
      const got = await sendThenRead(
        connect,
        `POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`,
        body,
      );
      assertComplete(got, /^HTTP\/1\.1 413 /, "413");
    }
  } finally {
    await f.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "an upstream's 413 before the body was sent: the client reads it and may go on sending, the upstream connection closes",
  itOpts,
  async () => {
    let open = 0;
    const up = startRawServer(async (c) => {
      open++;
      try {
        await readHead(c);
        // Answered at once, keep-alive: only Ferry can tell that this connection is done.
        await c.write(enc.encode("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig"));
        const buf = new Uint8Array(65536);
        while ((await c.read(buf)) !== null) { /* the rest of the body, if any */ }
      } catch {
        /* reset */
      } finally {
        open--;
      }
    });
    const f = await startFerry(
      hcmBootstrap({ routes: catchAllRoute("{ cluster: up }"), clusters: staticCluster("up", [up.port]) }),
    );
    const c = await Deno.connect({ hostname: "127.0.0.1", port: f.port() });
    try {
      // The head and the first KiB of a 1 MiB body; the answer comes before the rest.
      await c.write(enc.encode(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`));
      await c.write(new Uint8Array(1024).fill(0x62));
      let text = "";
      const buf = new Uint8Array(4096);
      for (let n; (n = await c.read(buf)) !== null;) text += new TextDecoder().decode(buf.subarray(0, n));
      assertMatch(text, /^HTTP\/1\.1 413 [^]*\r\nconnection: close\r\n[^]*\r\nbig$/);
      // Ferry still reads (lingering): more of the body goes in without a reset.
      for (let i = 0; i < 16; i++) await c.write(new Uint8Array(16384).fill(0x62));
      for (let i = 0; i < 100 && open > 0; i++) await sleep(20);
      assertEquals(open, 0, "the upstream connection was left open");
      assertEquals(await stat(f, "cluster.up.upstream_cx_active"), 0);
      assertEquals(await stat(f, "cluster.up.upstream_rq_active"), 0);
    } finally {
      c.close();
      await f.stop();
      up.close();
    }
  },
);
