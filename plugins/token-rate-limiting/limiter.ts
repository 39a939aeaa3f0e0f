// The nginx-bound part of token-rate-limiting: gathers what the pure modules need from the
// PDK, calls the policy, and keeps the per-request state from access to log.

import { errorBody, errorStyleFor } from "../ai-gateway-shared/openai_error";
import { decodeRequestJson } from "../ai-gateway-shared/request_json";
import { responseHeader } from "../ai-gateway-shared/response_header";
import type { UsageReport } from "../ai-gateway-shared/stream_usage";
import { COUNTED_TOKENS_KEY } from "../ai-gateway-shared/tokens";
import { admit, type Admission } from "./admission";
import { reservationOf, settlementDelta } from "./cost";
import { adjustments, counterWindows, type Adjustment, type CounterValues, type CounterWindow } from "./counters";
import { newLogGate, onStoreFailure } from "./fault";
import { rateLimitHeaders } from "./headers";
import { identifierOf, type RequestFacts } from "./identifier";
import { limitsFor, type LimitSpec, type ModelLimit } from "./limits";
import { newMeter, type Meter } from "./meter";
import * as localPolicy from "./policies/local";
import * as redisPolicy from "./policies/redis";
import { bodyWithUsage, decodeBody, describeRequest, requestFormat, shouldInjectUsage, type LlmRequest } from "./request";
import { countTokens, type Counted } from "./settlement";
import { remainingTokens, type WindowType } from "./windows";

type Config = ConfigOf<typeof import("./schema")>;

/** The key under which the log serializer carries what this plugin counted. */
export const SERIALIZE_KEY = "token_rate_limiting";
/** Request bodies are read up to this size (Kong writes bodies over 8 KiB to a file). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Store failures are logged at most once per this many seconds per worker. */
const FAILURE_LOG_INTERVAL = 30;

const storeFailures = newLogGate(FAILURE_LOG_INTERVAL);
const settleFailures = newLogGate(FAILURE_LOG_INTERVAL);

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
  exited: boolean;
  settled: boolean;
}

function state(): RequestState | undefined {
  return kong.ctx.plugin.token_rate_limiting as RequestState | undefined;
}

function logStoreFailure(gate: typeof storeFailures, what: string, err: string): void {
  if (!gate.open(ngx.now())) return;
  const held = gate.suppressed > 0 ? ` (${gate.suppressed} similar failures not logged in the last ${FAILURE_LOG_INTERVAL}s)` : "";
  kong.log.err(`${what}: ${err}${held}`);
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

const facts: RequestFacts = {
  consumerId: () => kong.client.get_consumer()?.id,
  credentialId: () => kong.client.get_credential()?.id,
  consumerGroups,
  forwardedIp: () => kong.client.get_forwarded_ip(),
  header: (name) => kong.request.get_header(name),
  path: () => kong.request.get_path(),
  serviceId: () => kong.router.get_service()?.id,
  routeId: () => kong.router.get_route()?.id,
};

// The plugin-wide limits of each config, computed once: without model_limits they are every
// request's limits. Weak keys: a config replaced by a reload is collected with its entry.
const wideSpecs = setmetatable(new LuaTable<object, LimitSpec[]>(), { __mode: "k" });

/** limitsFor, shared across requests when no model limit can add to it (read-only). */
function specsFor(conf: Config, model: string | undefined): LimitSpec[] {
  const modelLimits = conf.model_limits as ModelLimit[] | null | undefined;
  if (modelLimits !== undefined && modelLimits !== null && modelLimits.length > 0) return limitsFor(conf as { model_limits?: ModelLimit[] }, model);
  let specs = wideSpecs.get(conf);
  if (specs === undefined) {
    specs = limitsFor(conf as { model_limits?: ModelLimit[] }, undefined);
    wideSpecs.set(conf, specs);
  }
  return specs;
}

function acquire(
  conf: Config,
  windows: CounterWindow[],
  reserve: number,
): LuaMultiReturn<[CounterValues[], boolean, undefined] | [undefined, undefined, string]> {
  if (conf.policy === "redis") return redisPolicy.acquire(conf.redis, windows, reserve);
  return localPolicy.acquire(windows, conf.window_type, reserve);
}

function errorStyle() {
  return errorStyleFor(kong.request.get_path(), kong.request.get_header("anthropic-version"));
}

export function access(conf: Config): void {
  const [raw] = kong.request.get_raw_body(MAX_BODY_BYTES);
  // Decoded once per request for every plugin that reads it (prompt-guard too).
  const decoded = decodeBody(raw, decodeRequestJson);
  const format = requestFormat(conf.llm_format, kong.request.get_path(), kong.request.get_header("anthropic-version"));
  const req = describeRequest(decoded, raw === undefined ? 0 : raw.length, format);

  const specs = specsFor(conf, req.model);
  if (specs.length === 0) return;

  const windowType: WindowType = conf.window_type;
  const identifier = identifierOf(conf, facts);
  const windows = counterWindows(specs, windowType, ngx.now(), { route_id: conf.route_id, service_id: conf.service_id }, identifier, ngx.md5);
  const reserve = conf.reserve_max_tokens ? reservationOf(conf, req.promptEstimate, req.maxTokens, conf.reserve_tokens_cap) : 0;

  const st: RequestState = { req, windows, reserved: 0, rejected: false, storeError: false, injected: false, exited: false, settled: false };
  kong.ctx.plugin.token_rate_limiting = st;

  const [values, admitted, err] = acquire(conf, windows, reserve);
  if (values === undefined) {
    logStoreFailure(storeFailures, `token counters unavailable (policy ${conf.policy})`, err);
    st.storeError = true;
    if (onStoreFailure(conf.fault_tolerant) === "reject") {
      st.rejected = true;
      return kong.response.exit(503, errorBody(errorStyle(), 503, "Token rate limiting is temporarily unavailable"));
    }
  } else {
    let admission = admit(
      windowType,
      windows.map((w, i) => ({ spec: w.spec, pos: w.pos, current: values[i].current, previous: values[i].previous })),
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

  // Ask for identity so the body can be read (and filtered) as it passes.
  kong.service.request.set_header("Accept-Encoding", "identity");
  if (raw !== undefined && decoded !== undefined && shouldInjectUsage(conf.inject_stream_usage, req)) {
    const body = bodyWithUsage(raw, decoded);
    if (body !== undefined) {
      kong.service.request.set_raw_body(body);
      st.injected = true;
    }
  }
}

export function headerFilter(conf: Config): void {
  const st = state();
  if (st === undefined || st.rejected) return;
  // Straight to ngx.header: the values are plain strings made here, so the PDK's checks of
  // every name and value on every response would find nothing.
  const headers = st.headers;
  if (headers !== undefined) for (const name in headers) ngx.header[name] = headers[name];
  if (kong.response.get_source() === "exit") {
    st.exited = true;
    return;
  }
  const meter = newMeter({
    format: conf.llm_format,
    contentType: responseHeader("Content-Type"),
    contentEncoding: responseHeader("Content-Encoding"),
    injected: st.injected,
  });
  st.meter = meter;
  if (meter.plan.filter || meter.plan.sendDecoded) kong.response.clear_header("Content-Length");
  if (meter.plan.sendDecoded) kong.response.clear_header("Content-Encoding");
}

/** After a metering error: the rest of the body passes untouched, the count becomes an estimate. */
export function stopMetering(): void {
  const st = state();
  if (st !== undefined) st.meter = undefined;
}

export function bodyFilter(): void {
  const st = state();
  const meter = st?.meter;
  if (meter === undefined) return;
  const chunk = ngx.arg[1] ?? "";
  const out = meter.process(chunk, ngx.arg[2]);
  if (meter.plan.filter || meter.plan.sendDecoded) ngx.arg[1] = out;
}

function settleRedis(this: void, _premature: boolean, redisConf: Config["redis"], adjs: Adjustment[]): void {
  const err = redisPolicy.settleNow(redisConf, adjs);
  if (err !== undefined) logStoreFailure(settleFailures, "token counts could not be settled in Redis", err);
}

function settle(conf: Config, adjs: Adjustment[]): void {
  if (adjs.length === 0) return;
  if (conf.policy === "redis") {
    const [ok, err] = ngx.timer.at(0, settleRedis, conf.redis, adjs);
    if (!ok) logStoreFailure(settleFailures, "token counts could not be settled (no timer)", err ?? "unknown");
    return;
  }
  const err = localPolicy.settle(adjs);
  if (err !== undefined) logStoreFailure(settleFailures, "token counts could not be settled in the shared dict", err);
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
    // Usage as of admission plus what this request finally cost (not other requests since).
    const used = st.rejected ? w.used : w.used + cost;
    out.push({
      period: w.spec.period,
      scope: w.spec.model,
      limit: w.spec.limit,
      used: Math.ceil(used),
      remaining: st.rejected ? w.remaining : remainingTokens(w.spec.limit, used),
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
  });
}

/**
 * Tells the lower-priority plugins what this request counted (ai-gateway-shared/tokens): the
 * client's bytes lack the usage chunk this plugin removed, so they cannot read it themselves.
 */
function publish(counted: Counted): void {
  kong.ctx.shared[COUNTED_TOKENS_KEY] = {
    prompt: counted.prompt,
    completion: counted.completion,
    total: counted.total,
    estimated: counted.estimated,
    source: counted.source,
  };
}

export function log(conf: Config): void {
  const st = state();
  if (st === undefined || st.settled) return;
  st.settled = true;
  if (st.rejected) {
    const none = countTokens(conf, { exited: true, upstreamStatus: undefined, report: undefined, promptEstimate: 0 });
    publish(none);
    serialize(conf, st, none, undefined);
    return;
  }
  const report = st.meter?.finish();
  const counted = countTokens(conf, {
    exited: st.exited,
    upstreamStatus: kong.service.response.get_status(),
    report,
    promptEstimate: st.req.promptEstimate,
  });
  publish(counted);
  settle(conf, adjustments(st.windows, settlementDelta(counted.cost, st.reserved)));
  serialize(conf, st, counted, report);
}
