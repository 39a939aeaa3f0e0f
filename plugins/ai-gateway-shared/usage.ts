/**
 * Token usage, finish reason and generated text read from one decoded JSON object of any
 * supported wire format (shared/reference/llm-stream-formats.md): `usage` (OpenAI, vLLM),
 * `message.usage` (Anthropic), `response.usage` (Responses API), `x_groq.usage`, and Ollama's
 * `prompt_eval_count`/`eval_count`. Streamed counts are cumulative: keep the largest, never sum.
 */
import { asArray, asCount, asObject, asString, type JsonObject } from "./json";

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export function usageFromObject(u: JsonObject): Usage | undefined {
  let prompt = asCount(u.prompt_tokens);
  let completion = asCount(u.completion_tokens);
  const total = asCount(u.total_tokens);
  const input = asCount(u.input_tokens);
  if (prompt === undefined && input !== undefined) {
    // Anthropic reports cached prompt tokens apart from input_tokens.
    prompt = input + (asCount(u.cache_creation_input_tokens) || 0) + (asCount(u.cache_read_input_tokens) || 0);
  }
  if (completion === undefined) completion = asCount(u.output_tokens);
  if (prompt === undefined && completion === undefined && total === undefined) return undefined;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total };
}

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

/** Keeps the largest value per field (streamed counts are cumulative); false when obj carried no usage. */
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

export function usageTotal(u: Usage): number | undefined {
  if (u.total_tokens !== undefined) return u.total_tokens;
  if (u.prompt_tokens === undefined && u.completion_tokens === undefined) return undefined;
  return (u.prompt_tokens || 0) + (u.completion_tokens || 0);
}

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

const FINISH_REASON_OF: { [reason: string]: string } = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

/** In OpenAI's words. */
export function normalizeFinishReason(reason: string): string {
  return FINISH_REASON_OF[reason] || reason;
}

/** OpenAI's `[DONE]` is not JSON: the SSE layer sees it. */
export function isTerminal(obj: unknown): boolean {
  const o = asObject(obj);
  if (o === undefined) return false;
  if (o.done === true) return true;
  const t = o.type;
  return t === "message_stop" || t === "response.completed" || t === "response.incomplete" || t === "response.failed";
}

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

/** Content, reasoning and tool-call arguments of any supported format. */
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
