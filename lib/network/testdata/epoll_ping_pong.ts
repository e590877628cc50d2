/**
 * Child process of the epoll engine's deoptimization test: two epoll connections over loopback exchange
 * `Deno.args[0]` one-byte messages, one at a time, so that the engine's hot path (`#dispatch`, `onEvent`,
 * `#readOnce`, `flush`) gets optimized; then prints `exchanges N`. Run with `--v8-flags=--trace-deopt`.
 *
 * @module
 */
import { connectEpoll, type EpollConnection, EpollListener } from "../epoll.ts";

const rounds = Number(Deno.args[0] ?? 20000);
const listener = EpollListener.listen({ hostname: "127.0.0.1", port: 0 });
if (!listener) throw new Error("the epoll engine is not available");
const accepted = new Promise<EpollConnection>((resolve) =>
  listener.start(resolve, (e) => {
    throw e;
  })
);
const dialled = await connectEpoll("127.0.0.1", listener.port, 2000)!;
const server = await accepted;
listener.close();
const byte = new Uint8Array([1]);
let exchanges = 0;
const finished = new Promise<void>((resolve) => {
  server.setHandler({ onData: (d) => server.write(d), onEof: () => server.close(), onClose() {} });
  dialled.setHandler({
    onData() {
      if (++exchanges < rounds) dialled.write(byte);
      else dialled.close(), resolve();
    },
    onEof: () => dialled.close(),
    onClose() {},
  });
});
server.start();
dialled.start();
dialled.write(byte);
await finished;
await Promise.all([server.done, dialled.done]);
console.log(`exchanges ${exchanges}`);
