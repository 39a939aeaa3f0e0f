// The nginx-bound part: what each phase notes about the response (kong.ctx.plugin), and the
// log phase that turns it into facts, a class and a record. Nothing here changes the response:
// the body filter reads ngx.arg and never assigns it.

import { estimatePromptTokensFromBody, tokensForChars } from "../ai-gateway-shared/estimate";
import { framingFromHeaders, newUsageReader, type UsageReader, type UsageReport } from "../ai-gateway-shared/stream_usage";
import { responseHeader } from "../ai-gateway-shared/response_header";
import { COUNTED_TOKENS_KEY, tokensOf, type Tokens } from "../ai-gateway-shared/tokens";
import { classify, type EndFacts, type ResponseSource } from "./classify";
import { emit, shouldEmit } from "./emit";
import { buildRecord, methodOf, namedEntity, recordPath, type ResponseKind, type WebSocketFacts } from "./record";
import { upstreamFacts, upstreamList } from "./upstream_vars";

type Config = ConfigOf<typeof import("./schema")>;

/** Request bodies larger than this are not read for the prompt estimate (ceil(bytes / 4) instead). */
const MAX_PROMPT_BODY_BYTES = 1024 * 1024;
/**
 * A JSON body up to this size is decoded whole at the end; a larger one keeps only its last
 * 64 KiB, where the usage, finish reason and closing brace are (shared reader's window).
 */
const MAX_JSON_BYTES = 64 * 1024;

interface ResponseState {
  headersAt: number;
  kind: ResponseKind;
  contentType?: string;
  /** Only for bodies the usage reader can read (SSE, NDJSON, JSON, or undecided). */
  reader?: UsageReader;
  bytes: number;
  firstDataAt?: number;
  lastDataAt?: number;
  eof: boolean;
  /** $upstream_bytes_received when the 101 arrived: the upgrade response header (and nothing else). */
  upgradeHeaderBytes?: number;
}

function nowMs(): number {
  return ngx.now() * 1000;
}

function state(): ResponseState | undefined {
  return kong.ctx.plugin.upstream_disconnect as ResponseState | undefined;
}

function kindOf(status: number, framing: string, contentLength: string | undefined): ResponseKind {
  if (status === 101) return "websocket";
  if (framing === "sse") return "sse";
  if (framing === "ndjson") return "ndjson";
  return contentLength !== undefined ? "body" : "chunked";
}

export function headerFilter(conf: Config): void {
  ngx.update_time();
  const status = ngx.status;
  const contentType = responseHeader("Content-Type");
  const st: ResponseState = { headersAt: nowMs(), kind: "none", contentType, bytes: 0, eof: false };
  if (status === 101) {
    st.kind = "websocket";
    st.upgradeHeaderBytes = tonumber(upstreamList(ngx.var.upstream_bytes_received)[0] ?? "0") ?? 0;
  } else if (kong.response.get_source() === "service") {
    const contentEncoding = responseHeader("Content-Encoding");
    st.kind = kindOf(status, framingFromHeaders(undefined, contentType, contentEncoding) ?? "none", responseHeader("Content-Length"));
    // A body with a Content-Length is complete when nginx reached its end (eof), which needs no
    // reading; its usage only matters for a completed record, so it is read only when those are
    // logged. An aborted one cannot be decoded anyway: its tokens are estimated. This keeps the
    // common case (small JSON answers, log_completed off) from building a reader per response.
    if (st.kind !== "body" || conf.log_completed) {
      const reader = newUsageReader({ maxJsonBytes: MAX_JSON_BYTES });
      reader.detect(contentType, undefined, contentEncoding);
      st.reader = reader;
    }
  } else {
    // Kong's or a plugin's own answer: nothing the upstream generated to read.
    st.kind = kindOf(status, "none", responseHeader("Content-Length"));
  }
  kong.ctx.plugin.upstream_disconnect = st;
}

export function bodyFilter(): void {
  const st = state();
  if (st === undefined) return;
  const chunk = ngx.arg[1];
  if (chunk !== undefined && chunk !== "") {
    const now = nowMs();
    st.bytes += chunk.length;
    st.lastDataAt = now;
    const reader = st.reader;
    if (reader !== undefined) {
      const completed = reader.feed(chunk);
      const evented = reader.framing === "sse" || reader.framing === "ndjson";
      if (st.firstDataAt === undefined && (completed > 0 || !evented)) st.firstDataAt = now;
    } else if (st.firstDataAt === undefined) {
      st.firstDataAt = now;
    }
  }
  if (ngx.arg[2]) st.eof = true;
}

/** The request body's prompt estimate, read only when a record needs it (never logged). */
function promptEstimate(this: void): number {
  const [okData, data] = pcall(ngx.req.get_body_data);
  if (okData && data !== undefined) return estimatePromptTokensFromBody(data);
  const [okFile, path] = pcall(ngx.req.get_body_file);
  if (!okFile || path === undefined) return 0;
  const [file] = io.open(path, "rb");
  if (file === undefined) return 0;
  const text = file.read(MAX_PROMPT_BODY_BYTES + 1);
  let estimate = 0;
  if (typeof text === "string" && text.length <= MAX_PROMPT_BODY_BYTES) {
    estimate = estimatePromptTokensFromBody(text);
  } else if (typeof text === "string") {
    const [size] = file.seek("end");
    estimate = tokensForChars(size ?? text.length);
  }
  file.close();
  return estimate;
}

/**
 * What token-rate-limiting counted when it ran on this request (it read the upstream's bytes,
 * usage chunk included, before removing the chunk it injected), else this plugin's own reading
 * of the client's bytes by the same shared rule.
 */
function tokensFor(exited: boolean, websocket: boolean, upstreamStatus: number | undefined, report: UsageReport | undefined): Tokens {
  const counted = kong.ctx.shared[COUNTED_TOKENS_KEY];
  if (counted !== undefined) return counted;
  return tokensOf({ exited, websocket, upstreamStatus, report, promptEstimate });
}

export function log(conf: Config): void {
  ngx.update_time();
  const endedMs = nowMs();
  const startedMs = kong.request.get_start_time();
  const st = state();
  const report: UsageReport | undefined = st?.reader?.finish();
  const v = ngx.var;
  const up = upstreamFacts({
    addr: v.upstream_addr,
    status: v.upstream_status,
    connect_time: v.upstream_connect_time,
    header_time: v.upstream_header_time,
    response_time: v.upstream_response_time,
    bytes_received: v.upstream_bytes_received,
    bytes_sent: v.upstream_bytes_sent,
  });
  const service = kong.router.get_service();
  const status = ngx.status;
  const source: ResponseSource = kong.response.get_source();
  const upgraded = st !== undefined && st.kind === "websocket";
  const quietSince = st === undefined ? startedMs : (st.lastDataAt ?? st.headersAt);

  const route = kong.router.get_route();
  const facts: EndFacts = {
    source,
    routed: route !== undefined,
    status,
    method: methodOf(v.request) ?? ngx.req.get_method(),
    upstreamAttempted: up.attempted,
    upstreamStatus: up.status,
    upstreamConnected: up.connected,
    upstreamHeaderReceived: up.headerReceived,
    upstreamLastBytes: up.lastBytesReceived,
    upgraded,
    eof: st !== undefined && st.eof,
    requestCompleted: v.request_completion === "OK",
    llmStream: report !== undefined && (report.framing === "sse" || report.framing === "ndjson") && report.dialect !== "unknown",
    terminated: report !== undefined && report.terminated,
    silenceMs: endedMs - quietSince,
    readTimeoutMs: service?.read_timeout,
  };
  const { outcome, reason } = classify(facts);
  if (!shouldEmit(outcome, conf.log_completed, conf.sample_rate, math.random())) return;

  let websocket: WebSocketFacts | undefined;
  let bytesToClient = st === undefined ? 0 : st.bytes;
  if (upgraded) {
    // Frames bypass the body filter: nginx's own counters are all there is.
    bytesToClient = tonumber(v.body_bytes_sent ?? "0") ?? 0;
    websocket = {
      closed_by: reason === "websocket_closed" ? "unknown" : "gateway",
      client_to_upstream_bytes: up.bytesSent,
      upstream_to_client_bytes: math.max(0, up.bytesReceived - (st?.upgradeHeaderBytes ?? 0)),
    };
  }

  const record = buildRecord({
    outcome,
    reason,
    startedMs,
    endedMs,
    headersAtMs: st?.headersAt,
    firstDataAtMs: st?.firstDataAt,
    lastDataAtMs: st?.lastDataAt,
    status,
    upstreamStatus: up.status,
    upstreamAddr: up.addr,
    upstreamTries: up.tries,
    kind: st === undefined ? "none" : st.kind,
    contentType: st?.contentType,
    bytesToClient,
    bytesFromUpstream: up.bytesReceived,
    events: report !== undefined && (report.framing === "sse" || report.framing === "ndjson") ? report.events : 0,
    finishReason: report?.finish_reason,
    tokens: tokensFor(source === "exit", upgraded, up.headerReceived ? up.status : undefined, report),
    route: namedEntity(route),
    service: namedEntity(service),
    consumerId: kong.client.get_consumer()?.id,
    requestId: v.kong_request_id,
    method: facts.method,
    path: recordPath(v.request_uri, conf.include_query),
    websocket,
  });
  emit(record, conf.log_level);
}
