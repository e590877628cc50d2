/**
 * The descriptor-passing control channel over real Unix sockets: a listening TCP socket handed across and served
 * from the received descriptor, frames in order with and without descriptors, large frames, end of stream, and the
 * errors an operator sees (no one listening, a name already taken).
 */
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { closeFd, connectFdChannel, type FdChannel, fdPassingAvailable, FdServer } from "./_fd_passing.ts";
import { epollAvailable, EpollConnection, EpollListener } from "./epoll.ts";

const ignore = !fdPassingAvailable() || !epollAvailable();
const enc = new TextEncoder();
const dec = new TextDecoder();

function uniqueName(): string {
  return `@ferry_fd_test_${Deno.pid}_${crypto.randomUUID().slice(0, 8)}`;
}

async function pair(name = uniqueName()): Promise<{ server: FdServer; a: FdChannel; b: FdChannel }> {
  const server = FdServer.listen(name);
  const a = connectFdChannel(name);
  const b = await server.accept();
  assert(b !== undefined);
  return { server, a, b };
}

Deno.test({
  name: "FdChannel carries a listening socket that the receiver serves from",
  ignore,
  async fn() {
    const { server, a, b } = await pair();
    const l = EpollListener.listen({ hostname: "127.0.0.1", port: 0 })!;
    await a.send(enc.encode("take it"), [l.fd]);
    const m = await b.recv();
    assert(m !== undefined);
    assertEquals(dec.decode(m.payload), "take it");
    assertEquals(m.fds.length, 1);
    assertNotEquals(m.fds[0], l.fd, "the receiver holds its own descriptor");
    const adopted = EpollListener.adopt(m.fds[0]!)!;
    assertEquals(adopted.port, l.port);
    // The sender lets go of its copy: the socket stays open through the received one.
    l.close();
    const accepted = new Promise<string>((resolve) => {
      adopted.start((c) => {
        c.setHandler({
          onData: (d) => {
            c.write(d);
            c.close({ flush: true });
          },
          onEof: () => {},
          onClose: () => {},
        });
        c.start();
        resolve(c.remoteAddress);
      }, (e) => resolve(`error: ${e.message}`));
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: adopted.port });
    await conn.write(enc.encode("ping"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    assertEquals(dec.decode(buf.subarray(0, n ?? 0)), "ping");
    assertEquals(await accepted, "127.0.0.1");
    conn.close();
    adopted.close();
    a.close();
    b.close();
    server.close();
  },
});

Deno.test({
  name: "FdChannel keeps frames and their descriptors in order, large frames included",
  ignore,
  async fn() {
    const { server, a, b } = await pair();
    const l1 = EpollListener.listen({ hostname: "127.0.0.1", port: 0 })!;
    const l2 = EpollListener.listen({ hostname: "127.0.0.1", port: 0 })!;
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const sends = Promise.all([
      a.send(enc.encode("one"), [l1.fd, l2.fd]),
      a.send(enc.encode("two")),
      a.send(big),
      a.send(enc.encode("four"), [l2.fd]),
    ]);
    const got: { text: string; ports: number[] }[] = [];
    for (let i = 0; i < 4; i++) {
      const m = await b.recv();
      assert(m !== undefined);
      if (i === 2) {
        assertEquals(m.payload.length, big.length);
        assert(m.payload.every((v, j) => v === j % 251), "large payload intact");
        got.push({ text: "big", ports: [] });
        continue;
      }
      const ports = m.fds.map((fd) => {
        const x = EpollListener.adopt(fd)!;
        const p = x.port;
        x.close();
        return p;
      });
      got.push({ text: dec.decode(m.payload), ports });
    }
    await sends;
    assertEquals(got, [
      { text: "one", ports: [l1.port, l2.port] },
      { text: "two", ports: [] },
      { text: "big", ports: [] },
      { text: "four", ports: [l2.port] },
    ]);
    l1.close();
    l2.close();
    a.close();
    assertEquals(await b.recv(), undefined, "end of stream after the peer closes");
    b.close();
    server.close();
  },
});

Deno.test({
  name: "FdChannel errors name the socket: no listener, name taken; adopt refuses a bad descriptor",
  ignore,
  async fn() {
    const name = uniqueName();
    const e = assertThrows(() => connectFdChannel(name)) as Error & { code: number };
    assertEquals(e.code, 111);
    assert(e.message.includes(name), e.message);
    const server = FdServer.listen(name);
    const taken = assertThrows(() => FdServer.listen(name)) as Error & { code: number };
    assertEquals(taken.code, 98);
    // Only a listening TCP socket is adopted.
    assertThrows(() => EpollListener.adopt(987_654), Error, "Bad file descriptor");
    server.close();
    await assertRejects(
      async () => {
        const s = FdServer.listen(uniqueName());
        s.close();
        await s.accept().then((c) => {
          if (c === undefined) throw new Error("closed");
        });
      },
      Error,
      "closed",
    );
  },
});

Deno.test({
  name: "FdServer on a file system path replaces a stale socket file and removes it on close",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/ferry.sock`;
    const first = FdServer.listen(path);
    first.close();
    await Deno.writeFile(path, new Uint8Array(0)).catch(() => {});
    // A regular file is not a socket anyone answers on: it is replaced.
    const s = FdServer.listen(path);
    const a = connectFdChannel(path);
    const b = (await s.accept())!;
    await a.send(enc.encode("hello"));
    assertEquals(dec.decode((await b.recv())!.payload), "hello");
    const busy = assertThrows(() => FdServer.listen(path)) as Error & { code: number };
    assertEquals(busy.code, 98);
    a.close();
    b.close();
    s.close();
    await assertRejects(() => Deno.stat(path), Deno.errors.NotFound);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "EpollConnection.detach and adopt move a connected socket across a channel; the peer sees no close",
  ignore,
  async fn() {
    const { server, a, b } = await pair();
    const l = EpollListener.listen({ hostname: "127.0.0.1", port: 0 })!;
    const echo = (c: EpollConnection, tag: string, closed: string[]) => {
      c.setHandler({
        onData: (d) => c.write(enc.encode(`${tag}:${dec.decode(d)}`)),
        onEof: () => c.close(),
        onClose: (reason) => closed.push(reason),
      });
      c.start();
    };
    const firstClosed: string[] = [];
    const accepted = new Promise<EpollConnection>((resolve) => {
      l.start((c) => {
        echo(c, "old", firstClosed);
        resolve(c);
      }, () => {});
    });
    const client = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
    const buf = new Uint8Array(64);
    const ask = async (text: string) => {
      await client.write(enc.encode(text));
      const n = await client.read(buf);
      return n === null ? "EOF" : dec.decode(buf.subarray(0, n));
    };
    assertEquals(await ask("1"), "old:1");
    const conn = await accepted;
    const fd = conn.detach();
    assert(fd !== undefined);
    assertEquals(firstClosed, ["migrated"]);
    assertEquals(conn.detach(), undefined, "only once");
    await a.send(enc.encode("conn"), [fd]);
    closeFd(fd);
    const m = (await b.recv())!;
    const moved = EpollConnection.adopt(m.fds[0]!)!;
    assertEquals(moved.remotePort, (client.localAddr as Deno.NetAddr).port);
    const secondClosed: string[] = [];
    echo(moved, "new", secondClosed);
    assertEquals(await ask("2"), "new:2");
    client.close();
    await moved.done;
    assertEquals(secondClosed.length, 1);
    l.close();
    a.close();
    b.close();
    server.close();
  },
});
