/**
 * Anthropic Messages streaming: named events message_start (input_tokens, a starting output_tokens of 1),
 * content_block_start, ping, one content_block_delta per token, content_block_stop, message_delta
 * (cumulative output_tokens and stop_reason), message_stop. The mock's cache options add
 * cache_creation_input_tokens / cache_read_input_tokens next to input_tokens, as the API reports them.
 */
import type { Flavor, ResponseContext, StreamFraming } from "./types.ts";
import { JSON_CONTENT_TYPE, SSE_CONTENT_TYPE, sseEvent } from "./types.ts";

export function anthropicStopReason(ctx: ResponseContext): string {
  if (ctx.plan.finish === "length") return "max_tokens";
  return ctx.plan.matchedStop !== null ? "stop_sequence" : "end_turn";
}

function inputUsage(ctx: ResponseContext): Record<string, number> {
  const usage: Record<string, number> = { input_tokens: ctx.promptTokens };
  if (ctx.cacheCreationInputTokens !== undefined) usage.cache_creation_input_tokens = ctx.cacheCreationInputTokens;
  if (ctx.cacheReadInputTokens !== undefined) usage.cache_read_input_tokens = ctx.cacheReadInputTokens;
  return usage;
}

function anthropicStream(ctx: ResponseContext): StreamFraming {
  return {
    contentType: SSE_CONTENT_TYPE,
    sse: true,
    closeCarriesUsage: true,
    open: () => [
      sseEvent("message_start", {
        type: "message_start",
        message: {
          id: ctx.id,
          type: "message",
          role: "assistant",
          model: ctx.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...inputUsage(ctx), output_tokens: 1 },
        },
      }),
      sseEvent("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
      // Anthropic's ping payload has a space after the colon, unlike its other events.
      'event: ping\ndata: {"type": "ping"}\n\n',
    ],
    token: (_index, piece) => [
      sseEvent("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece } }),
    ],
    close: () => [
      sseEvent("content_block_stop", { type: "content_block_stop", index: 0 }),
      sseEvent("message_delta", {
        type: "message_delta",
        delta: { stop_reason: anthropicStopReason(ctx), stop_sequence: ctx.plan.matchedStop },
        usage: { output_tokens: ctx.plan.completionTokens },
      }),
      sseEvent("message_stop", { type: "message_stop" }),
    ],
  };
}

export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

export function anthropicErrorBody(type: string, message: string): unknown {
  return { type: "error", error: { type, message } };
}

export const anthropic: Flavor = {
  name: "anthropic",
  stream: anthropicStream,
  body: (ctx) => ({
    id: ctx.id,
    type: "message",
    role: "assistant",
    model: ctx.model,
    content: [{ type: "text", text: ctx.plan.text }],
    stop_reason: anthropicStopReason(ctx),
    stop_sequence: ctx.plan.matchedStop,
    usage: { ...inputUsage(ctx), output_tokens: ctx.plan.completionTokens },
  }),
  error: (status, message) => ({ contentType: JSON_CONTENT_TYPE, body: anthropicErrorBody(anthropicErrorType(status), message) }),
};
