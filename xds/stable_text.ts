/**
 * A canonical JSON text of a decoded resource (object keys sorted), so that a resource sent again unchanged is
 * recognised as unchanged whatever order its fields were written in.
 *
 * @module
 */

/** JSON with object keys sorted at every level. */
export function stableText(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) out[k] = sortKeys(o[k]);
    return out;
  }
  return v;
}
