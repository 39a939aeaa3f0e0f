/**
 * Token usage, finish reason and generated text read from one decoded JSON object of any
 * supported wire format (see shared/reference/llm-stream-formats.md):
 *
 * - OpenAI, vLLM, SGLang (chat completions, completions, embeddings): top-level `usage`
 *   `{prompt_tokens, completion_tokens, total_tokens}`; `usage: null` carries nothing. vLLM's
 *   continuous_usage_stats repeats a cumulative `usage` in every chunk.
 * - Anthropic Messages: `message_start.message.usage` (prompt = input_tokens +
 *   cache_creation_input_tokens + cache_read_input_tokens), `message_delta.usage.output_tokens`
 *   (cumulative), and `usage: {input_tokens, output_tokens}` in a non-stream body.
 * - OpenAI Responses API: `response.usage` of `response.completed` (input/output/total_tokens).
 * - Ollama native: `prompt_eval_count` and `eval_count` on the `done: true` object or body.
 * - Groq: `x_groq.usage` on the last chunk.
 *
 * Counts in a stream are cumulative, so an accumulator keeps the largest value seen per field
 * (for a well-formed stream: the last one), never the sum.
 */
import { asArray, asCount, asObject, asString, type JsonObject } from "./json";

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

/** Reads a `usage` object of the OpenAI or Anthropic shape. */
export function usageFromObject(u: JsonObject): Usage | undefined {
  let prompt = asCount(u.prompt_tokens);
  let completion = asCount(u.completion_tokens);
  const total = asCount(u.total_tokens);
  const input = asCount(u.input_tokens);
  if (prompt === undefined && input !== undefined) {
    // Anthropic reports cached prompt tokens apart from input_tokens; they are prompt tokens too.
    prompt = input + (asCount(u.cache_creation_input_tokens) || 0) + (asCount(u.cache_read_input_tokens) || 0);
  }
  if (completion === undefined) completion = asCount(u.output_tokens);
  if (prompt === undefined && completion === undefined && total === undefined) return undefined;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total };
}

/** The usage object carried by a decoded event or body, if any. */
function usageTable(obj: JsonObject): JsonObject | undefined {
  const u = asObject(obj.usage);
  if (u !== undefined) return u;
  const message = asObject(obj.message);
  if (message !== undefined) {
    const mu = asObject(message.usage);
    if (mu !== undefined) return mu;
  }
  const response = asObject(obj.response);
  if (response !== undefined) {
    const ru = asObject(response.usage);
    if (ru !== undefined) return ru;
  }
  const groq = asObject(obj.x_groq);
  if (groq !== undefined) return asObject(groq.usage);
  return undefined;
}

/** Usage reported by one decoded object of any supported format, or undefined. */
export function extractUsage(obj: unknown): Usage | undefined {
  const o = asObject(obj);
  if (o === undefined) return undefined;
  const u = usageTable(o);
  if (u !== undefined) {
    const usage = usageFromObject(u);
    if (usage !== undefined) return usage;
  }
  const prompt = asCount(o.prompt_eval_count);
  const completion = asCount(o.eval_count);
  if (prompt === undefined && completion === undefined) return undefined;
  return { prompt_tokens: prompt, completion_tokens: completion };
}

/**
 * Merges usage into an accumulator: per field the largest value seen, because streamed counts
 * are cumulative (vLLM continuous_usage_stats, Anthropic message_delta). Returns true when the
 * object carried usage.
 */
export function mergeUsage(into: Usage, obj: unknown): boolean {
  const u = extractUsage(obj);
  if (u === undefined) return false;
  if (u.prompt_tokens !== undefined && (into.prompt_tokens === undefined || u.prompt_tokens > into.prompt_tokens)) {
    into.prompt_tokens = u.prompt_tokens;
  }
  if (u.completion_tokens !== undefined && (into.completion_tokens === undefined || u.completion_tokens > into.completion_tokens)) {
    into.completion_tokens = u.completion_tokens;
  }
  if (u.total_tokens !== undefined && (into.total_tokens === undefined || u.total_tokens > into.total_tokens)) {
    into.total_tokens = u.total_tokens;
  }
  return true;
}

/** Total of an accumulated usage: the reported total, else prompt + completion. */
export function usageTotal(u: Usage): number | undefined {
  if (u.total_tokens !== undefined) return u.total_tokens;
  if (u.prompt_tokens === undefined && u.completion_tokens === undefined) return undefined;
  return (u.prompt_tokens || 0) + (u.completion_tokens || 0);
}

/**
 * The finish reason an object reports: `choices[].finish_reason` (OpenAI style), the
 * `delta.stop_reason` of Anthropic's message_delta, `stop_reason` of an Anthropic body,
 * Ollama's `done_reason`, or the `incomplete_details.reason` / status of a Responses API event.
 */
export function extractFinishReason(obj: unknown): string | undefined {
  const o = asObject(obj);
  if (o === undefined) return undefined;
  const list = asArray(o.choices);
  if (list !== undefined) {
    let found: string | undefined;
    for (let i = 0; i < list.length; i++) {
      const c = asObject(list[i]);
      const r = c && asString(c.finish_reason);
      if (r !== undefined) found = r;
    }
    if (found !== undefined) return found;
  }
  const delta = asObject(o.delta);
  const dr = delta && asString(delta.stop_reason);
  if (dr !== undefined) return dr;
  const sr = asString(o.stop_reason);
  if (sr !== undefined) return sr;
  const done = asString(o.done_reason);
  if (done !== undefined) return done;
  const response = asObject(o.response);
  if (response !== undefined && o.type !== undefined) {
    const details = asObject(response.incomplete_details);
    const reason = details && asString(details.reason);
    if (reason !== undefined) return reason;
    if (o.type === "response.completed") return "stop";
  }
  return undefined;
}

/** Anthropic stop reasons in OpenAI's finish_reason words; others pass unchanged. */
const FINISH_REASON_OF: { [reason: string]: string } = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

/** A finish or stop reason in OpenAI's words (stop, length, tool_calls, content_filter, ...). */
export function normalizeFinishReason(reason: string): string {
  return FINISH_REASON_OF[reason] || reason;
}

/**
 * True when the object is a stream's (or body's) terminator: Anthropic `message_stop`,
 * Ollama `done: true`, a Responses API `response.completed` / `response.incomplete` /
 * `response.failed`. OpenAI's `[DONE]` is not JSON: the SSE layer sees it.
 */
export function isTerminal(obj: unknown): boolean {
  const o = asObject(obj);
  if (o === undefined) return false;
  if (o.done === true) return true;
  const t = o.type;
  return t === "message_stop" || t === "response.completed" || t === "response.incomplete" || t === "response.failed";
}

/** True when the object is an error report (`{"error": {...}}`, Anthropic `type: error`, vLLM `object: error`). */
export function isError(obj: unknown): boolean {
  const o = asObject(obj);
  if (o === undefined) return false;
  return asObject(o.error) !== undefined || asString(o.error) !== undefined || o.type === "error" || o.object === "error";
}

function stringBytes(v: unknown): number {
  return typeof v === "string" ? v.length : 0;
}

function toolCallsBytes(v: unknown): number {
  const calls = asArray(v);
  if (calls === undefined) return 0;
  let n = 0;
  for (let i = 0; i < calls.length; i++) {
    const call = asObject(calls[i]);
    const fn = call && asObject(call.function);
    if (fn !== undefined) n += stringBytes(fn.arguments);
  }
  return n;
}

function messageBytes(m: JsonObject): number {
  return stringBytes(m.content) + stringBytes(m.reasoning_content) + stringBytes(m.reasoning) + stringBytes(m.thinking) + toolCallsBytes(m.tool_calls);
}

/**
 * Bytes of generated text in one decoded object: an OpenAI chunk's `delta` or a body's
 * `message` (content, reasoning, tool-call arguments) and legacy `text`; Anthropic's
 * `content_block_delta` (text, partial_json, thinking) and a body's `content[]` blocks;
 * Ollama's `message` / `response`; a Responses API `*.delta` string.
 */
export function textBytes(obj: unknown): number {
  const o = asObject(obj);
  if (o === undefined) return 0;
  let n = 0;
  const choices = asArray(o.choices);
  if (choices !== undefined) {
    for (let i = 0; i < choices.length; i++) {
      const c = asObject(choices[i]);
      if (c === undefined) continue;
      const delta = asObject(c.delta);
      if (delta !== undefined) n += messageBytes(delta);
      const message = asObject(c.message);
      if (message !== undefined) n += messageBytes(message);
      n += stringBytes(c.text);
    }
    return n;
  }
  const delta = o.delta;
  if (typeof delta === "string") return stringBytes(delta); // Responses API *.delta events
  const d = asObject(delta);
  if (d !== undefined) return stringBytes(d.text) + stringBytes(d.partial_json) + stringBytes(d.thinking);
  const content = asArray(o.content);
  if (content !== undefined) {
    for (let i = 0; i < content.length; i++) {
      const block = asObject(content[i]);
      if (block !== undefined) n += stringBytes(block.text) + stringBytes(block.thinking);
    }
  }
  const message = asObject(o.message);
  if (message !== undefined) n += messageBytes(message);
  n += stringBytes(o.response);
  return n;
}
