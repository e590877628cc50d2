/**
 * The admin HTTP API (Envoy's endpoints) and its helpers.
 *
 * @module
 */
export { createAdminHandler, startAdmin } from "./admin.ts";
export type {
  AdminContext,
  AdminOptions,
  AdminServer,
  AdminThresholds,
  ClusterDescription,
  HostDescription,
  ListenerDescription,
} from "./admin.ts";
export { formatClustersJson, formatClustersText, formatListenersJson, formatListenersText } from "./clusters.ts";
export { isSensitiveField, REDACTED, redactSecrets } from "./redact.ts";
