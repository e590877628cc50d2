import { assert, assertEquals } from "../../tests/assert.ts";
import { TlsAlertError, type TlsEngine, type TlsEngineCallbacks, type TlsHandshakeInfo } from "../api/tls.ts";
import { connectTcp, DenoConnection } from "../network/connection.ts";
import { type EngineConnection, runEngineHandshake } from "./engine_connection.ts";
import { TlsHandshakeError } from "./provider.ts";

/**
 * A toy engine: frames are `[type][len16][payload]`; type 1 = hello (client → server, server answers 1),
 * 2 = data XOR 0x5a, 3 = close_notify, 4 = alert. Enough to exercise the connection, not a cipher.
 */
class FakeEngine implements TlsEngine {
  handshakeComplete = false;
  info: TlsHandshakeInfo | undefined;
  sends = 0;
  #buf = new Uint8Array(0);
  #dead = false;
  constructor(readonly client: boolean, readonly cb: TlsEngineCallbacks, readonly failHandshake = false) {}
  #frame(type: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const f = new Uint8Array(3 + payload.length);
    f[0] = type;
    f[1] = payload.length >> 8;
    f[2] = payload.length & 0xff;
    f.set(payload, 3);
    return f;
  }
  #done(): void {
    this.handshakeComplete = true;
    this.info = { version: "TLSv1.3", cipher: "FAKE_XOR", peerCertificates: [], resumed: false, sni: "fake.test" };
    this.cb.onHandshake(this.info);
  }
  start(): void {
    if (this.client) this.cb.write(this.#frame(1));
  }
  receive(data: Uint8Array): void {
    const b = new Uint8Array(this.#buf.length + data.length);
    b.set(this.#buf);
    b.set(data, this.#buf.length);
    this.#buf = b;
    while (!this.#dead && this.#buf.length >= 3) {
      const len = (this.#buf[1]! << 8) | this.#buf[2]!;
      if (this.#buf.length < 3 + len) return;
      const type = this.#buf[0]!;
      const payload = this.#buf.slice(3, 3 + len);
      this.#buf = this.#buf.slice(3 + len);
      if (type === 1) {
        if (this.failHandshake) {
          this.#dead = true;
          this.cb.write(this.#frame(4));
          this.cb.onError(new TlsAlertError("handshake_failure", "fake: no", { sent: true }));
          return;
        }
        if (!this.client) this.cb.write(this.#frame(1));
        this.#done();
      } else if (type === 2) this.cb.onData(payload.map((x) => x ^ 0x5a));
      else if (type === 3) this.cb.onClose();
      else if (type === 4) {
        this.#dead = true;
        this.cb.onError(new TlsAlertError("handshake_failure", "fake: peer alert", { sent: false }));
      } else {
        this.#dead = true;
        this.cb.onError(new TlsAlertError("decode_error", "fake: bad frame", { sent: true }));
      }
    }
  }
  send(data: Uint8Array): void {
    this.sends++;
    for (let off = 0; off < data.length; off += 60000) {
      this.cb.write(this.#frame(2, data.subarray(off, off + 60000).map((x) => x ^ 0x5a)));
    }
  }
  close(): void {
    this.cb.write(this.#frame(3));
  }
}

async function pair(options: { failServer?: boolean; timeoutMs?: number; silentClient?: boolean } = {}) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = l.accept();
  const clientTcp = await connectTcp("127.0.0.1", l.addr.port, 1000);
  const serverTcp = new DenoConnection(await accepted);
  l.close();
  let serverEngine: FakeEngine | undefined;
  const server = runEngineHandshake(serverTcp, (cb) => serverEngine = new FakeEngine(false, cb, options.failServer), {
    timeoutMs: options.timeoutMs ?? 2000,
  });
  if (options.silentClient) return { server, clientTcp, serverTcp, client: undefined, engine: () => serverEngine };
  const client = runEngineHandshake(clientTcp, (cb) => new FakeEngine(true, cb), { timeoutMs: 2000, client: true });
  return { server, client, clientTcp, serverTcp, engine: () => serverEngine };
}

function collect(conn: EngineConnection): { text: () => string; eof: Promise<void> } {
  let text = "";
  let resolve!: () => void;
  const eof = new Promise<void>((r) => resolve = r);
  conn.setHandler({
    onData: (d) => text += new TextDecoder().decode(d),
    onEof: () => resolve(),
    onClose: () => resolve(),
  });
  conn.start();
  return { text: () => text, eof };
}

Deno.test("EngineConnection carries plaintext both ways and reports the handshake facts", async () => {
  const p = await pair();
  const [server, client] = await Promise.all([p.server, p.client!]);
  assertEquals(server.tls, { version: "TLSv1.3", cipher: "FAKE_XOR", sni: "fake.test" });
  assert(server.secure);
  const got = collect(server);
  const back = collect(client);
  client.write(new TextEncoder().encode("hello "));
  client.write(new TextEncoder().encode("world"));
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(got.text(), "hello world");
  // Writes in one turn are coalesced into one engine send.
  assertEquals(p.engine()!.sends, 0);
  server.write(new TextEncoder().encode("a"));
  server.write(new TextEncoder().encode("b"));
  server.write(new TextEncoder().encode("c"));
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(back.text(), "abc");
  assertEquals(p.engine()!.sends, 1);
  // Half-close: close_notify reaches the server as EOF; the server can still answer.
  client.closeWrite();
  await got.eof;
  server.write(new TextEncoder().encode("bye"));
  server.close({ flush: true });
  await back.eof;
  assertEquals(back.text(), "abcbye");
  client.close();
  await Promise.all([server.done, client.done]);
});

Deno.test("runEngineHandshake rejects with the alert and closes the transport", async () => {
  const p = await pair({ failServer: true });
  const [s, c] = await Promise.allSettled([p.server, p.client!]);
  assert(s.status === "rejected" && s.reason instanceof TlsHandshakeError && s.reason.kind === "handshake");
  assertEquals((s.reason as TlsHandshakeError).alert, "handshake_failure");
  assert(c.status === "rejected");
  await p.serverTcp.done;
  p.clientTcp.close();
});

Deno.test("runEngineHandshake times out a silent peer", async () => {
  const p = await pair({ silentClient: true, timeoutMs: 100 });
  const [s] = await Promise.allSettled([p.server]);
  assert(s.status === "rejected" && (s.reason as TlsHandshakeError).kind === "timeout");
  await p.serverTcp.done;
  p.clientTcp.close();
});

Deno.test("EngineConnection forwards backpressure: a large write blocks then drains", async () => {
  const p = await pair();
  const [server, client] = await Promise.all([p.server, p.client!]);
  let blocked = 0;
  let drained = 0;
  server.setHandler({
    onData() {},
    onEof() {},
    onClose() {},
    onWriteBlocked: () => blocked++,
    onWriteDrained: () => drained++,
  });
  server.start();
  let received = 0;
  client.setHandler({ onData: (d) => received += d.length, onEof() {}, onClose() {} });
  client.readDisable(true);
  client.start();
  server.write(new Uint8Array(4 * 1024 * 1024));
  assertEquals(blocked, 1);
  client.readDisable(false);
  for (let i = 0; i < 100 && received < 4 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 20));
  assertEquals(received, 4 * 1024 * 1024);
  assertEquals(drained, 1);
  server.close();
  client.close();
  await Promise.all([server.done, client.done]);
});
