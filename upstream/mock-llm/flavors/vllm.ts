/**
 * vLLM's OpenAI-compatible server (pydantic `model_dump_json(exclude_unset=True)`): chunks have no
 * `usage` key unless usage was asked for. The first chunk has the role and `"content":""`; the chunk
 * that finishes carries `finish_reason` and `stop_reason` (the last token when max_tokens cut the text,
 * else an empty-content chunk for the end-of-sequence). `include_usage` adds the `"choices":[]` usage
 * chunk; `continuous_usage_stats` (honoured only together with include_usage, as vLLM does) puts the
 * cumulative usage in every chunk. vLLM's usage field order is prompt, total, completion.
 */
import type { Flavor, ResponseContext, StreamFraming } from "./types.ts";
import { isLastPiece, JSON_CONTENT_TYPE, pythonErrorType, SSE_CONTENT_TYPE, SSE_DONE, sseData } from "./types.ts";

function usageInfo(prompt: number, completion: number): Record<string, number> {
  return { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion };
}

function vllmStream(ctx: ResponseContext): StreamFraming {
  const chat = ctx.api !== "completions";
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const continuous = ctx.includeUsage && ctx.continuousUsage;
  const chunk = (choice: Record<string, unknown>, completionSoFar: number): string => {
    const c: Record<string, unknown> = { id: ctx.id, object, created: ctx.created, model: ctx.model, choices: [choice] };
    if (continuous) c.usage = usageInfo(ctx.promptTokens, completionSoFar);
    return sseData(c);
  };
  const textChoice = (text: string, finish: string | null, last: boolean): Record<string, unknown> => {
    const choice: Record<string, unknown> = chat
      ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: finish }
      : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null };
    if (last) choice.stop_reason = ctx.plan.matchedStop;
    return choice;
  };
  const total = ctx.plan.completionTokens;
  return {
    contentType: SSE_CONTENT_TYPE,
    sse: true,
    closeCarriesUsage: ctx.includeUsage,
    open: () =>
      chat ? [chunk({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }, 0)] : [],
    token: (index, piece, tokensSoFar) => {
      const finishesHere = ctx.plan.finish === "length" && isLastPiece(ctx, index);
      return [chunk(textChoice(piece, finishesHere ? "length" : null, finishesHere), tokensSoFar)];
    },
    close: () => {
      const events: string[] = [];
      if (ctx.plan.finish !== "length" || ctx.plan.pieces.length === 0) {
        events.push(chunk(textChoice("", ctx.plan.finish, true), total));
      }
      if (ctx.includeUsage) {
        events.push(sseData({ id: ctx.id, object, created: ctx.created, model: ctx.model, choices: [], usage: usageInfo(ctx.promptTokens, total) }));
      }
      events.push(SSE_DONE);
      return events;
    },
  };
}

const VLLM_ERROR_TYPES: Readonly<Record<number, string>> = { 401: "UnauthorizedError" };

export const vllm: Flavor = {
  name: "vllm",
  stream: vllmStream,
  body: (ctx) => {
    const usage = { ...usageInfo(ctx.promptTokens, ctx.plan.completionTokens), prompt_tokens_details: null };
    if (ctx.api === "completions") {
      return {
        id: ctx.id,
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices: [
          { index: 0, text: ctx.plan.text, logprobs: null, finish_reason: ctx.plan.finish, stop_reason: ctx.plan.matchedStop, prompt_logprobs: null },
        ],
        usage,
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
          message: { role: "assistant", reasoning_content: null, content: ctx.plan.text, tool_calls: [] },
          logprobs: null,
          finish_reason: ctx.plan.finish,
          stop_reason: ctx.plan.matchedStop,
        },
      ],
      usage,
      prompt_logprobs: null,
    };
  },
  error: (status, message) => ({
    contentType: JSON_CONTENT_TYPE,
    body: { error: { message, type: pythonErrorType(status, VLLM_ERROR_TYPES), param: null, code: status } },
  }),
};
