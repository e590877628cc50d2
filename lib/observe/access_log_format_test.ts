import { ConfigError } from "../api/errors.ts";
import type { StreamInfo } from "../api/stream_info.ts";
import {
  addressWithoutPort,
  compileJsonFormat,
  compileTextFormat,
  compileTimeFormat,
  DEFAULT_ACCESS_LOG_FORMAT,
} from "./access_log_format.ts";
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { bareInfo, sampleInfo } from "../../tests/fakes/stream_info.ts";

function fmt(f: string, info: StreamInfo = sampleInfo()): string {
  return compileTextFormat(f, "t").format(info);
}

Deno.test("DEFAULT_ACCESS_LOG_FORMAT is Envoy's default, byte for byte", () => {
  assertEquals(
    DEFAULT_ACCESS_LOG_FORMAT,
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
      "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% " +
      '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n',
  );
  assertEquals(
    fmt(DEFAULT_ACCESS_LOG_FORMAT),
    '[2026-11-24T14:00:00.123Z] "GET /api/v1?x=1 HTTP/1.1" 200 - 12 345 17 9 "10.0.0.9" "curl/8.5.0" ' +
      '"abc-123" "example.com" "10.1.1.1:8080"\n',
  );
  assertEquals(
    fmt(DEFAULT_ACCESS_LOG_FORMAT, bareInfo()),
    '[2026-11-24T14:00:00.123Z] "- - -" 0 UF,URX 0 0 - - "-" "-" "-" "-" "-"\n',
  );
});

Deno.test("compileTextFormat renders every operator", () => {
  const cases: [string, string, string?][] = [
    ["%START_TIME%", "2026-11-24T14:00:00.123Z"],
    ["%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%", "2026-11-24T14:00:00.123Z"],
    ["%START_TIME(%s)%", "1795528800"],
    ["%START_TIME(%s.%3f)%", "1795528800.123"],
    ["%START_TIME(%s.%6f)%", "1795528800.123000"],
    ["%START_TIME(%s.%9f)%", "1795528800.123000000"],
    ["%START_TIME(%s.%f)%", "1795528800.123000000"],
    ["%START_TIME(%Y/%m/%d %T %z %Z %j %a %b)%", "2026/11/24 14:00:00 +0000 UTC 328 Tue Nov"],
    ["%START_TIME(%Y-%m-%dT%H:%M:%E3SZ)%", "2026-11-24T14:00:00.123Z"],
    ["%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)%", "GET /api/v1?x=1 example.com"],
    ["%REQ(User-Agent)%", "curl/8.5.0"],
    ["%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/api/v1?x=1"],
    ["%REQ(:PATH):4%", "/api"],
    ["%REQ(X-MISSING)%", "-"],
    ["%REQ(X-MISSING?X-ALSO-MISSING)%", "-"],
    ["%REQ_WITHOUT_QUERY(:PATH)%", "/api/v1"],
    ["%RESP(CONTENT-TYPE)% %RESP(X-NONE)%", "text/plain -"],
    ["%TRAILER(GRPC-STATUS)%", "0"],
    ["%PROTOCOL%", "HTTP/1.1"],
    ["%RESPONSE_CODE%", "200"],
    ["%RESPONSE_CODE_DETAILS%", "via_upstream"],
    ["%RESPONSE_FLAGS%", "-"],
    ["%BYTES_RECEIVED% %BYTES_SENT%", "12 345"],
    ["%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION%", "17 2 9 8"],
    ["%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%", "10.1.1.1:8080 payments 10.1.1.2:40000"],
    ["%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.1.1.1"],
    ["%UPSTREAM_TRANSPORT_FAILURE_REASON%", "-"],
    ["%DOWNSTREAM_REMOTE_ADDRESS%", "192.168.1.5:51000"],
    ["%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "192.168.1.5"],
    ["%DOWNSTREAM_REMOTE_PORT%", "51000"],
    ["%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%", "192.168.1.6:51001"],
    ["%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%", "192.168.1.6"],
    ["%DOWNSTREAM_LOCAL_ADDRESS%", "10.0.0.1:10000"],
    ["%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT%", "10.0.0.1 10000"],
    ["%ROUTE_NAME% %VIRTUAL_HOST_NAME%", "api vh"],
    ["%CONNECTION_ID%", "42"],
    ["%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "2"],
    ["%DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_TLS_CIPHER%", "TLSv1.3 TLS_AES_128_GCM_SHA256"],
    ["%REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_SUBJECT%", "example.com CN=client"],
    ["%HOSTNAME%", Deno.hostname()],
    ["100%% done", "100% done"],
    ["plain text", "plain text"],
    ["%%REQ(:PATH)%%", "%REQ(:PATH)%"],
  ];
  for (const [f, want] of cases) assertEquals(fmt(f), want, f);
});

Deno.test("compileTextFormat prints - for unknown values, or nothing with omitEmptyValues", () => {
  const b = bareInfo();
  assertEquals(fmt("%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% %UPSTREAM_HOST%", b), "- 0 UF,URX - -");
  assertEquals(fmt("%CONNECTION_ID% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %DOWNSTREAM_TLS_VERSION%", b), "0 0 -");
  assertEquals(fmt("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT%", b), "::1 5000");
  assertEquals(fmt("%RESPONSE_FLAGS_LONG%", b), "UpstreamConnectionFailure,UpstreamRetryLimitExceeded");
  assertEquals(compileTextFormat("[%PROTOCOL%]", "t", { omitEmptyValues: true }).format(b), "[]");
});

Deno.test("compileTextFormat rejects unknown and malformed operators with the path", () => {
  assertThrows(
    () => compileTextFormat("a %FOO% b", "x.f"),
    ConfigError,
    'config: x.f: unknown command operator "%FOO%"',
  );
  assertThrows(() => compileTextFormat("%REQ_ID%", "x.f"), ConfigError, 'unknown command operator "%REQ_ID%"');
  assertThrows(
    () => compileTextFormat("%DYNAMIC_METADATA(a:b)%", "x.f"),
    ConfigError,
    'command operator "%DYNAMIC_METADATA(a:b)%" is not supported',
  );
  assertThrows(() => compileTextFormat("50% off", "x.f"), ConfigError, 'malformed command operator "% off"');
  assertThrows(() => compileTextFormat("%REQ%", "x.f"), ConfigError, 'operator "REQ" needs a header name');
  assertThrows(() => compileTextFormat("%REQ(A?B?C)%", "x.f"), ConfigError, "alternative");
  assertThrows(() => compileTextFormat("%PROTOCOL(x)%", "x.f"), ConfigError, "takes no argument");
  assertThrows(() => compileTextFormat("%START_TIME(%Q)%", "x.f"), ConfigError, '"%Q" is not supported');
});

Deno.test("compileJsonFormat keeps types, nulls unknowns and supports nesting", () => {
  const f = compileJsonFormat({
    start: "%START_TIME%",
    code: "%RESPONSE_CODE%",
    bytes: "%BYTES_SENT%",
    dur: "%DURATION%",
    method: "%REQ(:METHOD)%",
    missing: "%REQ(X-NONE)%",
    mixed: "%RESPONSE_CODE% in %DURATION%ms",
    literal: "fixed",
    num: 7,
    nested: { host: "%UPSTREAM_HOST%", id: "%CONNECTION_ID%" },
  }, "j");
  const line = f.format(sampleInfo());
  assertEquals(line.endsWith("}\n"), true);
  assertEquals(line.indexOf("\n"), line.length - 1);
  assertEquals(JSON.parse(line), {
    start: "2026-11-24T14:00:00.123Z",
    code: 200,
    bytes: 345,
    dur: 17,
    method: "GET",
    missing: null,
    mixed: "200 in 17ms",
    literal: "fixed",
    num: 7,
    nested: { host: "10.1.1.1:8080", id: 42 },
  });
  assertEquals(JSON.parse(compileJsonFormat({ d: "%DURATION%", p: "%PROTOCOL% x" }, "j").format(bareInfo())), {
    d: null,
    p: "- x",
  });
  const omit = compileJsonFormat({ d: "%DURATION%", c: "%RESPONSE_CODE%" }, "j", { omitEmptyValues: true });
  assertEquals(omit.format(bareInfo()), '{"c":0}\n');
  const untyped = compileJsonFormat({ c: "%RESPONSE_CODE%", d: "%DURATION%" }, "j", { typed: false });
  assertEquals(untyped.format(bareInfo()), '{"c":"0","d":null}\n');
  const sorted = compileJsonFormat({ b: "%BYTES_SENT%", a: "%BYTES_RECEIVED%" }, "j", { sortProperties: true });
  assertEquals(sorted.format(sampleInfo()), '{"a":12,"b":345}\n');
  assertThrows(() => compileJsonFormat({ a: { b: "%NOPE%" } }, "j"), ConfigError, "j.a.b: unknown command operator");
  assertThrows(() => compileJsonFormat({ a: ["x"] }, "j"), ConfigError, "config: j.a: only strings");
});

Deno.test("compileTimeFormat covers the strftime subset", () => {
  const f = compileTimeFormat("%y %e %I %p %A %B %D %F|%n|%t|%%", "t");
  assertEquals(f(Date.UTC(2026, 0, 5, 0, 7, 9, 1)), "26  5 12 AM Monday January 01/05/26 2026-01-05|\n|\t|%");
  assertEquals(compileTimeFormat("%s.%1f", "t")(1500), "1.5");
});

Deno.test("addressWithoutPort handles IPv4, bracketed IPv6 and bare addresses", () => {
  assertEquals(addressWithoutPort("1.2.3.4:80"), "1.2.3.4");
  assertEquals(addressWithoutPort("[::1]:80"), "::1");
  assertEquals(addressWithoutPort("::1"), "::1");
  assertEquals(addressWithoutPort("/tmp/sock"), "/tmp/sock");
});
