// A Dubbo provider (sofa-rpc-node RpcServer over js-remoting-for-apache-dubbo), for tests/integration/dubbo_test.ts.
// Usage: node provider.mjs <tag> <interface>:<version>[,<interface>:<version>...]
// Listens on an ephemeral loopback port and prints one line "PORT <n>" when ready. Methods of every service:
// echo(s) -> "<tag>:<s>", slow(s, ms) -> the same after ms, boom() -> throws.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { RpcServer } = require("sofa-rpc-node").server;
const protocol = require("js-remoting-for-apache-dubbo");

const [tag = "p", list = "com.ferry.EchoService:1.0.0"] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error: (...a) => console.error(...a) };
const server = new RpcServer({ logger: quiet, protocol, port: 0, publishAddress: "127.0.0.1" });
for (const item of list.split(",")) {
  const [interfaceName, version] = item.split(":");
  server.addService({ interfaceName, version }, {
    // sofa-rpc-node only calls async functions ("Can not find method" otherwise).
    // deno-lint-ignore require-await
    async echo(s) {
      return `${tag}:${s}`;
    },
    async slow(s, ms) {
      await new Promise((r) => setTimeout(r, Number(ms)));
      return `${tag}:${s}`;
    },
    // deno-lint-ignore require-await
    async boom() {
      throw new Error(`${tag}: boom`);
    },
  });
}
server.on("error", (e) => console.error("provider error:", e.message));
await server.start();
console.log(`PORT ${server.publishPort}`);
process.on("SIGTERM", () => process.exit(0));
