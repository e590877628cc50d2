import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { HeaderMap } from "../api/headers.ts";
import { addressWithoutPort, compileHeaderFormat } from "./format.ts";
import { assertConfigError } from "../../tests/helpers/router.ts";

const empty = new HeaderMap();

Deno.test("compileHeaderFormat keeps constants constant and unescapes %%", () => {
  const f = compileHeaderFormat("100%% plain", "p", "request");
  assertEquals(f.constant, "100% plain");
  assertEquals(f.format({}, empty), "100% plain");
  assertEquals(compileHeaderFormat("", "p", "request").constant, "");
  assertEquals(compileHeaderFormat("%PROTOCOL%", "p", "request").constant, undefined);
});

Deno.test("compileHeaderFormat formats addresses, ports and names", () => {
  const ctx = {
    downstreamRemoteAddress: "[2001:db8::1]:5555",
    downstreamLocalAddress: "10.0.0.2:80",
    upstreamHost: "10.1.0.1:8080",
    upstreamCluster: "web",
    routeName: "r1",
  };
  const f = (s: string) => compileHeaderFormat(s, "p", "response").format(ctx, empty);
  assertEquals(f("%DOWNSTREAM_REMOTE_ADDRESS%"), "[2001:db8::1]:5555");
  assertEquals(f("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"), "2001:db8::1");
  assertEquals(f("%DOWNSTREAM_REMOTE_PORT%"), "5555");
  assertEquals(f("%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%:%DOWNSTREAM_LOCAL_PORT%"), "10.0.0.2:80");
  assertEquals(f("%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"), "10.1.0.1");
  assertEquals(f("%UPSTREAM_CLUSTER%/%ROUTE_NAME%"), "web/r1");
  assertEquals(f("[%PROTOCOL%]"), "[]", "missing values format as empty");
  assertEquals(addressWithoutPort("::1"), "::1");
  assertEquals(addressWithoutPort("1.2.3.4"), "1.2.3.4");
});

Deno.test("compileHeaderFormat reads headers with REQ/RESP, alternatives and lengths", () => {
  const reqH = HeaderMap.from({ "x-a": "alpha", "x-b": "beta" });
  const respH = HeaderMap.from({ server: "nginx" });
  const onRequest = (s: string) => compileHeaderFormat(s, "p", "request").format({ responseHeaders: respH }, reqH);
  const onResponse = (s: string) => compileHeaderFormat(s, "p", "response").format({ requestHeaders: reqH }, respH);
  assertEquals(onRequest("%REQ(X-A)%"), "alpha");
  assertEquals(onRequest("%REQ(x-none?x-b)%"), "beta");
  assertEquals(onRequest("%REQ(x-a):3%"), "alp");
  assertEquals(onRequest("%RESP(server)%"), "nginx");
  assertEquals(onResponse("%REQ(x-a)% %RESP(server)%"), "alpha nginx");
  assertEquals(compileHeaderFormat("%RESP(server)%", "p", "request").format({}, reqH), "");
});

Deno.test("compileHeaderFormat formats START_TIME in UTC", () => {
  const ctx = { startTime: Date.UTC(2024, 1, 3, 4, 5, 6, 789) };
  const f = (s: string) => compileHeaderFormat(s, "p", "request").format(ctx, empty);
  assertEquals(f("%START_TIME%"), "2024-02-03T04:05:06.789Z");
  assertEquals(f("%START_TIME(%Y/%m/%d %H:%M:%S)%"), "2024/02/03 04:05:06");
  assertEquals(f("%START_TIME(%s.%3f)%"), `${Math.floor(ctx.startTime / 1000)}.789`);
  assertEquals(f("%START_TIME(%E3S|%F %T %z %Z %a %b %j %%)%"), "06.789|2024-02-03 04:05:06 +0000 UTC Sat Feb 034 %");
});

Deno.test("compileHeaderFormat rejects bad formats with the path", () => {
  assertConfigError(
    () => compileHeaderFormat("%FOO%", "a.value", "request"),
    "config: a.value: %FOO% is not a supported substitution operator",
  );
  assertConfigError(
    () => compileHeaderFormat("x %PROTOCOL", "a.value", "request"),
    'config: a.value: invalid header value format "x %PROTOCOL": unterminated or malformed operator at offset 2 ' +
      "(write %% for a literal %)",
  );
  assertConfigError(
    () => compileHeaderFormat("%REQ()%", "a.value", "request"),
    "config: a.value: %REQ(...)% needs a header name",
  );
  assertConfigError(
    () => compileHeaderFormat("%PROTOCOL(x)%", "a.value", "request"),
    "config: a.value: %PROTOCOL% takes no arguments",
  );
  assertConfigError(
    () => compileHeaderFormat("%START_TIME(%Q)%", "a.value", "request"),
    'config: a.value: unsupported time format directive %Q in "%Q"',
  );
});
