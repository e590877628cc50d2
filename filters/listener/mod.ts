/**
 * The built-in listener filters.
 * @module
 */
import type { ListenerFilterFactory } from "../../lib/server/listener_filter.ts";
import { tlsInspectorFactory } from "./tls_inspector.ts";

export { tlsInspectorFactory };

/** Built-in listener filter factories. */
export const builtinListenerFilters: readonly ListenerFilterFactory[] = [
  tlsInspectorFactory as ListenerFilterFactory,
];
