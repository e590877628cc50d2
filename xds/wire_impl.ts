/** Placeholder until proto.ts lands. */
import type { XdsWire } from "./wire.ts";
export function loadWire(): Promise<XdsWire> {
  throw new Error("not yet");
}
