import { assertEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import { encodeGrpcMessage, httpLocalReply, httpToGrpcStatus } from "./local_reply.ts";

const text = new TextDecoder();

Deno.test("httpLocalReply writes text with content-length and content-type", () => {
  const r = httpLocalReply({ status: 503, body: "no healthy upstream" }, new HeaderMap([":method", "GET"]));
  assertEquals(r.headers.get(":status"), "503");
  assertEquals(r.headers.get("content-length"), "19");
  assertEquals(r.headers.get("content-type"), "text/plain");
  assertEquals(text.decode(r.body), "no healthy upstream");
  assertEquals(r.trailers, undefined);
});

Deno.test("httpLocalReply sends no body for HEAD and an empty body with content-length 0", () => {
  const head = httpLocalReply({ status: 404, body: "nope", isHead: true }, undefined);
  assertEquals(head.body, undefined);
  assertEquals(head.headers.get("content-length"), "4");
  const empty = httpLocalReply({ status: 204, body: "", headers: { "X-A": "1" } }, undefined);
  assertEquals(empty.headers.get("content-length"), "0");
  assertEquals(empty.headers.get("x-a"), "1");
  assertEquals(empty.headers.get("content-type"), undefined);
});

Deno.test("httpLocalReply answers a gRPC request with a trailers-only gRPC status", () => {
  const req = new HeaderMap([":method", "POST", "content-type", "application/grpc+proto"]);
  const r = httpLocalReply({ status: 503, body: "no healthy upstream\n" }, req);
  assertEquals(r.headers.get(":status"), "200");
  assertEquals(r.headers.get("content-type"), "application/grpc");
  assertEquals(r.headers.get("grpc-status"), "14");
  assertEquals(r.headers.get("grpc-message"), "no healthy upstream");
  assertEquals(r.headers.get("content-length"), undefined);
  assertEquals(r.body, undefined);
  // Not gRPC: application/grpc-web is its own protocol, and application/grpcx is nothing.
  const web = httpLocalReply({ status: 503, body: "x" }, new HeaderMap(["content-type", "application/grpcx"]));
  assertEquals(web.headers.get(":status"), "503");
});

Deno.test("httpToGrpcStatus maps as Envoy's local replies do", () => {
  const got = [400, 401, 403, 404, 429, 500, 502, 503, 504, 418].map(httpToGrpcStatus);
  assertEquals(got, [13, 16, 7, 12, 14, 2, 14, 14, 14, 2]);
});

Deno.test("encodeGrpcMessage percent-encodes bytes outside 0x20-0x7E and the percent sign", () => {
  assertEquals(encodeGrpcMessage("plain text"), "plain text");
  assertEquals(encodeGrpcMessage("100% sure\n"), "100%25 sure%0A");
  assertEquals(encodeGrpcMessage("é"), "%C3%A9");
});
