import { assertThrows } from "../../tests/assert.ts";
import { headerMutationFilterFactory } from "./header_mutation.ts";

const parse = (raw: Record<string, unknown>) => headerMutationFilterFactory.parseConfig(raw, "f");

Deno.test("header_mutation config errors name the field path", () => {
  assertThrows(
    () => parse({ mutations: { request_mutations: [{ remove: "a", append: { header: { key: "b" } } }] } }),
    Error,
    "f.mutations.request_mutations[0]: only one of",
  );
  assertThrows(() => parse({ mutations: { request_mutations: [{ remove: ":path" }] } }), Error, "remove");
  assertThrows(
    () => parse({ mutations: { response_mutations: [{ append: { header: { key: "a b", value: "x" } } }] } }),
    Error,
    "f.mutations.response_mutations[0].append.header.key",
  );
  assertThrows(
    () => parse({ mutations: { request_mutations: [{ append: { header: { key: "a", value: "x\r\ny" } } }] } }),
    Error,
    "CR, LF",
  );
  assertThrows(() => parse({ mutations: { query_parameter_mutations: [] } }), Error, "f.mutations.query_parameter");
});
