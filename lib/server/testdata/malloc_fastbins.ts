// Prints how many bytes 200 freed small blocks add to glibc's fastbins, before and after tuneMalloc (for
// malloc_tuning_test.ts; run in its own process, since the settings are process-wide).
import { tuneMalloc } from "../malloc_tuning.ts";

const lib = Deno.dlopen("libc.so.6", {
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  // struct mallinfo2: ten size_t fields; fsmblks (bytes in freed fastbin blocks) is the seventh.
  mallinfo2: {
    parameters: [],
    result: { struct: ["usize", "usize", "usize", "usize", "usize", "usize", "usize", "usize", "usize", "usize"] },
  },
});

/** Bytes in fastbins (all arenas). */
function fastbinBytes(): number {
  return Number(new BigUint64Array(lib.symbols.mallinfo2().buffer)[6]);
}

/** What freeing 200 blocks of 48 bytes adds to the fastbins. */
function growth(): number {
  const blocks = [];
  for (let i = 0; i < 200; i++) blocks.push(lib.symbols.malloc(48n));
  const start = fastbinBytes();
  for (const b of blocks) lib.symbols.free(b);
  return fastbinBytes() - start;
}

const before = growth();
const applied = tuneMalloc();
console.log(JSON.stringify({ before, after: growth(), applied }));
