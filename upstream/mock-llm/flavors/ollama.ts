/**
 * Ollama's native chat API: newline-delimited JSON (application/x-ndjson), one object per token with
 * `"done":false`, then a last object with `"done":true`, done_reason, prompt_eval_count (prompt tokens)
 * and eval_count (completion tokens). Durations are derived from the token counts, not measured, so
 * that a recorded stream is reproducible.
 */
import type { Flavor, ResponseContext, StreamFraming } from "./types.ts";

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

const NS_PER_PROMPT_TOKEN = 1_000_000;
const NS_PER_COMPLETION_TOKEN = 20_000_000;
const LOAD_NS = 5_000_000;

function createdAt(ctx: ResponseContext): string {
  return new Date(ctx.created * 1000).toISOString();
}

function doneFields(ctx: ResponseContext): Record<string, unknown> {
  const promptNs = ctx.promptTokens * NS_PER_PROMPT_TOKEN;
  const evalNs = ctx.plan.completionTokens * NS_PER_COMPLETION_TOKEN;
  return {
    done_reason: ctx.plan.finish,
    done: true,
    total_duration: LOAD_NS + promptNs + evalNs,
    load_duration: LOAD_NS,
    prompt_eval_count: ctx.promptTokens,
    prompt_eval_duration: promptNs,
    eval_count: ctx.plan.completionTokens,
    eval_duration: evalNs,
  };
}

const line = (value: unknown): string => JSON.stringify(value) + "\n";

function ollamaStream(ctx: ResponseContext): StreamFraming {
  return {
    contentType: NDJSON_CONTENT_TYPE,
    sse: false,
    closeCarriesUsage: true,
    open: () => [],
    token: (_index, piece) => [
      line({ model: ctx.model, created_at: createdAt(ctx), message: { role: "assistant", content: piece }, done: false }),
    ],
    close: () => [line({ model: ctx.model, created_at: createdAt(ctx), message: { role: "assistant", content: "" }, ...doneFields(ctx) })],
  };
}

export const ollama: Flavor = {
  name: "ollama",
  stream: ollamaStream,
  body: (ctx) => ({ model: ctx.model, created_at: createdAt(ctx), message: { role: "assistant", content: ctx.plan.text }, ...doneFields(ctx) }),
  error: (_status, message) => ({ contentType: "application/json; charset=utf-8", body: { error: message } }),
};
