import { assert, assertEquals } from "../../tests/assert.ts";
import { DenoConnection } from "../network/connection.ts";
import { transportDuplex } from "./_node_tls.ts";

Deno.test("transportDuplex: bytes flow both ways; a write after destruction is dropped without an error", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: l.addr.port });
  const server = await l.accept();
  l.close();
  try {
    const d = transportDuplex(new DenoConnection(server), new TextEncoder().encode("peeked "));
    const errors: unknown[] = [];
    d.on("error", (e) => errors.push(e));
    const chunks: string[] = [];
    d.on("data", (c: Uint8Array) => chunks.push(new TextDecoder().decode(c)));
    await client.write(new TextEncoder().encode("hello"));
    await new Promise<void>((resolve) => d.write(new TextEncoder().encode("from the duplex"), () => resolve()));
    const buf = new Uint8Array(64);
    const n = await client.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "from the duplex");
    for (let i = 0; i < 50 && chunks.join("") !== "peeked hello"; i++) await new Promise((r) => setTimeout(r, 10));
    assertEquals(chunks.join(""), "peeked hello");
    // Deno's TLSSocket destroys its stream on 'finish' and then hands over its last record (close_notify): the write
    // is dropped and its callback called, with no ERR_STREAM_DESTROYED built or emitted.
    d.destroy();
    let called: unknown = "not called";
    assertEquals(d.write(new Uint8Array(24), (e?: Error | null) => called = e), false);
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(called, undefined);
    assertEquals(errors, []);
    // The socket under it was closed by the destruction: the peer reads end of stream, not the dropped bytes.
    assert((await client.read(buf)) === null);
  } finally {
    client.close();
  }
});
