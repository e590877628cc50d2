// A sofa-rpc-node Bolt provider for tests/integration/bolt_test.ts and bench/rpc.sh.
// usage: node provider.mjs <port> <name> <interface:version>[,<interface:version>...]
// Each service answers echo(x) with "<name>:<x>", slow(ms, x) after ms milliseconds, fail(msg) with an error.
// Prints "ready <port>" once listening.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { RpcServer } = require("sofa-rpc-node").server;

const [port, name, services] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error: (...a) => console.error(...a) };
const server = new RpcServer({ logger: quiet, port: Number(port) });
for (const s of services.split(",")) {
  const [interfaceName, version] = s.split(":");
  server.addService({ interfaceName, version }, {
    // sofa-rpc-node awaits service methods: they stay async.
    // deno-lint-ignore require-await
    async echo(x) {
      return `${name}:${x}`;
    },
    async slow(ms, x) {
      await new Promise((r) => setTimeout(r, ms));
      return `${name}:${x}`;
    },
    // deno-lint-ignore require-await
    async fail(msg) {
      throw new Error(msg);
    },
  });
}
await server.start();
console.log(`ready ${port}`);
process.on("SIGTERM", () => process.exit(0));
