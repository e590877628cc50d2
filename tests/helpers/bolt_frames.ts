/**
 * The captured Bolt frames of `codecs/bolt/testdata/frames.json` (name → hex), for the Bolt codec and integration
 * tests.
 *
 * @module
 */

const FRAMES: Record<string, string> = JSON.parse(
  Deno.readTextFileSync(new URL("../../codecs/bolt/testdata/frames.json", import.meta.url)),
);

/** The bytes of captured frame `name` (a fresh copy on every call); throws for an unknown name. */
export function boltFrame(name: string): Uint8Array {
  const s = FRAMES[name];
  if (s === undefined) throw new Error(`frames.json: no frame "${name}"`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}
