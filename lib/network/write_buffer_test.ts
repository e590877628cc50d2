/** WriteBuffer: the queue, counts, watermarks and flush-on-close state shared by both socket engines. */
import { assert, assertEquals } from "../../tests/assert.ts";
import { FLUSH_CLOSE_TIMEOUT_MS, WriteBuffer } from "./write_buffer.ts";
import { pendingTimers } from "./timer_wheel.ts";
import { concat, pattern } from "./_test_util.ts";

Deno.test("WriteBuffer keeps bytes in order across partial sends and a growing chain", () => {
  const b = new WriteBuffer();
  const data = pattern(300_000, 3);
  const got: Uint8Array[] = [];
  let o = 0;
  let i = 0;
  // Writes of varied sizes, each followed by a partial send: the queue grows past 16 and 64 KiB, into a chain.
  while (o < data.length) {
    const n = Math.min(data.length - o, [10, 1000, 9000, 40_000][i++ % 4]!);
    b.write(data.subarray(o, o + n));
    o += n;
    const take = Math.min(b.unsent().length, 7000);
    got.push(b.unsent().slice(0, take));
    b.consume(take);
    b.sent(take);
  }
  while (b.length > 0) {
    const u = b.unsent().slice();
    got.push(u);
    b.consume(u.length);
    b.sent(u.length);
  }
  assertEquals(concat(got), data);
  assertEquals(b.bufferedAmount, 0);
  assertEquals(b.bytesWritten, data.length);
});

Deno.test("WriteBuffer detach hands over the unsent bytes from the start of the buffer", () => {
  const b = new WriteBuffer();
  b.write(new Uint8Array([1, 2, 3, 4, 5]));
  b.consume(2);
  b.sent(2);
  const n = b.length;
  const buf = b.detach();
  assertEquals([...buf.subarray(0, n)], [3, 4, 5]);
  assertEquals(b.length, 0);
  assertEquals(b.bufferedAmount, 3);
  b.write(new Uint8Array([6]));
  assertEquals([...b.unsent()], [6]);
  assert(b.unsent().buffer !== buf.buffer);
});

Deno.test("WriteBuffer queues a backlog as a chain of pooled buffers growing to 256 KiB, sent and detached in order", () => {
  const b = new WriteBuffer(8 * 1024 * 1024);
  const data = pattern(1_000_000, 7);
  // A slow reader's backlog: 16 KiB records and one 300 KB write, more than the pool's largest class.
  let o = 0;
  while (o < 400_000) {
    b.write(data.subarray(o, o + 16_384));
    o += 16_384;
  }
  b.write(data.subarray(o, o + 300_000));
  o += 300_000;
  assertEquals(b.length, o);
  // A little over the first buffer takes a buffer for what is queued (64 KiB), not the largest class.
  const small = new WriteBuffer();
  small.write(data.subarray(0, 16_384));
  small.write(data.subarray(0, 100));
  small.consume(small.unsent().length);
  assertEquals(small.unsent().buffer.byteLength, 64 * 1024);
  small.reset();
  const got: Uint8Array[] = [];
  const first = b.unsent();
  assertEquals(first.length, 16_384, "the first buffer is sized for the first write");
  assertEquals(first.buffer.byteLength, 16_384);
  got.push(first.slice(0, 1000));
  b.consume(1000);
  b.sent(1000);
  // The Deno engine's op takes one buffer of the chain at a time.
  const n = b.headLength;
  const head = b.detach();
  got.push(head.slice(0, n));
  assertEquals(b.length, o - 16_384);
  let size = 0;
  while (b.length > 0) {
    const u = b.unsent();
    const cap = u.buffer.byteLength;
    assert(
      [64 * 1024, 256 * 1024].includes(cap) && cap >= size,
      `later buffers grow through the pool's classes: ${cap}`,
    );
    size = cap;
    got.push(u.slice());
    b.consume(u.length);
    b.sent(u.length);
    if (b.length === 100_000) b.write(data.subarray(o, o + 5)), o += 5;
  }
  b.write(data.subarray(o));
  while (b.length > 0) {
    const u = b.unsent();
    got.push(u.slice());
    b.consume(u.length);
  }
  assertEquals(concat(got), data);
});

Deno.test("WriteBuffer calls onWriteBlocked past the high watermark and onWriteDrained below half of it, once each", () => {
  const b = new WriteBuffer(100);
  const calls: string[] = [];
  b.listener = { onWriteBlocked: () => calls.push("blocked"), onWriteDrained: () => calls.push("drained") };
  b.write(new Uint8Array(100));
  assertEquals(calls, []);
  b.countBorrowed(1);
  assertEquals(calls, ["blocked"]);
  b.write(new Uint8Array(50));
  assertEquals(calls, ["blocked"]);
  b.sent(100);
  assertEquals(b.bufferedAmount, 51);
  assertEquals(calls, ["blocked"]);
  b.sent(2);
  assertEquals(calls, ["blocked", "drained"]);
  b.sent(49);
  assertEquals(calls, ["blocked", "drained"]);
  assertEquals(b.bytesWritten, 151);
});

Deno.test("WriteBuffer onWriteBlocked sees the bytes that crossed the watermark already queued", () => {
  const b = new WriteBuffer(4);
  b.listener = {
    onWriteBlocked: () => {
      // A handler that writes from the callback: its bytes go behind the ones that blocked.
      b.write(new Uint8Array([9]));
    },
  };
  b.write(new Uint8Array([1, 2, 3, 4, 5]));
  assertEquals([...b.unsent()], [1, 2, 3, 4, 5, 9]);
});

Deno.test("WriteBuffer closeWrite shuts at once when nothing is pending, else once after the drain", () => {
  const now = new WriteBuffer();
  assert(now.closeWrite(false));
  assert(now.writeClosed);
  assertEquals(now.afterDrain(), undefined);

  const later = new WriteBuffer();
  assertEquals(later.closeWrite(true), false);
  assertEquals(later.afterDrain(), "shutdown");
  assertEquals(later.afterDrain(), undefined);
});

Deno.test("WriteBuffer closeAfterFlush asks for the close after the drain, and reset stops its timer", () => {
  const b = new WriteBuffer();
  let timedOut = 0;
  b.closeAfterFlush(() => timedOut++);
  assert(b.writeClosed);
  assertEquals(b.afterDrain(), "close");
  assertEquals(b.afterDrain(), "close");
  // The test sanitizer fails the test if the timer were left pending.
  b.reset();
  assertEquals(timedOut, 0);
});

Deno.test("WriteBuffer closeAfterFlush arms one wheel timer, which reset cancels", () => {
  // That it fires after FLUSH_CLOSE_TIMEOUT_MS is checked on real sockets in epoll_test.ts.
  assertEquals(FLUSH_CLOSE_TIMEOUT_MS, 5000);
  const before = pendingTimers();
  const b = new WriteBuffer();
  let timedOut = 0;
  b.closeAfterFlush(() => timedOut++);
  // A second flushing close keeps the first deadline.
  b.closeAfterFlush(() => timedOut += 10);
  assertEquals(pendingTimers(), before + 1);
  b.reset();
  assertEquals(pendingTimers(), before);
  assertEquals(timedOut, 0);
});

Deno.test("WriteBuffer reset forgets the queue and stops calling the listener", () => {
  const b = new WriteBuffer(10);
  const calls: string[] = [];
  b.listener = { onWriteBlocked: () => calls.push("blocked"), onWriteDrained: () => calls.push("drained") };
  b.write(new Uint8Array(20));
  b.reset();
  assertEquals(b.length, 0);
  assertEquals(b.bufferedAmount, 0);
  b.sent(0);
  assertEquals(calls, ["blocked"]);
});
