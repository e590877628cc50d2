/**
 * The {@link XdsWire} of the gRPC sources: loads Envoy's protos (`proto.ts`) on first use.
 *
 * @module
 */
import { createXdsWire, loadXdsTypes } from "./proto.ts";
import type { XdsWire } from "./wire.ts";

/** Loads the protobuf definitions and returns the wire built on them. */
export async function loadWire(): Promise<XdsWire> {
  await loadXdsTypes();
  return createXdsWire();
}
