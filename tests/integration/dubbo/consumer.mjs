// A Dubbo consumer (sofa-rpc-node RpcClient over js-remoting-for-apache-dubbo), for tests/integration/dubbo_test.ts.
// Usage: node consumer.mjs <host:port> <interface> <version> <calls> <concurrency> [method] [timeoutMs]
// Makes <calls> calls of echo("<i>") (or <method>), <concurrency> at a time, and prints one JSON line:
// { ok, mismatched, errors: { message: count }, answers: { tag: count }, ms }.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { RpcClient } = require("sofa-rpc-node").client;
const protocol = require("js-remoting-for-apache-dubbo");

const [host, interfaceName, version, callsArg = "1", concArg = "1", method = "echo", timeoutArg = "5000"] = process
  .argv.slice(2);
const calls = Number(callsArg);
const concurrency = Number(concArg);
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const client = new RpcClient({ logger: quiet, protocol });
const consumer = client.createConsumer({
  interfaceName,
  version,
  serverHost: `dubbo://${host}`,
  responseTimeout: Number(timeoutArg),
});
await consumer.ready();
const out = { ok: 0, mismatched: 0, errors: {}, answers: {}, ms: 0 };
const t0 = Date.now();
let next = 0;
async function worker() {
  while (next < calls) {
    const i = next++;
    const arg = `c${i}`;
    try {
      const args = method === "slow" ? [arg, 2000] : method === "boom" ? [] : [arg];
      const r = await consumer.invoke(method, args, { responseTimeout: Number(timeoutArg) });
      const [tag, echoed] = String(r).split(":");
      if (echoed !== arg) out.mismatched++;
      else out.ok++;
      out.answers[tag] = (out.answers[tag] ?? 0) + 1;
    } catch (e) {
      const m = String(e?.message ?? e).slice(0, 200);
      out.errors[m] = (out.errors[m] ?? 0) + 1;
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
out.ms = Date.now() - t0;
console.log(JSON.stringify(out));
await client.close();
process.exit(0);
