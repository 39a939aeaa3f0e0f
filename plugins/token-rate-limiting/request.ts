// What the plugin needs from the client's JSON request, read once in access: model, stream,
// the usage options the client asked for, max_tokens, and the prompt estimate. And the one
// change it makes to the request: asking an OpenAI-style upstream for a usage chunk.

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
  /** max_completion_tokens / max_tokens / Ollama options.num_predict, when positive. */
  maxTokens?: number;
  /** The client asked for the usage chunk itself (stream_options.include_usage). */
  clientAskedUsage: boolean;
  /** The documented prompt estimate (shared estimate module). */
  promptEstimate: number;
  /** Bytes of the request body (the reservation's prompt bound). */
  bodyBytes: number;
  /** The body was a JSON object. */
  json: boolean;
}

/**
 * The API the request speaks. Anthropic: an `anthropic-version` header or a path ending in
 * /messages; Ollama native: /api/chat or /api/generate; anything else is OpenAI-compatible.
 */
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

/** Reads a decoded request body (undefined when the body was not a JSON object). */
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

/** How a body is decoded: cjson.safe.decode, or the request's shared cache of it (request_json). */
export type JsonDecode = (this: void, raw: string) => LuaMultiReturn<[unknown, string | undefined]>;

/** Decodes a raw body; undefined unless it is a JSON object (an array decodes to a table too). */
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

/**
 * Position of the value of a top-level member `key` in the JSON object text `raw` (depth 1,
 * strings skipped, so the same name inside a message or a tool schema is never taken).
 */
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
 * The body with `stream_options.include_usage: true`, made by inserting text so that every
 * other byte of the client's body (number formats, key order, escapes, empty arrays) reaches
 * the upstream unchanged. Without stream_options the member goes right after the opening brace.
 * With a stream_options object the members go at its end, where they win over an earlier
 * `include_usage: false` (JSON parsers keep the last duplicate); continuous_usage_stats is
 * turned off there, because vLLM honours it only together with include_usage and the client
 * must get the stream it would have got. Undefined when the text is not as expected.
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
    // `"stream_options": null`: replace the null.
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
