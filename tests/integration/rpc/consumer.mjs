// A sofa-rpc-node Bolt consumer for tests/integration/bolt_test.ts and bench/rpc.sh.
// usage: node consumer.mjs <host:port> <interface> <version> <method> <count> <concurrency> [timeoutMs] [arg]
// Calls <method> <count> times, <concurrency> at once, each with its own argument ("c<i>", or for slow:
// [arg, "c<i>"]), and prints one JSON line: ok (answers that echo their own argument), mismatched, answers by
// provider name, the first error messages, elapsed ms and the process's CPU ms.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { RpcClient } = require("sofa-rpc-node").client;

const [host, interfaceName, version, method, count, concurrency, timeoutMs, arg] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const client = new RpcClient({ logger: quiet });
const consumer = client.createConsumer({ interfaceName, version, serverHost: host });
await consumer.ready();
const total = Number(count);
const timeout = Number(timeoutMs || 3000);
const out = { ok: 0, mismatched: 0, errors: 0, byProvider: {}, messages: [], ms: 0, cpuMs: 0 };
let next = 0;
const cpu0 = process.cpuUsage();
const t0 = Date.now();
async function worker() {
  while (next < total) {
    const i = next++;
    const a = `c${i}`;
    const args = method === "slow" ? [Number(arg), a] : method === "fail" ? [arg ?? "boom"] : [a];
    try {
      const r = await consumer.invoke(method, args, { responseTimeout: timeout });
      const [who, echoed] = String(r).split(":");
      if (echoed === a) {
        out.ok++;
        out.byProvider[who] = (out.byProvider[who] ?? 0) + 1;
      } else out.mismatched++;
    } catch (e) {
      out.errors++;
      if (out.messages.length < 5) out.messages.push(String(e.message));
    }
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
out.ms = Date.now() - t0;
const cpu = process.cpuUsage(cpu0);
out.cpuMs = (cpu.user + cpu.system) / 1000;
console.log(JSON.stringify(out));
client.close?.();
process.exit(0);
