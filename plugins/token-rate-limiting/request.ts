// What the plugin reads from the client's JSON request in access, and the one change it makes:
// asking an OpenAI-style upstream for a usage chunk.

import * as cjson from "cjson.safe";
import { estimatePromptTokens, tokensForChars } from "../ai-gateway-shared/estimate";
import { balancedAt, jsonStringEnd } from "../ai-gateway-shared/json_text";
import { asObject, type JsonObject } from "../ai-gateway-shared/json";

export type ApiFormat = "openai" | "anthropic" | "ollama";
export type FormatSetting = "auto" | ApiFormat;

export interface LlmRequest {
  format: ApiFormat;
  model?: string;
  stream: boolean;
  maxTokens?: number;
  /** stream_options.include_usage */
  clientAskedUsage: boolean;
  promptEstimate: number;
  bodyBytes: number;
  /** The body was a JSON object. */
  json: boolean;
}

export function requestFormat(setting: FormatSetting, path: string, anthropicVersion: string | undefined): ApiFormat {
  if (setting !== "auto") return setting;
  if (anthropicVersion !== undefined && anthropicVersion !== "") return "anthropic";
  if (string.find(path, "/messages/?$")[0] !== undefined) return "anthropic";
  if (string.find(path, "/api/chat/?$")[0] !== undefined || string.find(path, "/api/generate/?$")[0] !== undefined) return "ollama";
  return "openai";
}

function positiveCount(value: unknown): number | undefined {
  if (typeof value !== "number" || value <= 0 || value >= math.huge) return undefined;
  return Math.floor(value);
}

function maxTokensOf(body: JsonObject, format: ApiFormat): number | undefined {
  if (format === "ollama") {
    const options = asObject(body.options);
    return options === undefined ? undefined : positiveCount(options.num_predict);
  }
  return positiveCount(body.max_completion_tokens) ?? positiveCount(body.max_tokens);
}

export function describeRequest(body: JsonObject | undefined, rawLength: number, format: ApiFormat): LlmRequest {
  if (body === undefined) {
    return { format, stream: false, clientAskedUsage: false, promptEstimate: tokensForChars(rawLength), bodyBytes: rawLength, json: false };
  }
  const options = asObject(body.stream_options);
  // Ollama's native API streams unless told not to.
  const stream = format === "ollama" ? body.stream !== false : body.stream === true;
  return {
    format,
    model: typeof body.model === "string" && body.model !== "" ? body.model : undefined,
    stream,
    maxTokens: maxTokensOf(body, format),
    clientAskedUsage: options !== undefined && options.include_usage === true,
    promptEstimate: estimatePromptTokens(body),
    bodyBytes: rawLength,
    json: true,
  };
}

export type JsonDecode = (this: void, raw: string) => LuaMultiReturn<[unknown, string | undefined]>;

/** Undefined unless a JSON object: an array decodes to a table too. */
export function decodeBody(raw: string | undefined, decode: JsonDecode = cjson.decode): JsonObject | undefined {
  if (raw === undefined || string.find(raw, "^%s*{")[0] === undefined) return undefined;
  const [decoded] = decode(raw);
  return asObject(decoded);
}

/**
 * Only OpenAI-compatible streams lack usage unless asked (Anthropic and Ollama always report
 * it), and only they accept stream_options: Anthropic rejects unknown fields.
 */
export function shouldInjectUsage(injectSetting: boolean, req: LlmRequest): boolean {
  return injectSetting && req.json && req.format === "openai" && req.stream && !req.clientAskedUsage;
}

/** Depth 1 only: the same name inside a message or a tool schema is never taken. */
export function topLevelValueAt(raw: string, key: string): number | undefined {
  const wanted = '"' + key + '"';
  let depth = 0;
  let k = 1;
  for (;;) {
    const [e] = string.find(raw, '[][{}"]', k);
    if (e === undefined) return undefined;
    const c = string.byte(raw, e);
    if (c === 34 /* " */) {
      const close = jsonStringEnd(raw, e);
      if (close === undefined) return undefined;
      if (depth === 1 && string.sub(raw, e, close) === wanted) {
        const [, colonEnd] = string.find(raw, "^%s*:%s*", close + 1);
        if (colonEnd !== undefined) return colonEnd + 1;
      }
      k = close + 1;
      continue;
    }
    depth += c === 123 || c === 91 ? 1 : -1;
    k = e + 1;
  }
}

/**
 * Inserts text, so every other byte of the client's body reaches the upstream unchanged. Members
 * go at the end of stream_options, winning over an earlier `include_usage: false` (parsers keep
 * the last duplicate). continuous_usage_stats is turned off: vLLM honours it only with include_usage.
 */
export function bodyWithUsage(raw: string, body: JsonObject): string | undefined {
  if (body.stream_options === undefined) {
    const [, brace] = string.find(raw, "^%s*{");
    if (brace === undefined) return undefined;
    const [emptyObject] = string.find(raw, "^%s*}", brace + 1);
    const member = '"stream_options":{"include_usage":true}';
    return string.sub(raw, 1, brace) + member + (emptyObject !== undefined ? "" : ",") + string.sub(raw, brace + 1);
  }
  const options = asObject(body.stream_options);
  const at = topLevelValueAt(raw, "stream_options");
  if (at === undefined) return undefined;
  if (options === undefined) {
    if (string.sub(raw, at, at + 3) !== "null") return undefined;
    return string.sub(raw, 1, at - 1) + '{"include_usage":true}' + string.sub(raw, at + 4);
  }
  const objectText = balancedAt(raw, at);
  if (objectText === undefined || string.byte(objectText, 1) !== 123) return undefined;
  const closing = at + objectText.length - 1;
  let members = '"include_usage":true';
  if (options.continuous_usage_stats === true) members += ',"continuous_usage_stats":false';
  const empty = string.find(objectText, "^{%s*}$")[0] !== undefined;
  return string.sub(raw, 1, closing - 1) + (empty ? "" : ",") + members + string.sub(raw, closing);
}
