/**
 * DenoConnection over real loopback sockets: read pacing and the zero-copy relay (a chunk handed to another
 * connection without a copy must not be overwritten by the next read before it is written).
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { DenoConnection } from "./connection.ts";
import { connectEpoll, epollAvailable } from "./epoll.ts";
import { assertSameBytes, concat, handler, pattern, readToEnd, writeInChunks } from "./_test_util.ts";

const enc = new TextEncoder();

/** A connected pair of sockets: [accepted, dialled]. */
async function pair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dial = Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const acc = await l.accept();
  l.close();
  return [acc as Deno.TcpConn, await dial];
}

Deno.test("relay: chunks written without a copy arrive intact behind a slow reader", async () => {
  const [srcIn, srcOut] = await pair(); // the source writes into srcOut; the relay reads srcIn
  const [sinkIn, sinkOut] = await pair(); // the relay writes sinkIn; the sink reads sinkOut
  const down = new DenoConnection(srcIn);
  const up = new DenoConnection(sinkIn);
  down.setHandler(handler({
    onData: (d) => up.write(d),
    onEof: () => up.closeWrite(),
  }));
  up.setHandler(handler({}));
  up.start();
  down.start();
  const data = pattern(6 * 1024 * 1024 + 123, 7);
  // Varied chunk sizes, so reads see partial, full and grown buffers.
  const writer = writeInChunks(srcOut, data, [1, 100, 4096, 65536, 200_000]).then(() => srcOut.closeWrite());
  const got = await readToEnd(sinkOut, 3, 2);
  await writer;
  assertSameBytes(got, data, "relayed");
  down.close();
  up.close();
  srcOut.close();
  sinkOut.close();
});

Deno.test("relay: a borrowed chunk followed by another write in the same turn keeps the order", async () => {
  const [srcIn, srcOut] = await pair();
  const [sinkIn, sinkOut] = await pair();
  const down = new DenoConnection(srcIn);
  const up = new DenoConnection(sinkIn);
  const mark = enc.encode("|");
  down.setHandler(handler({
    onData: (d) => {
      up.write(d); // a view of down's read buffer: kept without a copy
      up.write(mark); // same turn: both go out in order
    },
    onEof: () => up.closeWrite(),
  }));
  up.setHandler(handler({}));
  up.start();
  down.start();
  const reader = readToEnd(sinkOut);
  for (const w of ["alpha", "beta", "gamma"]) {
    await srcOut.write(enc.encode(w));
    await new Promise((r) => setTimeout(r, 20)); // one chunk per read
  }
  srcOut.closeWrite();
  const text = new TextDecoder().decode(await reader);
  assertEquals(text, "alpha|beta|gamma|");
  down.close();
  up.close();
  srcOut.close();
  sinkOut.close();
});

Deno.test("relay: a read loop paced on a connection that closes goes on reading", async () => {
  const [srcIn, srcOut] = await pair();
  const [sinkIn, sinkOut] = await pair();
  const down = new DenoConnection(srcIn);
  const up = new DenoConnection(sinkIn);
  const seen: string[] = [];
  let eof = false;
  down.setHandler(handler({
    onData: (d) => {
      seen.push(new TextDecoder().decode(d));
      // Big enough that the write op stays pending: the sink never reads.
      up.write(new Uint8Array(8 * 1024 * 1024));
    },
    onEof: () => {
      eof = true;
    },
  }));
  up.setHandler(handler({}));
  up.start();
  down.start();
  await srcOut.write(enc.encode("first"));
  // down is now paced on up's pending flush; closing up must release it.
  for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(seen, ["first"]);
  up.close();
  await srcOut.write(enc.encode("second"));
  srcOut.closeWrite();
  for (let i = 0; i < 200 && !eof; i++) await new Promise((r) => setTimeout(r, 10));
  assert(eof, "the paced read loop never resumed");
  assertEquals(seen.join(""), "firstsecond");
  down.close();
  srcOut.close();
  sinkOut.close();
});

Deno.test({
  name: "relay: chunks of the epoll engine's read buffer taken over by a Deno writer arrive intact and in order",
  ignore: !epollAvailable(),
  async fn() {
    // The source: a Deno listener the test writes into; the relay reads it over an epoll connection and writes each
    // chunk (a view of the engine's shared read buffer) to a DenoConnection behind a slow reader, so chunks pile up
    // behind the op in flight. Every fifth chunk is followed by a small write in the same call, which is copied and
    // must come out after the chunk, and after any chunks queued before it.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const src = await connectEpoll("127.0.0.1", (l.addr as Deno.NetAddr).port, 2000)!;
    const srcOut = await l.accept();
    l.close();
    const [sinkIn, sinkOut] = await pair();
    const up = new DenoConnection(sinkIn);
    const sent: Uint8Array[] = [];
    let chunks = 0;
    const mark = enc.encode("<|>");
    src.setHandler(handler({
      onData: (d) => {
        sent.push(d.slice());
        up.write(d);
        if (++chunks % 5 === 0) {
          sent.push(mark);
          up.write(mark);
        }
      },
      onEof: () => up.closeWrite(),
    }));
    up.setHandler(handler({}));
    up.start();
    src.start();
    const data = pattern(6 * 1024 * 1024 + 321, 19);
    const writer = writeInChunks(srcOut, data, [65536, 3000, 200_000, 17]).then(() => srcOut.closeWrite());
    const got = await readToEnd(sinkOut, 4, 2);
    await writer;
    assertSameBytes(got, concat(sent), "relayed");
    assert(chunks >= 5, `only ${chunks} chunks`);
    assertEquals(up.bufferedAmount, 0);
    src.close();
    up.close();
    srcOut.close();
    sinkOut.close();
    await src.done;
  },
});
