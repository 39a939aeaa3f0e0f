/**
 * OpenAI's own API. Chat chunks: a first chunk with the role (and `"content":""`, `"refusal":null`), one
 * chunk per token, a finish chunk with an empty delta, then with `stream_options.include_usage` a chunk
 * with `"choices":[]` and the usage; every chunk carries `"usage":null` in that case and no usage key
 * otherwise. Ends with `data: [DONE]`.
 */
import type { ErrorResponse, Flavor, ResponseContext, StreamFraming } from "./types.ts";
import { JSON_CONTENT_TYPE, SSE_CONTENT_TYPE, SSE_DONE, sseData } from "./types.ts";

const SYSTEM_FINGERPRINT = "fp_mock0001";

export function openAiUsage(ctx: ResponseContext, detailed: boolean): Record<string, unknown> {
  const completion = ctx.plan.completionTokens;
  const usage: Record<string, unknown> = {
    prompt_tokens: ctx.promptTokens,
    completion_tokens: completion,
    total_tokens: ctx.promptTokens + completion,
  };
  if (detailed) {
    usage.prompt_tokens_details = { cached_tokens: 0, audio_tokens: 0 };
    usage.completion_tokens_details = {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    };
  }
  return usage;
}

function chatStream(ctx: ResponseContext): StreamFraming {
  const chunk = (choices: unknown[], usage?: unknown): string => {
    const c: Record<string, unknown> = {
      id: ctx.id,
      object: "chat.completion.chunk",
      created: ctx.created,
      model: ctx.model,
      service_tier: "default",
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
    };
    if (ctx.includeUsage) c.usage = usage ?? null;
    return sseData(c);
  };
  return {
    contentType: SSE_CONTENT_TYPE,
    sse: true,
    closeCarriesUsage: ctx.includeUsage,
    open: () => [
      chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]),
    ],
    token: (_index, piece) => [chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }])],
    close: () => {
      const events = [chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: ctx.plan.finish }])];
      if (ctx.includeUsage) events.push(chunk([], openAiUsage(ctx, true)));
      events.push(SSE_DONE);
      return events;
    },
  };
}

function completionsStream(ctx: ResponseContext): StreamFraming {
  const chunk = (choices: unknown[], usage?: unknown): string => {
    const c: Record<string, unknown> = {
      id: ctx.id,
      object: "text_completion",
      created: ctx.created,
      choices,
      model: ctx.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
    if (ctx.includeUsage) c.usage = usage ?? null;
    return sseData(c);
  };
  return {
    contentType: SSE_CONTENT_TYPE,
    sse: true,
    closeCarriesUsage: ctx.includeUsage,
    open: () => [],
    token: (_index, piece) => [chunk([{ text: piece, index: 0, logprobs: null, finish_reason: null }])],
    close: () => {
      const events = [chunk([{ text: "", index: 0, logprobs: null, finish_reason: ctx.plan.finish }])];
      if (ctx.includeUsage) events.push(chunk([], openAiUsage(ctx, false)));
      events.push(SSE_DONE);
      return events;
    },
  };
}

export function openAiErrorType(status: number): { type: string; code: string | null } {
  if (status === 401) return { type: "invalid_request_error", code: "invalid_api_key" };
  if (status === 403) return { type: "invalid_request_error", code: "unsupported_country_region_territory" };
  if (status === 404) return { type: "invalid_request_error", code: "model_not_found" };
  if (status === 429) return { type: "requests", code: "rate_limit_exceeded" };
  if (status >= 500) return { type: "server_error", code: null };
  return { type: "invalid_request_error", code: null };
}

export function openAiError(message: string, type: string, param: string | null, code: string | null): ErrorResponse {
  return { contentType: JSON_CONTENT_TYPE, body: { error: { message, type, param, code } } };
}

export const openai: Flavor = {
  name: "openai",
  stream: (ctx) => (ctx.api === "completions" ? completionsStream(ctx) : chatStream(ctx)),
  body: (ctx) => {
    if (ctx.api === "completions") {
      return {
        id: ctx.id,
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices: [{ text: ctx.plan.text, index: 0, logprobs: null, finish_reason: ctx.plan.finish }],
        usage: openAiUsage(ctx, false),
        system_fingerprint: SYSTEM_FINGERPRINT,
      };
    }
    return {
      id: ctx.id,
      object: "chat.completion",
      created: ctx.created,
      model: ctx.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: ctx.plan.text, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: ctx.plan.finish,
        },
      ],
      usage: openAiUsage(ctx, true),
      service_tier: "default",
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  },
  error: (status, message) => {
    const { type, code } = openAiErrorType(status);
    return openAiError(message, type, null, code);
  },
};
