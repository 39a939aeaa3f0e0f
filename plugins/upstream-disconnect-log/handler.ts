// upstream-disconnect-log: one structured record for every proxied response that did not end
// normally (client gone, upstream gone, read timeout, upstream error, a plugin's early answer),
// and optionally for the ones that did.
//
// PRIORITY 15: low, among Kong's log plugins, for two reasons.
// - body_filter runs in PRIORITY order, highest first, so at 15 it sees the bytes after every
//   plugin that rewrites the body (token-rate-limiting 905 removes its injected usage chunk,
//   response-transformer 800, the ai-* plugins 768-777): what it counts is what the client gets.
// - log runs in the same order, and Kong's log plugins build their message with
//   kong.log.serialize() in their own log phase: the record must be set before theirs, so the
//   plugin sits above http-log (12), statsd (11), datadog (10), file-log (9), udp-log (8),
//   tcp-log (7), loggly (6) and syslog (4), and above opentelemetry (14) and prometheus (13).
// No access phase: when a plugin before it exits early, access never runs for it, while
// header_filter, body_filter and log still do (Kong runs them for every collected plugin).
//
// header_filter notes what kind of response it is, body_filter how far it got (bytes, first and
// last data, the end of the body), and log classifies the ending and writes the record. Nothing
// here changes the response: the body filter reads ngx.arg and never assigns it.

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
  /** The response's usage reader, for bodies it can read (SSE, NDJSON, JSON, or undecided). */
  shared?: ResponseReader;
  /** This plugin feeds the reader (no plugin before it does). */
  feeds: boolean;
  bytes: number;
  firstDataAt?: number;
  lastDataAt?: number;
  eof: boolean;
  /** $upstream_bytes_received when the 101 arrived: the upgrade response header (and nothing else). */
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
    // A body with a Content-Length is complete when nginx reached its end (eof), which needs no
    // reading; its usage only matters for a completed record or for what the metrics and Kong's
    // AI analytics count, so without those it is not read (or only looked at when another
    // plugin reads it anyway). An aborted one cannot be decoded: its tokens are estimated.
    const m = conf.metrics;
    const shared = st.kind !== "body" || conf.log_completed || m.ai_analytics || metrics.counting(m)
      ? openResponseReader(PLUGIN_NAME, { contentType, contentEncoding, maxJsonBytes: MAX_JSON_BYTES })
      : responseReader();
    st.shared = shared;
    st.feeds = shared !== undefined && shared.feeder === PLUGIN_NAME;
  } else {
    // Kong's or a plugin's own answer: nothing the upstream generated to read.
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
      // The feeder before this plugin stopped (an error): this one reads on from here.
      if (shared.stopped && !st.feeds) st.feeds = true;
      const reader = shared.reader;
      if (st.feeds) reader.feed(chunk);
      // The first data of an event stream is its first complete event, whoever read it.
      if (st.firstDataAt === undefined && (reader.events > 0 || (reader.framing !== "sse" && reader.framing !== "ndjson"))) {
        st.firstDataAt = now;
      }
    }
  }
  if (arg[2]) st.eof = true;
}

/** After an error while reading: the response is observed without its events from here on. */
function stopReading(this: void): void {
  const st = kong.ctx.plugin.upstream_disconnect;
  if (st !== undefined) st.shared = undefined;
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
 * usage chunk included, before removing the chunk it injected), else the shared rule applied to
 * the reader's view of the response.
 */
function tokensFor(exited: boolean, websocket: boolean, upstreamStatus: number | undefined, report: UsageReport | undefined): Tokens {
  const counted = kong.ctx.shared[COUNTED_TOKENS_KEY];
  if (counted !== undefined) return counted;
  return tokensOf({ exited, websocket, upstreamStatus, report, promptEstimate });
}

/**
 * How the response ended, and what it counted where token-rate-limiting did not count it (the
 * shared metrics count each request once), in Prometheus and Kong's AI analytics.
 */
function countEnding(conf: Config, st: ResponseState, outcome: string, tokens: Tokens, report: UsageReport | undefined): void {
  const m = conf.metrics;
  const startedAt = ngx.req.start_time();
  // The model, when a plugin before this one decoded the request (this one never reads it).
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
  // A first token only where the upstream generated some (not the gateway's or an error's body).
  if (st.firstDataAt !== undefined && report !== undefined && report.text_events > 0 && tokens.source !== "upstream_error") {
    metrics.recordTimeToFirstToken(m, route, model, st.firstDataAt - startedAt * 1000);
  }
}

/**
 * The common answer: the upstream's, from one try, ended as classify() calls completed. Told from
 * a few cheap signs, so that a completed answer costs no parsing of nginx's variables when
 * completed answers are not recorded. Anything less plain goes through classify().
 */
function plainlyCompleted(st: ResponseState, report: UsageReport | undefined, evented: boolean, source: ResponseSource): boolean {
  if (st.kind === "websocket" || ngx.status === 499 || source !== "service") return false;
  // One try whose status line arrived (nginx records 502/504 when none did).
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
    // Events the client got: the reader may have seen one more that a plugin removed.
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

  // Kong calls these without pcall: an error must not break the response nor skip the log
  // plugins below this one (guarded).
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
