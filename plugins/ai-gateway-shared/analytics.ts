/**
 * Kong's AI analytics for the requests our plugins meter: the log serializer's `ai` namespace in
 * the shape Kong 3.9's ai-proxy writes (kong/llm/plugin/shared-filters/serialize-analytics.lua,
 * in its log phase, when `logging.log_statistics` is on):
 *
 *   ai.proxy.meta  = { plugin_id, provider_name, request_model, response_model, llm_latency }
 *   ai.proxy.usage = { prompt_tokens, completion_tokens, total_tokens, time_per_token, cost }
 *
 * so that Kong's prometheus plugin with `ai_metrics: true` counts kong_ai_llm_requests_total,
 * kong_ai_llm_tokens_total and kong_ai_llm_provider_latency_ms for traffic that never touches
 * ai-proxy, and file-log / http-log records carry the fields Kong AI Gateway users parse.
 * llm_latency: ms from the request's start to the response's last byte (Kong: request to the
 * provider until its response ended); time_per_token: llm_latency / completion tokens, floored
 * (Kong's formula); cost: 0 (no prices are configured here; Kong counts cost only when > 0).
 *
 * No double counting: Kong's exporter counts each use case under `ai` once per request. Ours is
 * written under ai-proxy's use case, `proxy`, with mode "add" (only if absent), and ai-proxy writes
 * it with mode "set". The writes apply in call order when the log serializer runs, so
 * token-rate-limiting (PRIORITY 905, before ai-proxy's 770) is replaced by ai-proxy's entry,
 * upstream-disconnect-log (15, after it) leaves ai-proxy's entry alone, and between our plugins the
 * first write stays. One `proxy` entry per request: ai-proxy's when it logs statistics, else ours.
 */
import { labelText, modelLabel, type MetricsConf } from "./metrics";

export const AI_USE_CASE = "proxy";
export const AI_META_KEY = "ai.proxy.meta";
export const AI_USAGE_KEY = "ai.proxy.usage";
/** ai-proxy's provider_name when it has no model table. */
export const PROVIDER_UNSPECIFIED = "UNSPECIFIED";

export interface AiMeta {
  plugin_id?: string;
  provider_name: string;
  request_model: string;
  response_model: string;
  /** milliseconds */
  llm_latency: number;
}

export interface AiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** milliseconds per completion token */
  time_per_token: number;
  cost: number;
}

export interface AiAnalytics {
  meta: AiMeta;
  usage: AiUsage;
}

/** What a plugin knows about a metered request. */
export interface AnalyticsFacts {
  /** conf.__plugin_id of the plugin that writes. */
  pluginId?: string;
  /** provider_name; providerOfDialect(report.dialect) when nothing better is known. */
  provider?: string;
  /** The model the request named (a model label, see metrics.ts). */
  requestModel?: unknown;
  /** The model the response named; defaults to the request's, as in ai-proxy. */
  responseModel?: unknown;
  prompt: number;
  completion: number;
  /** ngx.now()-style seconds: when the request started (ngx.req.start_time()) ... */
  startedAt?: number;
  /** ... and when the last byte of the response passed the gateway. */
  endedAt?: number;
  cost?: number;
  /** tokens.ts's source: "not_proxied" and "websocket" requests never reached a model: not written. */
  source?: string;
}

/** The wire dialect the usage reader saw, as ai-proxy's provider names: vLLM and SGLang speak openai. */
export function providerOfDialect(dialect: string | undefined): string {
  if (dialect === "openai" || dialect === "responses") return "openai";
  if (dialect === "anthropic") return "anthropic";
  if (dialect === "ollama") return "ollama";
  return PROVIDER_UNSPECIFIED;
}

function nonNegative(n: number): number {
  return n > 0 ? n : 0;
}

/** Kong's `ai.proxy` entry for the facts; models go through the same labels as our metrics. */
export function buildAiAnalytics(f: AnalyticsFacts, knownModels: readonly string[]): AiAnalytics {
  const requestModel = modelLabel(f.requestModel, knownModels);
  const responseModel = f.responseModel === undefined ? requestModel : modelLabel(f.responseModel, knownModels);
  const prompt = nonNegative(f.prompt);
  const completion = nonNegative(f.completion);
  let latency = 0;
  if (f.startedAt !== undefined && f.endedAt !== undefined && f.endedAt >= f.startedAt) {
    latency = math.floor((f.endedAt - f.startedAt) * 1000);
  }
  const provider = labelText(f.provider);
  return {
    meta: {
      plugin_id: f.pluginId,
      provider_name: provider === "" ? PROVIDER_UNSPECIFIED : provider,
      request_model: requestModel,
      response_model: responseModel,
      llm_latency: latency,
    },
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      time_per_token: completion > 0 ? math.floor(latency / completion) : 0,
      cost: nonNegative(f.cost ?? 0),
    },
  };
}

/** kong.ctx.shared key: this request's `ai.proxy` entry was written by one of our plugins. */
export const AI_ANALYTICS_SET_KEY = "ai_gateway_ai_analytics";

declare global {
  interface KongSharedCtx {
    [AI_ANALYTICS_SET_KEY]?: boolean;
  }
}

/** Writes the entry (mode "add", see the module comment), once per request. Log phase. */
export function setAiAnalytics(conf: MetricsConf, analytics: AiAnalytics): boolean {
  if (!conf.ai_analytics) return false;
  const shared = kong.ctx.shared;
  if (shared[AI_ANALYTICS_SET_KEY] === true) return false;
  shared[AI_ANALYTICS_SET_KEY] = true;
  kong.log.set_serialize_value(AI_META_KEY, analytics.meta, { mode: "add" });
  kong.log.set_serialize_value(AI_USAGE_KEY, analytics.usage, { mode: "add" });
  return true;
}

/** buildAiAnalytics + setAiAnalytics, skipping requests that never reached a model. */
export function recordAiAnalytics(conf: MetricsConf, facts: AnalyticsFacts): boolean {
  if (!conf.ai_analytics || facts.source === "not_proxied" || facts.source === "websocket") return false;
  return setAiAnalytics(conf, buildAiAnalytics(facts, conf.models));
}
