// The record this plugin writes (documented in README.md): one error-log line, and the same
// record in the log serializer for Kong's log plugins. Absent fields mean "not known".

import * as cjson from "cjson.safe";
import type { Outcome } from "./classify";
import type { Tokens } from "../ai-gateway-shared/tokens";

export const SCHEMA_VERSION = 1;

export type ResponseKind = "sse" | "ndjson" | "chunked" | "body" | "websocket" | "none";

export interface NamedEntity {
  id: string;
  name?: string;
}

export interface WebSocketTraffic {
  /** nginx does not tell which side closed; "gateway": nginx ended an idle or failed tunnel. */
  closed_by: "unknown" | "gateway";
  /** Includes the handshake request. */
  client_to_upstream_bytes: number;
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

/** nginx truncates an error-log line at 2048 bytes; the record must fit whole. */
export const MAX_PATH_BYTES = 512;
const MAX_TEXT_BYTES = 128;

/** "2025-01-02T03:04:05.678Z" */
export function isoTime(ms: number): string {
  const whole = math.floor(ms / 1000);
  const millis = math.floor(ms - whole * 1000 + 0.5);
  const [sec, frac] = millis >= 1000 ? [whole + 1, 0] : [whole, millis];
  return (os.date("!%Y-%m-%dT%H:%M:%S", sec) as string) + string.format(".%03dZ", frac);
}

export function wholeMs(ms: number): number {
  return ms <= 0 ? 0 : math.floor(ms + 0.5);
}

function clip(text: string, max: number): string {
  return text.length > max ? string.sub(text, 1, max) : text;
}

/** Parameters whose values may be credentials. */
const SECRET_NAME_PARTS = ["key", "token", "secret", "pass", "auth", "sig", "cred", "session", "code"];

function isSecretName(name: string): boolean {
  const lower = string.lower(name);
  for (const part of SECRET_NAME_PARTS) {
    if (string.find(lower, part, 1, true)[0] !== undefined) return true;
  }
  return false;
}

export function redactQuery(query: string): string {
  return string.gsub(query, "([^&=]*)=([^&]*)", (name: string, value: string) => {
    return isSecretName(name) && value !== "" ? name + "=REDACTED" : name + "=" + value;
  })[0];
}

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

/** nginx's error_page redirect turns the method into GET, so $request is read instead. */
export function methodOf(requestLine: string | undefined): string | undefined {
  if (requestLine === undefined) return undefined;
  return string.match(requestLine, "^(%u+) ")[0];
}

/** A name may be ngx.null from a declarative file. */
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
  // Tunnel frames bypass the body filter: no "last data".
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

export const LOG_PREFIX = "[upstream-disconnect] ";
export const SERIALIZE_KEY = "upstream_disconnect";

export type LogLevel = "err" | "warn" | "notice" | "info";

/** Abnormal endings are always written; `draw` is uniform in [0, 1). */
export function shouldEmit(outcome: Outcome, logCompleted: boolean, sampleRate: number, draw: number): boolean {
  if (outcome !== "completed") return true;
  if (!logCompleted) return false;
  return draw < sampleRate;
}

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
