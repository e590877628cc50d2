import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { type Linked, LinkedSet } from "./linked_set.ts";

interface Item extends Linked<Item> {
  readonly n: number;
}
const item = (n: number): Item => ({ n, linkPrev: undefined, linkNext: undefined, linkedIn: undefined });
const ns = (s: LinkedSet<Item>) => s.toArray().map((x) => x.n);

Deno.test("LinkedSet: insertion order, size, has, and deletes at the head, middle and tail", () => {
  const s = new LinkedSet<Item>();
  const [a, b, c, d] = [item(1), item(2), item(3), item(4)];
  s.add(a).add(b).add(c).add(d);
  assertEquals(ns(s), [1, 2, 3, 4]);
  assertEquals(s.size, 4);
  s.add(b); // already in: no change
  assertEquals(ns(s), [1, 2, 3, 4]);
  assert(s.delete(b));
  assertEquals(ns(s), [1, 3, 4]);
  assert(s.delete(a));
  assertEquals(ns(s), [3, 4]);
  assert(s.delete(d));
  assertEquals(ns(s), [3]);
  assert(!s.delete(d), "deleting twice");
  assert(!s.has(d) && s.has(c));
  assert(s.delete(c));
  assertEquals([s.size, ns(s)], [0, []]);
  s.add(d).add(a);
  assertEquals(ns(s), [4, 1]);
});

Deno.test("LinkedSet: a deleted element keeps no links (nothing it pointed at is held through it)", () => {
  const s = new LinkedSet<Item>();
  const [a, b, c] = [item(1), item(2), item(3)];
  s.add(a).add(b).add(c);
  s.delete(b);
  assertEquals([b.linkPrev, b.linkNext, b.linkedIn], [undefined, undefined, undefined]);
  assert(a.linkNext === c && c.linkPrev === a);
  s.delete(a);
  s.delete(c);
  for (const x of [a, c]) assertEquals([x.linkPrev, x.linkNext, x.linkedIn], [undefined, undefined, undefined]);
});

Deno.test("LinkedSet: iteration is over a snapshot, so handlers may add and delete meanwhile", () => {
  const s = new LinkedSet<Item>();
  const items = [1, 2, 3, 4].map(item);
  for (const x of items) s.add(x);
  const seen: number[] = [];
  for (const x of s) {
    seen.push(x.n);
    s.delete(x); // closing a connection removes it while the drain loop runs
    if (x.n === 2) s.add(item(9));
  }
  assertEquals(seen, [1, 2, 3, 4]);
  assertEquals(ns(s), [9]);
  assertEquals([...s].map((x) => x.n), [9]);
});

Deno.test("LinkedSet: an element is in one set at a time", () => {
  const s = new LinkedSet<Item>(), t = new LinkedSet<Item>();
  const a = item(1);
  s.add(a);
  assertThrows(() => t.add(a), Error, "in another set");
  assert(!t.delete(a));
  assertEquals([s.size, t.size], [1, 0]);
  s.delete(a);
  t.add(a);
  assertEquals(ns(t), [1]);
});
