import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { bufferFilterFactory } from "./buffer.ts";

Deno.test("buffer config: max_request_bytes is required and positive, as a number or UInt32Value", () => {
  assertEquals(bufferFilterFactory.parseConfig({ max_request_bytes: 10 }, "f"), { maxRequestBytes: 10 });
  assertEquals(bufferFilterFactory.parseConfig({ max_request_bytes: { value: 7 } }, "f"), { maxRequestBytes: 7 });
  assertThrows(() => bufferFilterFactory.parseConfig({}, "f"), Error, "f.max_request_bytes");
  assertThrows(() => bufferFilterFactory.parseConfig({ max_request_bytes: 0 }, "f"), Error, "f.max_request_bytes");
  assertThrows(() => bufferFilterFactory.parseConfig({ max_request_bytes: 1, x: 1 }, "f"), Error, "f.x");
});
