// Which records are written, and how: one error-log line with a fixed prefix, and the same
// record under one key of the log serializer (file-log, http-log and the others send it).

import * as cjson from "cjson.safe";
import type { Outcome } from "./classify";
import type { DisconnectRecord } from "./record";

/** Every line starts with this, then the record as JSON. */
export const LOG_PREFIX = "[upstream-disconnect] ";
/** The key under which kong.log.serialize() carries the record. */
export const SERIALIZE_KEY = "upstream_disconnect";

export type LogLevel = "err" | "warn" | "notice" | "info";

/**
 * Abnormal endings are always written; completed ones only with log_completed on, and then a
 * `sampleRate` fraction of them (`draw` is uniform in [0, 1), so 1 keeps all and 0 none).
 */
export function shouldEmit(outcome: Outcome, logCompleted: boolean, sampleRate: number, draw: number): boolean {
  if (outcome !== "completed") return true;
  if (!logCompleted) return false;
  return draw < sampleRate;
}

/** The log line's text (undefined when the record cannot be encoded, which a plain record never is). */
export function logLine(record: DisconnectRecord): string | undefined {
  const [json] = cjson.encode(record);
  return json === undefined ? undefined : LOG_PREFIX + json;
}

export function emit(record: DisconnectRecord, level: LogLevel): void {
  kong.log.set_serialize_value(SERIALIZE_KEY, record);
  const line = logLine(record);
  if (line === undefined) return;
  kong.log[level](line);
}
