// upstream-disconnect-log: one structured record for every proxied response that did not end
// normally, and optionally for the ones that did. It never changes the response.
//
// PRIORITY 15: its body_filter runs after every plugin that rewrites the body, so it counts what
// the client gets, and its log phase still runs before Kong's log plugins (http-log 12 and below,
// prometheus 13, opentelemetry 14), which serialize in theirs.
// No access phase: after another plugin's early exit Kong skips access but still runs the others.

import { providerOfDialect, recordAiAnalytics } from "../ai-gateway-shared/analytics";
import { estimatePromptTokensFromBody, tokensForChars } from "../ai-gateway-shared/estimate";
import { guarded } from "../ai-gateway-shared/guarded";
import { asObject } from "../ai-gateway-shared/json";
import * as metrics from "../ai-gateway-shared/metrics";
import { openResponseReader, responseReader, type ResponseReader } from "../ai-gateway-shared/response_reader";
import { decodedRequestJson } from "../ai-gateway-shared/request_json";
import { responseHeader } from "../ai-gateway-shared/response_header";
import { framingFromHeaders, type UsageReport } from "../ai-gateway-shared/stream_usage";
import { COUNTED_TOKENS_KEY, tokensOf, type Tokens } from "../ai-gateway-shared/tokens";
import { classify, type ResponseEnd, type ResponseSource } from "./classify";
import { buildRecord, emit, methodOf, namedEntity, recordPath, shouldEmit, type ResponseKind, type WebSocketTraffic } from "./record";
import { upstreamList, upstreamSide } from "./upstream_vars";

type Config = ConfigOf<typeof import("./schema")>;

const PLUGIN_NAME = "upstream-disconnect-log";
/** Larger request bodies are estimated from their size alone. */
const MAX_PROMPT_BODY_BYTES = 1024 * 1024;
/** A larger JSON body keeps only its last 64 KiB, where usage and finish reason are. */
const MAX_JSON_BYTES = 64 * 1024;

interface ResponseState {
  headersAt: number;
  kind: ResponseKind;
  contentType?: string;
  shared?: ResponseReader;
  /** No plugin before this one feeds the reader. */
  feeds: boolean;
  bytes: number;
  firstDataAt?: number;
  lastDataAt?: number;
  eof: boolean;
  /** The upgrade response header's share of $upstream_bytes_received. */
  upgradeHeaderBytes?: number;
}

declare global {
  interface KongPluginCtx {
    upstream_disconnect?: ResponseState;
  }
}

function nowMs(): number {
  return ngx.now() * 1000;
}

function kindOf(status: number, framing: string, contentLength: string | undefined): ResponseKind {
  if (status === 101) return "websocket";
  if (framing === "sse") return "sse";
  if (framing === "ndjson") return "ndjson";
  return contentLength !== undefined ? "body" : "chunked";
}

function headerFilter(this: void, conf: Config): void {
  ngx.update_time();
  const status = ngx.status;
  const contentType = responseHeader("Content-Type");
  const st: ResponseState = { headersAt: nowMs(), kind: "none", contentType, feeds: false, bytes: 0, eof: false };
  if (status === 101) {
    st.kind = "websocket";
    st.upgradeHeaderBytes = tonumber(upstreamList(ngx.var.upstream_bytes_received)[0] ?? "0") ?? 0;
  } else if (kong.response.get_source() === "service") {
    const contentEncoding = responseHeader("Content-Encoding");
    st.kind = kindOf(status, framingFromHeaders(undefined, contentType, contentEncoding) ?? "none", responseHeader("Content-Length"));
    // A Content-Length body's completeness shows in eof: it is read only when its usage is needed.
    const m = conf.metrics;
    const shared = st.kind !== "body" || conf.log_completed || m.ai_analytics || metrics.counting(m)
      ? openResponseReader(PLUGIN_NAME, { contentType, contentEncoding, maxJsonBytes: MAX_JSON_BYTES })
      : responseReader();
    st.shared = shared;
    st.feeds = shared !== undefined && shared.feeder === PLUGIN_NAME;
  } else {
    st.kind = kindOf(status, "none", responseHeader("Content-Length"));
  }
  kong.ctx.plugin.upstream_disconnect = st;
}

function bodyFilter(this: void): void {
  const st = kong.ctx.plugin.upstream_disconnect;
  if (st === undefined) return;
  const arg = ngx.arg;
  const chunk = arg[1];
  if (chunk !== undefined && chunk !== "") {
    const now = nowMs();
    st.bytes += chunk.length;
    st.lastDataAt = now;
    const shared = st.shared;
    if (shared === undefined) {
      if (st.firstDataAt === undefined) st.firstDataAt = now;
    } else {
      // The feeder before this plugin failed: read on from here.
      if (shared.stopped && !st.feeds) st.feeds = true;
      const reader = shared.reader;
      if (st.feeds) reader.feed(chunk);
      if (st.firstDataAt === undefined && (reader.events > 0 || (reader.framing !== "sse" && reader.framing !== "ndjson"))) {
        st.firstDataAt = now;
      }
    }
  }
  if (arg[2]) st.eof = true;
}

function stopReading(this: void): void {
  const st = kong.ctx.plugin.upstream_disconnect;
  if (st !== undefined) st.shared = undefined;
}

/** Called only when a record needs it; the body is never logged. */
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

/** token-rate-limiting's count when it ran: it saw the usage chunk it injected before removing it. */
function tokensFor(exited: boolean, websocket: boolean, upstreamStatus: number | undefined, report: UsageReport | undefined): Tokens {
  const counted = kong.ctx.shared[COUNTED_TOKENS_KEY];
  if (counted !== undefined) return counted;
  return tokensOf({ exited, websocket, upstreamStatus, report, promptEstimate });
}

function countEnding(conf: Config, st: ResponseState, outcome: string, tokens: Tokens, report: UsageReport | undefined): void {
  const m = conf.metrics;
  const startedAt = ngx.req.start_time();
  // Only when a plugin before this one decoded the request.
  const model = asObject(decodedRequestJson())?.model;
  recordAiAnalytics(m, {
    pluginId: conf.__plugin_id,
    provider: providerOfDialect(report?.dialect),
    requestModel: model,
    prompt: tokens.prompt,
    completion: tokens.completion,
    startedAt,
    endedAt: st.lastDataAt === undefined ? undefined : st.lastDataAt / 1000,
    source: tokens.source,
  });
  if (!metrics.counting(m)) return;
  const route = kong.router.get_route();
  metrics.recordStreamEnd(m, route, outcome);
  metrics.recordTokens(m, kong.client.get_consumer(), route, model, tokens);
  // Not for the gateway's own or an error's body.
  if (st.firstDataAt !== undefined && report !== undefined && report.text_events > 0 && tokens.source !== "upstream_error") {
    metrics.recordTimeToFirstToken(m, route, model, st.firstDataAt - startedAt * 1000);
  }
}

/** Cheap signs of a completed answer, so it costs no parsing of nginx's variables when not recorded. */
function plainlyCompleted(st: ResponseState, report: UsageReport | undefined, evented: boolean, source: ResponseSource): boolean {
  if (st.kind === "websocket" || ngx.status === 499 || source !== "service") return false;
  // nginx records 502/504 when no status line arrived.
  const upstreamStatus = tonumber(ngx.var.upstream_status ?? "");
  if (upstreamStatus === undefined || upstreamStatus >= 500) return false;
  if (report !== undefined && report.terminated) return true;
  const llmStream = evented && report !== undefined && report.dialect !== "unknown";
  return st.eof && !llmStream && ngx.var.request_completion === "OK";
}

function log(this: void, conf: Config): void {
  ngx.update_time();
  const endedMs = nowMs();
  const startedMs = kong.request.get_start_time();
  const st = kong.ctx.plugin.upstream_disconnect;
  const shared = st?.shared;
  const report: UsageReport | undefined = shared?.reader.finish();
  const v = ngx.var;
  const evented = report !== undefined && (report.framing === "sse" || report.framing === "ndjson");
  const source: ResponseSource = kong.response.get_source();
  if (!conf.log_completed && st !== undefined && plainlyCompleted(st, report, evented, source)) {
    if (metrics.counting(conf.metrics) || conf.metrics.ai_analytics) {
      countEnding(conf, st, "completed", tokensFor(false, false, tonumber(v.upstream_status ?? ""), report), report);
    }
    return;
  }
  const up = upstreamSide({
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
  const upgraded = st !== undefined && st.kind === "websocket";
  const quietSince = st === undefined ? startedMs : (st.lastDataAt ?? st.headersAt);

  const route = kong.router.get_route();
  const end: ResponseEnd = {
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
    llmStream: evented && report.dialect !== "unknown",
    terminated: report !== undefined && report.terminated,
    silenceMs: endedMs - quietSince,
    readTimeoutMs: service?.read_timeout,
  };
  const { outcome, reason } = classify(end);
  const tokens = tokensFor(source === "exit", upgraded, up.headerReceived ? up.status : undefined, report);
  if (st !== undefined) countEnding(conf, st, outcome, tokens, report);
  if (!shouldEmit(outcome, conf.log_completed, conf.sample_rate, math.random())) return;

  let websocket: WebSocketTraffic | undefined;
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
    // A plugin may have removed one the reader saw.
    events: evented ? report.events - (shared?.removedEvents ?? 0) : 0,
    finishReason: report?.finish_reason,
    tokens,
    route: namedEntity(route),
    service: namedEntity(service),
    consumerId: kong.client.get_consumer()?.id,
    requestId: v.kong_request_id,
    method: end.method,
    path: recordPath(v.request_uri, conf.include_query),
    websocket,
  });
  emit(record, conf.log_level);
}

const handler: KongPluginHandler<Config> = {
  PRIORITY: 15,
  VERSION: "0.1.0",

  init_worker() {
    metrics.init();
  },

  // Kong calls these without pcall: an error must neither break the response nor skip later log plugins.
  header_filter(conf) {
    guarded("disconnect observation", headerFilter, conf, stopReading);
  },

  body_filter(conf) {
    guarded("disconnect observation", bodyFilter, conf, stopReading);
  },

  log(conf) {
    guarded("disconnect record", log, conf);
  },
};

export = handler;
