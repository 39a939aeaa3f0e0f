// token-rate-limiting: limits LLM traffic by tokens, counted from what the upstream reports
// (streams included), with an estimate when no usage arrives.
//
// PRIORITY 905: after authentication so the consumer is known, after request-size-limiting (951)
// so oversized bodies are refused unread, and after Kong's rate-limiting (910) so request limits
// refuse before token budgets are reserved; before ai-proxy (770).

import { providerOfDialect, recordAiAnalytics } from "../ai-gateway-shared/analytics";
import { guarded } from "../ai-gateway-shared/guarded";
import * as metrics from "../ai-gateway-shared/metrics";
import { errorBody, errorStyleFor } from "../ai-gateway-shared/openai_error";
import { decodeRequestJson } from "../ai-gateway-shared/request_json";
import { openResponseReader, type ResponseReader } from "../ai-gateway-shared/response_reader";
import { responseHeader } from "../ai-gateway-shared/response_header";
import type { UsageReport } from "../ai-gateway-shared/stream_usage";
import { COUNTED_TOKENS_KEY } from "../ai-gateway-shared/tokens";
import { admit, countsOf, rateLimitHeaders, type Admission } from "./admission";
import { countTokens, promptBound, reservationOf, settlementDelta, type Counted } from "./cost";
import { hasModelLimits, identifierOf, limitsFor, type IdentitySources, type Limit } from "./limits";
import { newMeter, planFor, type Meter } from "./meter";
import { policies } from "./policies/init";
import { logStoreFailure, onStoreFailure } from "./policies/failures";
import { bodyWithUsage, decodeBody, describeRequest, requestFormat, shouldInjectUsage, type LlmRequest } from "./request";
import { adjustments, counterWindows, remainingTokens, type CounterWindow } from "./windows";

type Config = ConfigOf<typeof import("./schema")>;

const PLUGIN_NAME = "token-rate-limiting";
const SERIALIZE_KEY = "token_rate_limiting";
/** Kong writes bodies over 8 KiB to a file; get_raw_body reads them back up to this. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

interface RequestState {
  req: LlmRequest;
  windows: CounterWindow[];
  reserved: number;
  admission?: Admission;
  headers?: Record<string, string>;
  rejected: boolean;
  storeError: boolean;
  injected: boolean;
  meter?: Meter;
  /** Set only when this plugin feeds the shared reader. */
  fed?: ResponseReader;
  firstTokenAt?: number;
  exited: boolean;
  settled: boolean;
}

declare global {
  interface KongPluginCtx {
    token_rate_limiting?: RequestState;
  }
}

// kong.client.get_consumer_groups exists only where Kong has consumer groups (Enterprise).
function consumerGroups(): string[] | undefined {
  const getGroups = kong.client.get_consumer_groups;
  if (getGroups === undefined) return undefined;
  const groups = getGroups();
  if (groups === undefined) return undefined;
  const names: string[] = [];
  for (const g of groups) {
    const name = g.name ?? g.id;
    if (name !== undefined) names.push(name);
  }
  return names;
}

const identity: IdentitySources = {
  consumerId: () => kong.client.get_consumer()?.id,
  credentialId: () => kong.client.get_credential()?.id,
  consumerGroups,
  forwardedIp: () => kong.client.get_forwarded_ip(),
  header: (name) => kong.request.get_header(name),
  path: () => kong.request.get_path(),
  serviceId: () => kong.router.get_service()?.id,
  routeId: () => kong.router.get_route()?.id,
};

// Without model_limits every request has the same limits. Weak keys: a replaced config is collected.
const wideLimits = setmetatable(new LuaTable<object, Limit[]>(), { __mode: "k" });

/** The shared array is read-only. */
function limitsOf(conf: Config, model: string | undefined): Limit[] {
  if (hasModelLimits(conf)) return limitsFor(conf, model);
  let limits = wideLimits.get(conf);
  if (limits === undefined) {
    limits = limitsFor(conf, undefined);
    wideLimits.set(conf, limits);
  }
  return limits;
}

function errorStyle() {
  return errorStyleFor(kong.request.get_path(), kong.request.get_header("anthropic-version"));
}

function headerFilter(this: void, conf: Config): void {
  const st = kong.ctx.plugin.token_rate_limiting;
  if (st === undefined || st.rejected) return;
  // Straight to ngx.header: the PDK's checks would find nothing in strings made here.
  const headers = st.headers;
  if (headers !== undefined) for (const name in headers) ngx.header[name] = headers[name];
  if (kong.response.get_source() === "exit") {
    st.exited = true;
    return;
  }
  const contentEncoding = responseHeader("Content-Encoding");
  const opts = { format: conf.llm_format, contentType: responseHeader("Content-Type"), contentEncoding, injected: st.injected };
  const plan = planFor(opts);
  const shared = openResponseReader(PLUGIN_NAME, {
    format: conf.llm_format,
    contentType: opts.contentType,
    contentEncoding: plan.decode ? undefined : contentEncoding,
  });
  const feeds = shared.feeder === PLUGIN_NAME;
  const meter = newMeter(opts, shared.reader, feeds);
  st.meter = meter;
  if (feeds) st.fed = shared;
  if (meter.plan.filter || meter.plan.sendDecoded) kong.response.clear_header("Content-Length");
  if (meter.plan.sendDecoded) kong.response.clear_header("Content-Encoding");
}

function bodyFilter(this: void): void {
  const st = kong.ctx.plugin.token_rate_limiting;
  const meter = st === undefined ? undefined : st.meter;
  if (st === undefined || meter === undefined) return;
  const arg = ngx.arg;
  const out = meter.process(arg[1] ?? "", arg[2]);
  if (st.firstTokenAt === undefined && meter.reader.textEvents > 0) st.firstTokenAt = ngx.now();
  if (meter.plan.filter || meter.plan.sendDecoded) {
    arg[1] = out;
    const shared = st.fed;
    if (shared !== undefined) shared.removedEvents = meter.removedEvents();
  }
}

/** The rest of the body passes untouched; the count becomes an estimate. */
function stopMetering(this: void): void {
  const st = kong.ctx.plugin.token_rate_limiting;
  if (st === undefined) return;
  st.meter = undefined;
  if (st.fed !== undefined) st.fed.stopped = true;
}

interface WindowLog {
  period: string;
  scope: string;
  limit: number;
  used: number;
  remaining: number;
}

function windowLogs(st: RequestState, cost: number): WindowLog[] {
  const out: WindowLog[] = [];
  if (st.admission === undefined) return out;
  for (const w of st.admission.windows) {
    // As of admission, plus this request's final cost.
    const used = st.rejected ? w.used : w.used + cost;
    out.push({
      period: w.limit.period,
      scope: w.limit.model,
      limit: w.limit.tokens,
      used: Math.ceil(used),
      remaining: st.rejected ? w.remaining : remainingTokens(w.limit.tokens, used),
    });
  }
  return out;
}

function serialize(conf: Config, st: RequestState, counted: Counted, report: UsageReport | undefined): void {
  const windows = windowLogs(st, counted.cost);
  let remaining: number | undefined;
  for (const w of windows) remaining = remaining === undefined ? w.remaining : Math.min(remaining, w.remaining);
  kong.log.set_serialize_value(SERIALIZE_KEY, {
    prompt: counted.prompt,
    completion: counted.completion,
    total: counted.total,
    cost: counted.cost,
    estimated: counted.estimated,
    source: counted.source,
    tokens_count: conf.tokens_count,
    model: st.req.model,
    stream: st.req.stream,
    reserved: st.reserved,
    injected: st.injected,
    limited: st.rejected && !st.storeError,
    store_error: st.storeError,
    policy: conf.policy,
    // Absent rather than empty: an empty Lua table would reach JSON loggers as `{}`.
    windows: windows.length > 0 ? windows : undefined,
    remaining,
    format: report?.dialect,
    finish_reason: report?.finish_reason,
    not_read: st.meter?.stoppedReading,
  });
}

/** Lower-priority plugins cannot count themselves: the client's bytes lack the usage chunk removed here. */
function publish(counted: Counted): void {
  kong.ctx.shared[COUNTED_TOKENS_KEY] = {
    prompt: counted.prompt,
    completion: counted.completion,
    total: counted.total,
    estimated: counted.estimated,
    source: counted.source,
  };
}

function report(conf: Config, st: RequestState, counted: Counted, usage: UsageReport | undefined): void {
  const m = conf.metrics;
  const startedAt = ngx.req.start_time();
  recordAiAnalytics(m, {
    pluginId: conf.__plugin_id,
    provider: providerOfDialect(usage?.dialect),
    requestModel: st.req.model,
    prompt: counted.prompt,
    completion: counted.completion,
    startedAt,
    endedAt: ngx.now(),
    source: counted.source,
  });
  if (!metrics.counting(m)) return;
  const consumer = kong.client.get_consumer();
  const route = kong.router.get_route();
  if (st.rejected && !st.storeError) metrics.recordRefusal(m, consumer, route);
  metrics.recordTokens(m, consumer, route, st.req.model, counted);
  if (st.firstTokenAt !== undefined) metrics.recordTimeToFirstToken(m, route, st.req.model, (st.firstTokenAt - startedAt) * 1000);
}

function log(this: void, conf: Config): void {
  const st = kong.ctx.plugin.token_rate_limiting;
  if (st === undefined || st.settled) return;
  st.settled = true;
  if (st.rejected) {
    const none = countTokens(conf, { exited: true, upstreamStatus: undefined, report: undefined, promptEstimate: 0 });
    publish(none);
    serialize(conf, st, none, undefined);
    report(conf, st, none, undefined);
    return;
  }
  const usage = st.meter?.finish();
  const counted = countTokens(conf, {
    exited: st.exited,
    upstreamStatus: kong.service.response.get_status(),
    report: usage,
    promptEstimate: st.req.promptEstimate,
  });
  publish(counted);
  policies[conf.policy].settle(conf, adjustments(st.windows, settlementDelta(counted.cost, st.reserved)));
  serialize(conf, st, counted, usage);
  report(conf, st, counted, usage);
}

const handler: KongPluginHandler<Config> = {
  PRIORITY: 905,
  VERSION: "0.1.0",

  init_worker() {
    metrics.init();
  },

  access(conf) {
    const [raw] = kong.request.get_raw_body(MAX_BODY_BYTES);
    // Decoded once per request for every plugin that reads it.
    const decoded = decodeBody(raw, decodeRequestJson);
    const format = requestFormat(conf.llm_format, kong.request.get_path(), kong.request.get_header("anthropic-version"));
    const req = describeRequest(decoded, raw === undefined ? 0 : raw.length, format);

    const limits = limitsOf(conf, req.model);
    if (limits.length === 0) return;

    const identifier = identifierOf(conf, identity);
    const windows = counterWindows(limits, conf.window_type, ngx.now(), { route_id: conf.route_id, service_id: conf.service_id }, identifier, ngx.md5);
    const reserve = conf.reserve_max_tokens
      ? reservationOf(conf, promptBound(req.bodyBytes, conf.reserve_prompt_overhead), req.maxTokens, conf.reserve_tokens_cap)
      : 0;

    const st: RequestState = { req, windows, reserved: 0, rejected: false, storeError: false, injected: false, exited: false, settled: false };
    kong.ctx.plugin.token_rate_limiting = st;

    const [values, admitted, err] = policies[conf.policy].acquire(conf, windows, reserve);
    if (values === undefined) {
      logStoreFailure(`token counters unavailable (policy ${conf.policy})`, err);
      st.storeError = true;
      if (onStoreFailure(conf.fault_tolerant) === "reject") {
        st.rejected = true;
        return kong.response.exit(503, errorBody(errorStyle(), 503, "Token rate limiting is temporarily unavailable"));
      }
    } else {
      let admission = admit(
        conf.window_type,
        countsOf(windows, values),
        reserve,
      );
      if (admission.admitted !== admitted) {
        // Redis decided atomically; its answer wins over this node's recomputation.
        admission = { ...admission, admitted, retryAfter: Math.max(1, admission.retryAfter) };
      }
      st.admission = admission;
      st.headers = conf.hide_client_headers ? undefined : rateLimitHeaders(admission);
      if (!admitted) {
        st.rejected = true;
        const style = errorStyle();
        const body = style === "openai"
          ? errorBody(style, conf.error_code, conf.error_message, { type: "tokens", code: "rate_limit_exceeded" })
          : errorBody(style, conf.error_code, conf.error_message);
        return kong.response.exit(conf.error_code, body, st.headers);
      }
      st.reserved = reserve;
    }

    // So that the body can be read and filtered as it passes.
    kong.service.request.set_header("Accept-Encoding", "identity");
    if (raw !== undefined && decoded !== undefined && shouldInjectUsage(conf.inject_stream_usage, req)) {
      const body = bodyWithUsage(raw, decoded);
      if (body !== undefined) {
        kong.service.request.set_raw_body(body);
        st.injected = true;
      }
    }
  },

  // Kong calls these without pcall: an error must neither break the response nor skip later log plugins.
  header_filter(conf) {
    guarded("token metering", headerFilter, conf, stopMetering);
  },

  body_filter(conf) {
    guarded("token metering", bodyFilter, conf, stopMetering);
  },

  log(conf) {
    guarded("token accounting", log, conf);
  },
};

export = handler;
