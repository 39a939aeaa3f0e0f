/**
 * SGLang's OpenAI-compatible server (pydantic `model_dump_json()`, every field present): chunks carry
 * `"usage":null`, deltas list role/content/reasoning_content/tool_calls (null when unused), choices
 * carry `matched_stop`. After the last token comes a finish chunk with an all-null delta, then with
 * `include_usage` the `"choices":[]` usage chunk, then `data: [DONE]`. `matched_stop` is the stop
 * string, the end-of-sequence token id (EOS_TOKEN_ID) on a natural stop, null on "length".
 */
import type { Flavor, ResponseContext, StreamFraming } from "./types.ts";
import { JSON_CONTENT_TYPE, pythonErrorType, SSE_CONTENT_TYPE, SSE_DONE, sseData } from "./types.ts";

export const EOS_TOKEN_ID = 2;

function matchedStop(ctx: ResponseContext): string | number | null {
  if (ctx.plan.finish === "length") return null;
  return ctx.plan.matchedStop ?? EOS_TOKEN_ID;
}

function usageInfo(ctx: ResponseContext): Record<string, unknown> {
  const completion = ctx.plan.completionTokens;
  return {
    prompt_tokens: ctx.promptTokens,
    total_tokens: ctx.promptTokens + completion,
    completion_tokens: completion,
    prompt_tokens_details: null,
  };
}

function delta(role: string | null, content: string | null): Record<string, unknown> {
  return { role, content, reasoning_content: null, tool_calls: null };
}

function sglangStream(ctx: ResponseContext): StreamFraming {
  const chat = ctx.api !== "completions";
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const chunk = (choices: unknown[], usage: unknown = null): string =>
    sseData({ id: ctx.id, object, created: ctx.created, model: ctx.model, choices, usage });
  const choice = (text: string | null, role: string | null, finish: string | null, matched: string | number | null): Record<string, unknown> =>
    chat
      ? { index: 0, delta: delta(role, text), logprobs: null, finish_reason: finish, matched_stop: matched }
      : { index: 0, text: text ?? "", logprobs: null, finish_reason: finish, matched_stop: matched };
  return {
    contentType: SSE_CONTENT_TYPE,
    sse: true,
    closeCarriesUsage: ctx.includeUsage,
    open: () => (chat ? [chunk([choice("", "assistant", null, null)])] : []),
    token: (_index, piece) => [chunk([choice(piece, null, null, null)])],
    close: () => {
      const events = [chunk([choice(null, null, ctx.plan.finish, matchedStop(ctx))])];
      if (ctx.includeUsage) events.push(chunk([], usageInfo(ctx)));
      events.push(SSE_DONE);
      return events;
    },
  };
}

export const sglang: Flavor = {
  name: "sglang",
  stream: sglangStream,
  body: (ctx) => {
    if (ctx.api === "completions") {
      return {
        id: ctx.id,
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices: [{ index: 0, text: ctx.plan.text, logprobs: null, finish_reason: ctx.plan.finish, matched_stop: matchedStop(ctx) }],
        usage: usageInfo(ctx),
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
          message: { role: "assistant", content: ctx.plan.text === "" ? null : ctx.plan.text, reasoning_content: null, tool_calls: null },
          logprobs: null,
          finish_reason: ctx.plan.finish,
          matched_stop: matchedStop(ctx),
        },
      ],
      usage: usageInfo(ctx),
    };
  },
  error: (status, message) => ({
    contentType: JSON_CONTENT_TYPE,
    body: { object: "error", message, type: pythonErrorType(status), param: null, code: status },
  }),
};
