/**
 * Client for bench/memory.sh: opens many keep-alive HTTP/1.1 connections to one port, sends
 * one complete GET on each and reads the whole response, then holds them all open and idle.
 *
 * Usage: deno run -A bench/_memory_client.ts --port P [--conns N] [--parallel K] [--hold SECS]
 *
 * Prints `READY opened=N failed=F` once every connection is open and answered (or failed),
 * then `ALIVE n` each second while holding (n = connections the server has not closed), and
 * closes everything after --hold seconds or on SIGTERM. With --hold 0 it closes at once
 * (used to warm the server up).
 *
 * @module
 */

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`memory client: --${name} needs a number`);
  return v;
}

const port = flag("port", 0);
const total = flag("conns", 10_000);
const parallel = flag("parallel", 256);
const holdSeconds = flag("hold", 120);
if (port <= 0) throw new Error("memory client: --port is required");

const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: ferry-memory-bench\r\n\r\n");
const CRLFCRLF = [13, 10, 13, 10];

function indexOfHeaderEnd(buf: Uint8Array, len: number): number {
  outer: for (let i = 0; i + 3 < len; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== CRLFCRLF[j]) continue outer;
    return i + 4;
  }
  return -1;
}

/** Reads one response (Content-Length or chunked, whose terminator ends the read). */
async function readResponse(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  let len = 0;
  let bodyStart = -1;
  let need = -1; // total bytes of head + body when Content-Length is known
  let chunked = false;
  for (;;) {
    if (len === buf.length) throw new Error("response too large");
    const n = await conn.read(buf.subarray(len));
    if (n === null) throw new Error("closed before the response ended");
    len += n;
    if (bodyStart < 0) {
      bodyStart = indexOfHeaderEnd(buf, len);
      if (bodyStart < 0) continue;
      const head = new TextDecoder().decode(buf.subarray(0, bodyStart)).toLowerCase();
      if (!head.startsWith("http/1.1 200")) throw new Error(`unexpected status: ${head.split("\r\n")[0]}`);
      const m = /\r\ncontent-length:\s*(\d+)/.exec(head);
      if (m) need = bodyStart + Number(m[1]);
      else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) chunked = true;
      else throw new Error("response has neither content-length nor chunked encoding");
    }
    if (need >= 0 && len >= need) return;
    if (chunked && len >= 5 && new TextDecoder().decode(buf.subarray(len - 5, len)) === "0\r\n\r\n") return;
  }
}

const open: Deno.TcpConn[] = [];
let alive = 0;
let failed = 0;
let firstError = "";
let next = 0;

async function worker(): Promise<void> {
  while (next < total) {
    next++;
    let conn: Deno.TcpConn | undefined;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
      let off = 0;
      while (off < request.length) off += await conn.write(request.subarray(off));
      await readResponse(conn);
      open.push(conn);
      alive++;
      // One pending read per connection notices the server closing it while idle.
      const c = conn;
      c.read(new Uint8Array(1)).then(() => alive--, () => alive--);
    } catch (e) {
      failed++;
      if (!firstError) firstError = e instanceof Error ? e.message : String(e);
      try {
        conn?.close();
      } catch { /* already closed */ }
    }
  }
}

await Promise.all(Array.from({ length: Math.min(parallel, total) }, worker));
console.log(
  `READY opened=${open.length} failed=${failed}${firstError ? ` first_error=${JSON.stringify(firstError)}` : ""}`,
);

function closeAll(): never {
  for (const c of open) {
    try {
      c.close();
    } catch { /* already closed */ }
  }
  Deno.exit(0);
}

if (holdSeconds <= 0) closeAll();
Deno.addSignalListener("SIGTERM", closeAll);
const deadline = Date.now() + holdSeconds * 1000;
const timer = setInterval(() => {
  console.log(`ALIVE ${alive}`);
  if (Date.now() >= deadline) {
    clearInterval(timer);
    closeAll();
  }
}, 1000);
