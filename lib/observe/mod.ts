/**
 * Observability: the stats store and its admin renderings, component logging, and access logs.
 *
 * @module
 */
export {
  CounterImpl,
  DEFAULT_BUCKETS,
  escapeLabelValue,
  extractTags,
  GaugeImpl,
  HistogramImpl,
  histogramQuantile,
  mergeSnapshots,
  renderPrometheus,
  renderStatsJson,
  renderStatsText,
  sanitizeMetricName,
  sanitizeStatName,
  StatsStore,
  SUPPORTED_QUANTILES,
} from "./stats.ts";
export type { HistogramSnapshot, StatsRenderOptions, StatsSnapshot, TaggedName } from "./stats.ts";
export {
  formatLogTime,
  getLogger,
  getLogLevel,
  getLogLevels,
  isLogLevel,
  LOG_COMPONENTS,
  LOG_LEVELS,
  Logger,
  setComponentLogLevel,
  setLogLevel,
  setLogSink,
} from "./log.ts";
export type { LogLevel, LogMessage, LogSink } from "./log.ts";
export {
  AccessLogManager,
  BufferedSink,
  closeAccessLogs,
  createAccessLogger,
  defaultAccessLogManager,
  FILE_ACCESS_LOG_TYPE,
  flushAccessLogs,
  parseAccessLogFilter,
  parseAccessLogs,
  parseSubstitutionFormat,
  reopenAccessLogs,
  STDERR_ACCESS_LOG_TYPE,
  STDOUT_ACCESS_LOG_TYPE,
} from "./access_log.ts";
export type {
  AccessLogConfig,
  AccessLogFilter,
  AccessLogSinkConfig,
  BufferedSinkOptions,
  SinkTarget,
} from "./access_log.ts";
export {
  addressWithoutPort,
  compileFormat,
  compileJsonFormat,
  compileTextFormat,
  compileTimeFormat,
  DEFAULT_ACCESS_LOG_FORMAT,
  FORMAT_OPERATORS,
  RESPONSE_FLAGS,
} from "./access_log_format.ts";
export type {
  AccessLogFormatter,
  FormatExtractor,
  FormatPiece,
  FormatValue,
  JsonFormatOptions,
  TextFormatOptions,
} from "./access_log_format.ts";
