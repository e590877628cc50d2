/**
 * glibc malloc settings for a long-running proxy, applied once at start through `mallopt` (FFI).
 *
 * **Why.** V8 keeps every typed array's bytes in a `malloc`ed backing store (with a few small bookkeeping
 * allocations beside it), so Ferry's data path calls glibc's allocator a few hundred times per TLS handshake, and
 * the collector frees those blocks in bursts. With glibc's defaults two things go wrong once a process has carried
 * mixed traffic for a while (bulk downloads next to handshakes, as `bench/tls.sh` runs them):
 *
 * - Small freed blocks wait in "fastbins", and every request of 1 KiB or more (or free of 64 KiB or more) first
 *   consolidates all of them (`malloc_consolidate`), which walks a fragmented heap.
 * - The mmap threshold adapts upwards after large blocks are freed, so later large buffers come from the main heap
 *   and fragment it further.
 *
 * Measured in `perf` profiles of TLS 1.3-SM handshakes on one core, after the bench's warm-up: glibc's allocator
 * took 17% of Ferry's CPU (`_int_malloc` 7%, `malloc_consolidate` 4%, `unlink_chunk` 3%) against 6% in a fresh
 * process; with fastbins off and the thresholds fixed it took 6% after the same warm-up. Envoy avoids the question
 * by linking tcmalloc; a Deno program gets glibc's allocator, and only `mallopt` to tune it.
 *
 * `FERRY_MALLOPT=off` leaves glibc's defaults. Elsewhere (not Linux with glibc, no FFI permission) nothing happens.
 *
 * @module
 */

/** `mallopt` parameters (glibc's malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
const M_MXFAST = 1;

/** The settings applied, in order: fastbins off, then fixed thresholds (fixing them stops their adaptation). */
export const MALLOC_SETTINGS: readonly { readonly name: string; readonly param: number; readonly value: number }[] = [
  { name: "M_MXFAST", param: M_MXFAST, value: 0 },
  // glibc's initial values, fixed: large buffers stay mmapped, and the heap's top is returned past 4 MiB.
  { name: "M_MMAP_THRESHOLD", param: M_MMAP_THRESHOLD, value: 128 * 1024 },
  { name: "M_TRIM_THRESHOLD", param: M_TRIM_THRESHOLD, value: 4 * 1024 * 1024 },
];

/**
 * Applies {@link MALLOC_SETTINGS}; returns the names of those glibc accepted (empty when not applicable).
 * Safe to call more than once (the settings are process-wide).
 */
export function tuneMalloc(): string[] {
  if (Deno.build.os !== "linux") return [];
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "FERRY_MALLOPT" }).state === "granted") {
      if (Deno.env.get("FERRY_MALLOPT") === "off") return [];
    }
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return [];
    const lib = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
    try {
      // mallopt returns 1 on success, 0 on error.
      return MALLOC_SETTINGS.filter((s) => lib.symbols.mallopt(s.param, s.value) === 1).map((s) => s.name);
    } finally {
      lib.close();
    }
  } catch {
    return []; // not glibc (no libc.so.6), or FFI unavailable
  }
}
