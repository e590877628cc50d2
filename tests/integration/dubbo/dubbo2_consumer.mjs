// A second Dubbo consumer: dubbo2.js DirectlyDubbo, for tests/integration/dubbo_test.ts.
// Usage: node dubbo2_consumer.mjs <host:port> <interface> <version> <calls> <concurrency> [group]
// Makes <calls> calls of echo("<i>"), <concurrency> at a time, and prints one JSON line like consumer.mjs.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { DirectlyDubbo, java } = require("dubbo2.js");

const [host, dubboInterface, version, callsArg = "1", concArg = "1", group] = process.argv.slice(2);
const calls = Number(callsArg);
const concurrency = Number(concArg);
const dubbo = DirectlyDubbo.from({ dubboAddress: host, dubboVersion: "2.0.2", dubboInvokeTimeout: 5 });
const service = dubbo.proxyService({
  dubboInterface,
  version,
  ...(group ? { group } : {}),
  methods: {
    echo(s) {
      return [java.String(s)];
    },
  },
});
const out = { ok: 0, mismatched: 0, errors: {}, answers: {}, ms: 0 };
const t0 = Date.now();
let next = 0;
async function worker() {
  while (next < calls) {
    const i = next++;
    const arg = `d${i}`;
    const { res, err } = await service.echo(arg);
    if (err) {
      const m = String(err?.message ?? err).slice(0, 200);
      out.errors[m] = (out.errors[m] ?? 0) + 1;
      continue;
    }
    const [tag, echoed] = String(res).split(":");
    if (echoed !== arg) out.mismatched++;
    else out.ok++;
    out.answers[tag] = (out.answers[tag] ?? 0) + 1;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
out.ms = Date.now() - t0;
console.log(JSON.stringify(out));
process.exit(0);
