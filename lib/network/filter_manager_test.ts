import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import type {
  ConnectionHandler,
  NetConnection,
  NetworkFilter,
  NetworkFilterCallbacks,
  NetworkFilterStatus,
} from "../api/network.ts";
import { setLogSink } from "../observe/log.ts";
import { NetworkFilterManager, type NetworkFilterSpec } from "./filter_manager.ts";

/** A connection that records closes; the test feeds the handler. */
class FakeConn implements NetConnection {
  readonly id = 1;
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 40000;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 8080;
  readonly secure = false;
  readonly bufferedAmount = 0;
  readonly bytesRead = 0;
  readonly bytesWritten = 0;
  readonly done: Promise<void> = Promise.resolve();
  handler: ConnectionHandler | undefined;
  closed = false;
  closeReasons: string[] = [];
  setHandler(h: ConnectionHandler): void {
    this.handler = h;
  }
  start(): void {}
  write(): void {}
  closeWrite(): void {}
  close(options?: { reason?: string }): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReasons.push(options?.reason ?? "");
    this.handler?.onClose(options?.reason ?? "local close");
  }
  readDisable(): void {}
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A filter that records what it sees (as `<name>:<text>`, `<name>:new`, `<name>:eof`) and answers per script. */
function recorder(
  name: string,
  events: string[],
  script: { onNew?: () => NetworkFilterStatus; onData?: (text: string) => NetworkFilterStatus } = {},
): NetworkFilterSpec & { callbacks?: NetworkFilterCallbacks } {
  const spec: NetworkFilterSpec & { callbacks?: NetworkFilterCallbacks } = {
    name,
    create: (cb) => {
      spec.callbacks = cb;
      const f: NetworkFilter = {
        onNewConnection: () => {
          events.push(`${name}:new`);
          return script.onNew?.() ?? "continue";
        },
        onData: (d, end) => {
          const text = dec(d);
          if (text) events.push(`${name}:${text}`);
          if (end) events.push(`${name}:eof`);
          return script.onData?.(text) ?? "continue";
        },
        onClose: (r) => {
          events.push(`${name}:close(${r})`);
        },
      };
      return f;
    },
  };
  return spec;
}

/** The terminal filter: consumes everything. */
const terminal = (events: string[]) => recorder("t", events, { onData: () => "stop" });

function setup(specs: NetworkFilterSpec[]): { conn: FakeConn; fm: NetworkFilterManager } {
  const conn = new FakeConn();
  const fm = new NetworkFilterManager(conn, specs, "l1");
  conn.setHandler(fm);
  fm.initialize();
  return { conn, fm };
}

Deno.test("NetworkFilterManager passes new connection and data through filters that continue", () => {
  const ev: string[] = [];
  const { fm } = setup([recorder("a", ev), recorder("b", ev), terminal(ev)]);
  fm.onData(enc("x"));
  fm.onEof();
  assertEquals(ev, ["a:new", "b:new", "t:new", "a:x", "b:x", "t:x", "a:eof", "b:eof", "t:eof"]);
});

Deno.test("NetworkFilterManager stop in onNewConnection halts, continueReading resumes from the next filter", () => {
  const ev: string[] = [];
  let allowed = false;
  const a = recorder("a", ev, { onNew: () => "stop", onData: () => allowed ? "continue" : "stop" });
  const { fm } = setup([a, recorder("b", ev), terminal(ev)]);
  assertEquals(ev, ["a:new"]);
  // Data while stopped: seen by the stopped filter, not by later (not yet initialized) filters.
  const chunk = enc("one");
  fm.onData(chunk);
  chunk.fill(0); // the connection reuses its buffer: the manager must have copied
  fm.onData(enc("two"));
  assertEquals(ev, ["a:new", "a:one", "a:two"]);
  allowed = true;
  a.callbacks!.continueReading();
  // As Envoy's: each filter is initialized when the iteration first reaches it.
  assertEquals(ev, ["a:new", "a:one", "a:two", "b:new", "b:one", "t:new", "t:one", "b:two", "t:two"]);
  // Continued: later data flows straight through.
  fm.onData(enc("three"));
  assertEquals(ev.slice(-3), ["a:three", "b:three", "t:three"]);
});

Deno.test("NetworkFilterManager continueReading with nothing held initializes the rest of the chain", () => {
  const ev: string[] = [];
  const a = recorder("a", ev, { onNew: () => "stop" });
  setup([a, recorder("b", ev), terminal(ev)]);
  assertEquals(ev, ["a:new"]);
  a.callbacks!.continueReading();
  assertEquals(ev, ["a:new", "b:new", "t:new"]);
  // A second continueReading is a no-op.
  a.callbacks!.continueReading();
  assertEquals(ev.length, 3);
});

Deno.test("NetworkFilterManager stop in onData holds later data until the filter continues", () => {
  const ev: string[] = [];
  let verdict: NetworkFilterStatus = "stop";
  const b = recorder("b", ev, { onData: () => verdict });
  const { fm } = setup([recorder("a", ev), b, terminal(ev)]);
  ev.length = 0;
  fm.onData(enc("1"));
  fm.onData(enc("2"));
  fm.onEof();
  assertEquals(ev, ["a:1", "b:1", "a:2", "b:2", "a:eof", "b:eof"]);
  b.callbacks!.continueReading();
  assertEquals(ev.slice(6), ["t:1", "t:2", "t:eof"]);
  // Stop again, then continue by returning "continue" from a later onData: held data first, in order.
  ev.length = 0;
  const { fm: fm2 } = setup([b, terminal(ev)]);
  ev.length = 0;
  verdict = "stop";
  fm2.onData(enc("x"));
  verdict = "continue";
  fm2.onData(enc("y"));
  assertEquals(ev, ["b:x", "b:y", "t:x", "t:y"]);
});

Deno.test("NetworkFilterManager keeps order across two stopped filters", () => {
  const ev: string[] = [];
  let bStops = true;
  const a = recorder("a", ev, { onData: (t) => t === "1" ? "stop" : "continue" });
  const b = recorder("b", ev, { onData: () => bStops ? "stop" : "continue" });
  const { fm } = setup([a, b, terminal(ev)]);
  ev.length = 0;
  fm.onData(enc("1")); // held at a
  a.callbacks!.continueReading(); // 1 reaches b, held there
  fm.onData(enc("2")); // a continues, b holds behind 1
  bStops = false;
  b.callbacks!.continueReading();
  assertEquals(ev, ["a:1", "b:1", "a:2", "b:2", "t:1", "t:2"]);
});

Deno.test("NetworkFilterManager continueReading called inside the filter's own hook counts as continue", () => {
  const ev: string[] = [];
  const a: NetworkFilterSpec = {
    name: "a",
    create: (cb) => ({
      onNewConnection: () => {
        cb.continueReading();
        return "stop";
      },
      onData: () => "continue",
    }),
  };
  setup([a, terminal(ev)]);
  assertEquals(ev, ["t:new"]);
});

Deno.test("NetworkFilterManager close while stopped drops held data and closes every filter once", () => {
  const ev: string[] = [];
  const a = recorder("a", ev, { onNew: () => "stop", onData: () => "stop" });
  const { conn, fm } = setup([a, terminal(ev)]);
  fm.onData(enc("held"));
  conn.close({ reason: "remote close" });
  assertEquals(ev, ["a:new", "a:held", "a:close(remote close)", "t:close(remote close)"]);
  // After close: continueReading and late events do nothing.
  a.callbacks!.continueReading();
  fm.onData(enc("late"));
  fm.onClose("again");
  assertEquals(ev.length, 4);
});

Deno.test("NetworkFilterManager a throwing filter closes the connection and logs the listener and filter", () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    const ev: string[] = [];
    const bad: NetworkFilterSpec = {
      name: "envoy.filters.network.bad",
      create: () => ({
        onData: () => {
          throw new Error("boom");
        },
      }),
    };
    const { conn, fm } = setup([recorder("a", ev), bad, terminal(ev)]);
    fm.onData(enc("x"));
    assert(conn.closed);
    assertEquals(conn.closeReasons, ["network filter failed"]);
    assertEquals(ev.filter((e) => e.startsWith("t:")), ["t:new", "t:close(network filter failed)"]);
    const line = lines.find((l) => l.includes("boom"));
    assert(line, lines.join("\n"));
    assertMatch(line, /listener "l1": network filter "envoy\.filters\.network\.bad" failed in onData: Error: boom/);
    // A throw in onNewConnection closes too.
    const { conn: c2 } = setup([{
      name: "n",
      create: () => ({
        onNewConnection: () => {
          throw new Error("at start");
        },
        onData: () => "stop",
      }),
    }]);
    assert(c2.closed);
    assert(lines.some((l) => l.includes(`network filter "n" failed in onNewConnection`)));
  } finally {
    setLogSink(prev);
  }
});

Deno.test("NetworkFilterManager drain calls the terminal filter's drain, else closes with flush", () => {
  let drained = 0;
  const { fm } = setup([{ name: "t", create: () => ({ onData: () => "stop", drain: () => void drained++ }) }]);
  fm.drain();
  assertEquals(drained, 1);
  const { conn, fm: fm2 } = setup([{ name: "t", create: () => ({ onData: () => "stop" }) }]);
  fm2.drain();
  assertEquals(conn.closeReasons, ["drain"]);
});
