import {
  formatLogTime,
  getLogger,
  getLogLevel,
  getLogLevels,
  isLogLevel,
  setComponentLogLevel,
  setLogLevel,
  setLogSink,
} from "./log.ts";
import { assert, assertEquals } from "../../tests/assert.ts";

function capture(fn: () => void): string[] {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    fn();
  } finally {
    setLogSink(prev);
  }
  return lines;
}

Deno.test("Logger writes Envoy-style lines at or above the level", () => {
  const prevLevel = getLogLevel();
  try {
    setLogLevel("info");
    const log = getLogger("upstream");
    const lines = capture(() => {
      log.debug("hidden");
      log.info('cluster "a": host added');
      log.warn(() => "lazy warning");
      log.log("error", "by name");
    });
    assertEquals(lines.length, 3);
    assert(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[info\]\[upstream\] cluster "a": host added\n$/.test(lines[0]!));
    assert(lines[1]!.endsWith("[warn][upstream] lazy warning\n"));
    assert(lines[2]!.endsWith("[error][upstream] by name\n"));
  } finally {
    setLogLevel(prevLevel);
  }
});

Deno.test("Logger does not build messages for disabled levels", () => {
  const prevLevel = getLogLevel();
  try {
    setLogLevel("off");
    let built = 0;
    const lines = capture(() => {
      getLogger("http").critical(() => {
        built++;
        return "x";
      });
    });
    assertEquals([lines.length, built], [0, 0]);
    assertEquals(getLogger("http").enabled("critical"), false);
    setLogLevel("trace");
    assertEquals(getLogger("http").enabled("trace"), true);
  } finally {
    setLogLevel(prevLevel);
  }
});

Deno.test("setComponentLogLevel changes one component; setLogLevel changes all", () => {
  const prevLevel = getLogLevel();
  try {
    setLogLevel("warn");
    setComponentLogLevel("router", "debug");
    const levels = getLogLevels();
    assertEquals(levels.router, "debug");
    assertEquals(levels.main, "warn");
    assertEquals(levels.admin, "warn");
    assertEquals(Object.keys(levels), Object.keys(levels).sort());
    setLogLevel("error");
    assertEquals(getLogLevels().router, "error");
    assertEquals(getLogger("brand_new").levelName, "error");
    assert(isLogLevel("critical") && !isLogLevel("fatal"));
  } finally {
    setLogLevel(prevLevel);
  }
});

Deno.test("formatLogTime prints UTC with milliseconds", () => {
  assertEquals(formatLogTime(Date.UTC(2026, 10, 24, 14, 0, 0, 123)), "2026-11-24 14:00:00.123");
});

Deno.test("Logger survives a throwing message builder", () => {
  const lines = capture(() => {
    getLogger("config").error(() => {
      throw new Error("bad");
    });
  });
  assert(lines[0]!.includes("[error][config] (log message failed: bad)"));
});
