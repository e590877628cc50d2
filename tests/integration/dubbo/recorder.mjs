// A TCP recorder: forwards 127.0.0.1:<listen> to 127.0.0.1:<target> and appends each direction's bytes to
// <prefix>.c2s.bin / <prefix>.s2c.bin. Used once to capture codecs/dubbo/testdata/ from the real peers.
// Usage: node recorder.mjs <target-port> <prefix>   (prints "PORT <n>")
import net from "node:net";
import fs from "node:fs";
const [target, prefix] = process.argv.slice(2);
let n = 0;
const server = net.createServer((c) => {
  const id = n++;
  const up = net.connect(Number(target), "127.0.0.1");
  c.on("data", (d) => {
    fs.appendFileSync(`${prefix}.${id}.c2s.bin`, d);
    up.write(d);
  });
  up.on("data", (d) => {
    fs.appendFileSync(`${prefix}.${id}.s2c.bin`, d);
    c.write(d);
  });
  c.on("close", () => up.destroy());
  up.on("close", () => c.destroy());
  c.on("error", () => {});
  up.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => console.log(`PORT ${server.address().port}`));
