// The record this plugin writes (schema_version 1, documented in README.md), built from plain
// values so busted can pin every field, and how it is written: one error-log line with a fixed
// prefix, and the same record under one key of the log serializer (file-log, http-log and the
// others send it). Absent fields mean "not known for this request".

import * as cjson from "cjson.safe";
import type { Outcome } from "./classify";
import type { Tokens } from "../ai-gateway-shared/tokens";

export const SCHEMA_VERSION = 1;

/** How the response body travelled. */
export type ResponseKind = "sse" | "ndjson" | "chunked" | "body" | "websocket" | "none";

export interface NamedEntity {
  id: string;
  name?: string;
}

export interface WebSocketTraffic {
  /** "unknown": a side closed its connection (nginx does not tell which); "gateway": nginx ended an idle or failed tunnel. */
  closed_by: "unknown" | "gateway";
  /** Bytes nginx forwarded from the client to the upstream: the handshake request it sent upstream plus the client's frames. */
  client_to_upstream_bytes: number;
  /** Frame bytes nginx received from the upstream after its 101 response header. */
  upstream_to_client_bytes: number;
}

export interface DisconnectRecord {
  schema_version: number;
  outcome: Outcome;
  reason: string;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  ttfb_ms?: number;
  time_to_first_data_ms?: number;
  idle_before_end_ms?: number;
  status: number;
  upstream_status?: number;
  upstream_addr?: string;
  upstream_tries?: number;
  kind: ResponseKind;
  content_type?: string;
  bytes_to_client: number;
  bytes_from_upstream: number;
  sse_events: number;
  last_finish_reason?: string;
  tokens: Tokens;
  route?: NamedEntity;
  service?: NamedEntity;
  consumer_id?: string;
  request_id?: string;
  method: string;
  path: string;
  websocket?: WebSocketTraffic;
}

/** Longest path kept (nginx truncates an error-log line at 2048 bytes; the record must fit whole). */
export const MAX_PATH_BYTES = 512;
const MAX_TEXT_BYTES = 128;

/** Milliseconds since the epoch to ISO 8601 UTC with milliseconds ("2025-01-02T03:04:05.678Z"). */
export function isoTime(ms: number): string {
  const whole = math.floor(ms / 1000);
  const millis = math.floor(ms - whole * 1000 + 0.5);
  // 999.6 ms rounds to the next second.
  const [sec, frac] = millis >= 1000 ? [whole + 1, 0] : [whole, millis];
  return (os.date("!%Y-%m-%dT%H:%M:%S", sec) as string) + string.format(".%03dZ", frac);
}

/** A duration in whole milliseconds, never negative. */
export function wholeMs(ms: number): number {
  return ms <= 0 ? 0 : math.floor(ms + 0.5);
}

function clip(text: string, max: number): string {
  return text.length > max ? string.sub(text, 1, max) : text;
}

/** Query parameters whose values may be credentials (matched in the lower-cased name). */
const SECRET_NAME_PARTS = ["key", "token", "secret", "pass", "auth", "sig", "cred", "session", "code"];

function isSecretName(name: string): boolean {
  const lower = string.lower(name);
  for (const part of SECRET_NAME_PARTS) {
    if (string.find(lower, part, 1, true)[0] !== undefined) return true;
  }
  return false;
}

/** The query string with the values of credential-like parameters replaced by REDACTED. */
export function redactQuery(query: string): string {
  return string.gsub(query, "([^&=]*)=([^&]*)", (name: string, value: string) => {
    return isSecretName(name) && value !== "" ? name + "=REDACTED" : name + "=" + value;
  })[0];
}

/** The path to record from the raw request URI: without the query unless asked, clipped. */
export function recordPath(requestUri: string | undefined, includeQuery: boolean): string {
  const uri = requestUri ?? "";
  const [q] = string.find(uri, "?", 1, true);
  let path = q === undefined ? uri : string.sub(uri, 1, q - 1);
  if (includeQuery && q !== undefined) {
    const query = string.sub(uri, q + 1);
    if (query !== "") path = path + "?" + redactQuery(query);
  }
  return clip(path, MAX_PATH_BYTES);
}

/**
 * The method from the request line ($request). nginx turns an error page's method into GET
 * (error_page redirect), so ngx.req.get_method() says GET for a POST that got a 502 or 504.
 */
export function methodOf(requestLine: string | undefined): string | undefined {
  if (requestLine === undefined) return undefined;
  return string.match(requestLine, "^(%u+) ")[0];
}

/** A route or service as {id, name}; names that are not strings (ngx.null from a declarative file) are left out. */
export function namedEntity(entity: { id?: unknown; name?: unknown } | undefined): NamedEntity | undefined {
  if (entity === undefined || typeof entity.id !== "string") return undefined;
  const out: NamedEntity = { id: entity.id };
  if (typeof entity.name === "string") out.name = clip(entity.name, MAX_TEXT_BYTES);
  return out;
}

export interface RecordInput {
  outcome: Outcome;
  reason: string;
  startedMs: number;
  endedMs: number;
  headersAtMs?: number;
  firstDataAtMs?: number;
  lastDataAtMs?: number;
  status: number;
  upstreamStatus?: number;
  upstreamAddr?: string;
  upstreamTries: number;
  kind: ResponseKind;
  contentType?: string;
  bytesToClient: number;
  bytesFromUpstream: number;
  events: number;
  finishReason?: string;
  tokens: Tokens;
  route?: NamedEntity;
  service?: NamedEntity;
  consumerId?: string;
  requestId?: string;
  method: string;
  path: string;
  websocket?: WebSocketTraffic;
}

function since(startMs: number, atMs: number | undefined): number | undefined {
  return atMs === undefined ? undefined : wholeMs(atMs - startMs);
}

export function buildRecord(r: RecordInput): DisconnectRecord {
  // Tunnel frames bypass the body filter: there is no "last data" to measure from.
  const quietSince = r.kind === "websocket" ? undefined : (r.lastDataAtMs ?? r.headersAtMs);
  return {
    schema_version: SCHEMA_VERSION,
    outcome: r.outcome,
    reason: r.reason,
    started_at: isoTime(r.startedMs),
    ended_at: isoTime(r.endedMs),
    duration_ms: wholeMs(r.endedMs - r.startedMs),
    ttfb_ms: since(r.startedMs, r.headersAtMs),
    time_to_first_data_ms: since(r.startedMs, r.firstDataAtMs),
    idle_before_end_ms: quietSince === undefined ? undefined : wholeMs(r.endedMs - quietSince),
    status: r.status,
    upstream_status: r.upstreamStatus,
    upstream_addr: r.upstreamAddr,
    upstream_tries: r.upstreamTries > 0 ? r.upstreamTries : undefined,
    kind: r.kind,
    content_type: r.contentType === undefined ? undefined : clip(r.contentType, MAX_TEXT_BYTES),
    bytes_to_client: r.bytesToClient,
    bytes_from_upstream: r.bytesFromUpstream,
    sse_events: r.events,
    last_finish_reason: r.finishReason === undefined ? undefined : clip(r.finishReason, MAX_TEXT_BYTES),
    tokens: r.tokens,
    route: r.route,
    service: r.service,
    consumer_id: r.consumerId,
    request_id: r.requestId,
    method: r.method,
    path: r.path,
    websocket: r.websocket,
  };
}

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
