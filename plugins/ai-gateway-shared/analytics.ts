/**
 * Kong's AI analytics (the log serializer's `ai.proxy` entry, in the shape Kong 3.9's ai-proxy
 * writes) for traffic that never touches ai-proxy, so that prometheus `ai_metrics` and the log
 * plugins see it. Written with mode "add" while ai-proxy uses "set", so one entry per request
 * survives: ai-proxy's when it logs statistics, else the first of ours.
 */
import { labelText, modelLabel, type MetricsConf } from "./metrics";

export const AI_USE_CASE = "proxy";
export const AI_META_KEY = "ai.proxy.meta";
export const AI_USAGE_KEY = "ai.proxy.usage";
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

export interface AnalyticsFacts {
  pluginId?: string;
  provider?: string;
  requestModel?: unknown;
  /** Defaults to the request's, as in ai-proxy. */
  responseModel?: unknown;
  prompt: number;
  completion: number;
  /** Seconds, as ngx.now(). */
  startedAt?: number;
  endedAt?: number;
  cost?: number;
  /** "not_proxied" and "websocket" never reached a model: not written. */
  source?: string;
}

/** vLLM and SGLang speak openai. */
export function providerOfDialect(dialect: string | undefined): string {
  if (dialect === "openai" || dialect === "responses") return "openai";
  if (dialect === "anthropic") return "anthropic";
  if (dialect === "ollama") return "ollama";
  return PROVIDER_UNSPECIFIED;
}

function nonNegative(n: number): number {
  return n > 0 ? n : 0;
}

/** Models go through the same bounded labels as our metrics. */
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

export const AI_ANALYTICS_SET_KEY = "ai_gateway_ai_analytics";

declare global {
  interface KongSharedCtx {
    [AI_ANALYTICS_SET_KEY]?: boolean;
  }
}

/** Once per request, in the log phase. */
export function setAiAnalytics(conf: MetricsConf, analytics: AiAnalytics): boolean {
  if (!conf.ai_analytics) return false;
  const shared = kong.ctx.shared;
  if (shared[AI_ANALYTICS_SET_KEY] === true) return false;
  shared[AI_ANALYTICS_SET_KEY] = true;
  kong.log.set_serialize_value(AI_META_KEY, analytics.meta, { mode: "add" });
  kong.log.set_serialize_value(AI_USAGE_KEY, analytics.usage, { mode: "add" });
  return true;
}

export function recordAiAnalytics(conf: MetricsConf, facts: AnalyticsFacts): boolean {
  if (!conf.ai_analytics || facts.source === "not_proxied" || facts.source === "websocket") return false;
  return setAiAnalytics(conf, buildAiAnalytics(facts, conf.models));
}
