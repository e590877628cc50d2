import { ConfigError } from "../api/errors.ts";
import { HeaderMap } from "../api/headers.ts";
import {
  AccessLogManager,
  BufferedSink,
  createAccessLogger,
  FILE_ACCESS_LOG_TYPE,
  parseAccessLogs,
  STDERR_ACCESS_LOG_TYPE,
  STDOUT_ACCESS_LOG_TYPE,
} from "./access_log.ts";
import { bareInfo, sampleInfo } from "../../tests/fakes/stream_info.ts";
import { setLogSink } from "./log.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";

const P = "x.access_log";

function parseOne(raw: unknown) {
  const list = parseAccessLogs([raw], P);
  assertEquals(list.length, 1);
  return list[0]!;
}

function err(raw: unknown): string {
  return assertThrows(() => parseAccessLogs(raw, P), ConfigError).message;
}

Deno.test("parseAccessLogs reads file, stdout and stderr loggers", () => {
  assertEquals(parseAccessLogs(undefined, P), []);
  assertEquals(parseAccessLogs(null, P), []);
  const file = parseOne({
    name: "envoy.access_loggers.file",
    typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/dev/null" },
  });
  assertEquals(file.name, "envoy.access_loggers.file");
  assertEquals(file.sink, { kind: "file", path: "/dev/null" });
  assert(file.formatter.format(sampleInfo()).startsWith('[2026-11-24T14:00:00.123Z] "GET /api/v1?x=1 HTTP/1.1" 200'));
  const legacy = parseOne({ typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/p", format: "%PROTOCOL%\n" } });
  assertEquals(legacy.formatter.format(sampleInfo()), "HTTP/1.1\n");
  const out = parseOne({
    name: "stdout",
    typedConfig: { "@type": STDOUT_ACCESS_LOG_TYPE, logFormat: { textFormat: "%RESPONSE_CODE%\n" } },
  });
  assertEquals(out.sink, { kind: "stdout" });
  assertEquals(out.formatter.format(sampleInfo()), "200\n");
  const errLog = parseOne({ typed_config: { "@type": STDERR_ACCESS_LOG_TYPE } });
  assertEquals(errLog.sink, { kind: "stderr" });
  assert(errLog.formatter.format(sampleInfo()).endsWith('"10.1.1.1:8080"\n'));
  const json = parseOne({
    typed_config: {
      "@type": FILE_ACCESS_LOG_TYPE,
      path: "/p",
      log_format: { json_format: { code: "%RESPONSE_CODE%", d: "%DURATION%" }, omit_empty_values: true },
    },
  });
  assertEquals(json.formatter.format(bareInfo()), '{"code":0}\n');
  const src = parseOne({
    typed_config: {
      "@type": FILE_ACCESS_LOG_TYPE,
      path: "/p",
      log_format: { text_format_source: { inline_string: "%BYTES_SENT%\n" }, content_type: "text/plain" },
    },
  });
  assertEquals(src.formatter.format(sampleInfo()), "345\n");
  assertEquals(src.contentType, "text/plain");
  const legacyJson = parseOne({
    typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/p", json_format: { c: "%RESPONSE_CODE%" } },
  });
  assertEquals(legacyJson.formatter.format(sampleInfo()), '{"c":"200"}\n');
  const typedJson = parseOne({
    typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/p", typed_json_format: { c: "%RESPONSE_CODE%" } },
  });
  assertEquals(typedJson.formatter.format(sampleInfo()), '{"c":200}\n');
});

Deno.test("parseAccessLogs errors name the exact path", () => {
  const tc = (
    extra: Record<string, unknown>,
  ) => [{ typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/p", ...extra } }];
  assertEquals(
    err(tc({ log_format: { text_format: "%FOO%\n" } })),
    'config: x.access_log[0].typed_config.log_format.text_format: unknown command operator "%FOO%"',
  );
  assertEquals(
    err(tc({ format: "%BAR%" })),
    'config: x.access_log[0].typed_config.format: unknown command operator "%BAR%"',
  );
  assertEquals(
    err(tc({ log_format: { json_format: { a: { b: "%BAZ%" } } } })),
    'config: x.access_log[0].typed_config.log_format.json_format.a.b: unknown command operator "%BAZ%"',
  );
  assertEquals(
    err(tc({ log_format: { text_format_source: { inline_string: "%QUX%" } } })),
    'config: x.access_log[0].typed_config.log_format.text_format_source: unknown command operator "%QUX%"',
  );
  assertEquals(err(tc({ colour: "red" })), "config: x.access_log[0].typed_config.colour: unknown field");
  assertEquals(
    err(tc({ log_format: { text_format: "a", json_format: {} } })),
    "config: x.access_log[0].typed_config.log_format: only one of text_format, json_format may be set",
  );
  assertEquals(
    err(tc({ log_format: {} })),
    "config: x.access_log[0].typed_config.log_format: one of text_format, json_format, text_format_source is required",
  );
  assertEquals(
    err([{ typed_config: { "@type": FILE_ACCESS_LOG_TYPE } }]),
    "config: x.access_log[0].typed_config.path: is required",
  );
  assertEquals(err([{ name: "a" }]), "config: x.access_log[0].typed_config: is required");
  assertEquals(err([{ name: "a", typed_config: {} }]), "config: x.access_log[0].typed_config.@type: is required");
  assertEquals(
    err([{
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig" },
    }]),
    'config: x.access_log[0].typed_config.@type: "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.' +
      'HttpGrpcAccessLogConfig" is not supported',
  );
  assert(
    err([{ typed_config: { "@type": "type.googleapis.com/x.Y" } }]).includes('"type.googleapis.com/x.Y" is not one of'),
  );
  assertEquals(
    err([{ typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE, path: "/p" } }]),
    "config: x.access_log[0].typed_config.path: unknown field",
  );
  assertEquals(
    err([{ typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE }, extra: 1 }]),
    "config: x.access_log[0].extra: unknown field",
  );
  assertEquals(err({}), "config: x.access_log: expected a list, got an object");
  assertEquals(
    err([{ filter: { runtime_filter: { runtime_key: "a" } }, typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE } }]),
    "config: x.access_log[0].filter.runtime_filter: is not supported",
  );
  assertEquals(
    err([{
      filter: { response_flag_filter: { flags: ["UF", "XX"] } },
      typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE },
    }]),
    'config: x.access_log[0].filter.response_flag_filter.flags[1]: "XX" is not a known response flag',
  );
  assertEquals(
    err([{
      filter: { status_code_filter: { comparison: { op: "GT", value: { default_value: 1 } } } },
      typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE },
    }]),
    'config: x.access_log[0].filter.status_code_filter.comparison.op: "GT" is not one of EQ, GE, LE, NE',
  );
});

Deno.test("parseAccessLogs filters select streams", () => {
  const withFilter = (filter: unknown) =>
    parseOne({ filter, typed_config: { "@type": STDOUT_ACCESS_LOG_TYPE } }).filter!;
  const ok = sampleInfo();
  const bad = { ...sampleInfo(), responseCode: 503, responseFlags: ["UF" as const] };
  const ge500 = withFilter({
    status_code_filter: { comparison: { op: "GE", value: { default_value: 500, runtime_key: "access_log.min" } } },
  });
  assertEquals([ge500(ok), ge500(bad)], [false, true]);
  const slow = withFilter({ duration_filter: { comparison: { op: "GE", value: { default_value: 10 } } } });
  assertEquals([slow(ok), slow(bareInfo())], [true, false]);
  const notHc = withFilter({ not_health_check_filter: {} });
  const hc = { ...sampleInfo(), requestHeaders: HeaderMap.from([["user-agent", "Envoy/HC"]]) };
  assertEquals([notHc(ok), notHc(hc)], [true, false]);
  const anyFlag = withFilter({ response_flag_filter: {} });
  const uf = withFilter({ response_flag_filter: { flags: ["UF"] } });
  assertEquals([anyFlag(ok), anyFlag(bad), uf(bad), uf(bareInfo())], [false, true, true, true]);
  const and = withFilter({ and_filter: { filters: [{ not_health_check_filter: {} }, { response_flag_filter: {} }] } });
  const or = withFilter({
    or_filter: {
      filters: [{ duration_filter: { comparison: { op: "LE", value: { default_value: 1 } } } }, {
        status_code_filter: { comparison: { op: "EQ", value: { default_value: 200 } } },
      }],
    },
  });
  assertEquals([and(ok), and(bad), or(ok), or(bad)], [false, true, true, false]);
});

Deno.test("createAccessLogger buffers, flushes on close and never throws", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/access.log`;
  const manager = new AccessLogManager();
  const [cfg] = parseAccessLogs([
    {
      typed_config: {
        "@type": FILE_ACCESS_LOG_TYPE,
        path,
        log_format: { text_format: "%RESPONSE_CODE% %REQ(:PATH)%\n" },
      },
    },
  ], P);
  const logger = createAccessLogger(cfg!, { manager });
  const logger2 = createAccessLogger(cfg!, { manager });
  logger.log(sampleInfo());
  logger2.log(bareInfo());
  // Nothing is written synchronously on the data path.
  assertEquals(await Deno.readTextFile(path), "");
  await manager.flush();
  assertEquals(await Deno.readTextFile(path), "200 /api/v1?x=1\n0 -\n");
  // A throwing formatter is contained.
  const prev = setLogSink(() => {});
  try {
    const boom = createAccessLogger({
      name: "boom",
      sink: { kind: "file", path },
      formatter: {
        format: () => {
          throw new Error("nope");
        },
      },
    }, { manager });
    boom.log(sampleInfo());
  } finally {
    setLogSink(prev);
  }
  logger.log(sampleInfo());
  await manager.close();
  assertEquals(await Deno.readTextFile(path), "200 /api/v1?x=1\n0 -\n200 /api/v1?x=1\n");
  // After close, writes are dropped silently.
  logger.log(sampleInfo());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BufferedSink flushes by size and by time, and reopens", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.log`;
  const open = () => {
    const f = Deno.openSync(path, { write: true, append: true, create: true });
    return { write: (p: Uint8Array) => f.write(p), close: () => f.close() };
  };
  const sink = new BufferedSink({ name: "t", open, flushBytes: 10, flushIntervalMs: 20 });
  sink.write("12345\n");
  assertEquals(sink.pending, 6);
  sink.write("67890\n"); // 12 >= 10: flushed now
  assertEquals(sink.pending, 0);
  await sink.flush();
  assertEquals(await Deno.readTextFile(path), "12345\n67890\n");
  sink.write("late\n");
  await new Promise((r) => setTimeout(r, 60));
  await sink.flush();
  assertEquals(await Deno.readTextFile(path), "12345\n67890\nlate\n");
  // Rotation: move the file away, reopen, and the next lines go to a new file at the old path.
  await Deno.rename(path, `${path}.1`);
  sink.write("after\n");
  await sink.reopen();
  sink.write("new\n");
  await sink.close();
  assertEquals(await Deno.readTextFile(`${path}.1`), "12345\n67890\nlate\nafter\n");
  assertEquals(await Deno.readTextFile(path), "new\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("BufferedSink drops lines instead of throwing when the target fails", async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    const sink = new BufferedSink({
      name: 'access log "/broken"',
      open: () => ({
        write: () => Promise.reject(new Error("disk full")),
        close: () => {},
      }),
    });
    sink.write("a\n");
    sink.write("b\n");
    await sink.flush();
    assertEquals(sink.dropped, 2);
    await sink.close();
    assert(lines.some((l) => l.includes('[error][main] access log "/broken": write failed: disk full')), lines.join());
  } finally {
    setLogSink(prev);
  }
});

Deno.test("createAccessLogger reports an unopenable file at config time", () => {
  const [cfg] = parseAccessLogs([
    { typed_config: { "@type": FILE_ACCESS_LOG_TYPE, path: "/nonexistent-dir/x/a.log" } },
  ], P);
  assertThrows(
    () => createAccessLogger(cfg!, { manager: new AccessLogManager() }),
    Error,
    'access log "/nonexistent-dir/x/a.log": cannot open',
  );
});
