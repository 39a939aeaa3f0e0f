/**
 * Each flavor's stream framing, non-streamed body and usage, pinned against examples documented by the
 * real servers (OpenAI and Anthropic API references, Ollama's api.md, the vLLM and SGLang pydantic
 * models), parsed with eventsource-parser, an SSE parser independent of the mock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countAnthropicPromptTokens, countChatPromptTokens, countCompletionPromptTokens, countTokens } from "./tokenizer.ts";
import type { MockLlmServer } from "./server.ts";
import { startMockLlmServer } from "./server.ts";
import { parseSse, summariseAnthropicStream, summariseOllamaStream, summariseOpenAiStream } from "./testing.ts";

type Json = Record<string, unknown>;

/** Documented examples, verbatim in shape (values differ). */
const DOC = {
  openaiChunk: '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}',
  openaiUsageChunk: '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}',
  openaiChat: '{"id":"chatcmpl-123","object":"chat.completion","created":1677652288,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"message":{"role":"assistant","content":"\\n\\nHello there, how may I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"completion_tokens_details":{"reasoning_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}',
  openaiCompletionChunk: '{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb"}',
  openaiCompletion: '{"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\\n\\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}',
  anthropicStream: [
    'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}',
    'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}',
    'event: ping\ndata: {"type": "ping"}',
    'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}',
    'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}',
    'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 0}',
    'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}',
    'event: message_stop\ndata: {"type": "message_stop"}',
  ].join("\n\n") + "\n\n",
  anthropicMessage: '{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503}}',
  ollamaLine: '{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"The"},"done":false}',
  ollamaLast: '{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},"done":true,"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}',
  ollamaChat: '{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello! How are you today?"},"done":true,"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}',
};

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Every key path of `documented` exists in `actual` with the same JSON type (arrays: their first
 * elements compared; an empty documented array wants an empty one). With `exact`, no extra keys either.
 */
function expectShape(actual: unknown, documented: unknown, exact = false, path = "$"): void {
  expect(kind(actual), path).toBe(kind(documented));
  if (Array.isArray(documented) && Array.isArray(actual)) {
    if (documented.length === 0) expect(actual, path).toEqual([]);
    else {
      expect(actual.length, path).toBeGreaterThan(0);
      expectShape(actual[0], documented[0], exact, `${path}[0]`);
    }
  } else if (kind(documented) === "object") {
    const a = actual as Json;
    const d = documented as Json;
    if (exact) expect(Object.keys(a).sort(), path).toEqual(Object.keys(d).sort());
    for (const key of Object.keys(d)) {
      expect(a, `${path} lacks ${key}`).toHaveProperty([key]);
      expectShape(a[key], d[key], exact, `${path}.${key}`);
    }
  }
}

let server: MockLlmServer;

beforeAll(async () => {
  server = await startMockLlmServer({ port: 0 });
});
afterAll(async () => {
  await server?.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(server.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-mock-created": "1700000000", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const USER = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Tell me about tokens, please." },
];
const PROMPT_TOKENS = countChatPromptTokens(USER);

/** SSE framing of OpenAI-style servers: only `data: <json>` lines, each event ended by one blank line. */
function expectDataOnlyFraming(text: string): string[] {
  expect(text).toMatch(/^(data: [^\n]+\n\n)+$/);
  expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  return text.split("\n\n").slice(0, -1).map((block) => block.slice("data: ".length));
}

describe("openai flavor", () => {
  it("streams chat chunks with usage:null and a final usage chunk when include_usage is set", async () => {
    const res = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages: USER, max_tokens: 6, stream: true, stream_options: { include_usage: true } }, { "x-mock-flavor": "openai" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const datas = expectDataOnlyFraming(res.text);
    const events = parseSse(res.text, 7).events;
    expect(events.map((e) => e.data)).toEqual(datas);
    expect(events.every((e) => e.event === undefined)).toBe(true);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    expect(chunks).toHaveLength(1 + 6 + 1 + 1); // role, 6 tokens, finish, usage

    expectShape(chunks[0], JSON.parse(DOC.openaiChunk));
    expect(chunks[0]).toMatchObject({ object: "chat.completion.chunk", created: 1700000000, model: "gpt-4o-mini", usage: null });
    expect((chunks[0].choices as Json[])[0]).toEqual({ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null });
    expect(chunks[0].id).toMatch(/^chatcmpl-[0-9a-f]{29}$/);
    for (const chunk of chunks) expect(chunk.id).toBe(chunks[0].id);
    for (const chunk of chunks.slice(1, 7)) {
      expect(chunk.usage).toBeNull();
      const choice = (chunk.choices as Json[])[0];
      expect(Object.keys(choice.delta as Json)).toEqual(["content"]);
      expect(countTokens((choice.delta as Json).content as string)).toBe(1);
      expect(choice.finish_reason).toBeNull();
    }
    expect((chunks[7].choices as Json[])[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "length" });
    expectShape(chunks[8], JSON.parse(DOC.openaiUsageChunk));
    expect(chunks[8].choices).toEqual([]);
    expect(chunks[8].usage).toEqual({
      prompt_tokens: PROMPT_TOKENS,
      completion_tokens: 6,
      total_tokens: PROMPT_TOKENS + 6,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
  });

  it("sends no usage key at all without include_usage", async () => {
    const res = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages: USER, stream: true }, { "x-mock-flavor": "openai" });
    const summary = summariseOpenAiStream(parseSse(res.text).events);
    const chunks = parseSse(res.text).events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    for (const chunk of chunks) expect(chunk).not.toHaveProperty("usage");
    expect(summary).toMatchObject({ finish_reason: "stop", terminator: "[DONE]", completion_tokens: null });
    expect(countTokens(summary.text)).toBeGreaterThanOrEqual(16);
  });

  it("answers a non-streamed chat request with the documented body and usage", async () => {
    const res = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages: USER, max_completion_tokens: 9 }, { "x-mock-flavor": "openai" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(res.text));
    const body = JSON.parse(res.text) as Json;
    expectShape(body, JSON.parse(DOC.openaiChat));
    const choice = (body.choices as Json[])[0];
    expect(choice.finish_reason).toBe("length");
    expect(countTokens((choice.message as Json).content as string)).toBe(9);
    expect(body.usage).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: 9, total_tokens: PROMPT_TOKENS + 9 });
  });

  it("streams and answers legacy completions as text_completion objects", async () => {
    const prompt = "Once upon a time";
    const stream = await post("/v1/completions", { model: "gpt-3.5-turbo-instruct", prompt, max_tokens: 4, stream: true, stream_options: { include_usage: true } }, { "x-mock-flavor": "openai" });
    expectDataOnlyFraming(stream.text);
    const chunks = parseSse(stream.text).events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    expectShape(chunks[0], { ...JSON.parse(DOC.openaiCompletionChunk), usage: null });
    expect(chunks[0].id).toMatch(/^cmpl-/);
    const summary = summariseOpenAiStream(parseSse(stream.text).events);
    expect(summary).toMatchObject({ prompt_tokens: countCompletionPromptTokens(prompt), completion_tokens: 4, finish_reason: "length" });

    const plain = await post("/v1/completions", { model: "gpt-3.5-turbo-instruct", prompt, max_tokens: 4 }, { "x-mock-flavor": "openai" });
    const body = JSON.parse(plain.text) as Json;
    expectShape(body, JSON.parse(DOC.openaiCompletion));
    expect((body.choices as Json[])[0].text).toBe(summary.text);
    expect(body.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
  });
});

describe("vllm flavor", () => {
  const vllmChunkKeys = ["choices", "created", "id", "model", "object"];

  it("has no usage key without usage requested, and finishes in the last token's chunk on length", async () => {
    const res = await post("/v1/chat/completions", { model: "llama", messages: USER, max_tokens: 3, stream: true }, { "x-mock-flavor": "vllm" });
    expectDataOnlyFraming(res.text);
    const chunks = parseSse(res.text).events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    expect(chunks).toHaveLength(4);
    for (const chunk of chunks) expect(Object.keys(chunk).sort()).toEqual(vllmChunkKeys);
    expect(chunks[0].id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect((chunks[0].choices as Json[])[0]).toEqual({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null });
    expect(Object.keys((chunks[1].choices as Json[])[0]).sort()).toEqual(["delta", "finish_reason", "index", "logprobs"]);
    expect((chunks[3].choices as Json[])[0]).toMatchObject({ finish_reason: "length", stop_reason: null });
    expect(countTokens(((chunks[3].choices as Json[])[0].delta as Json).content as string)).toBe(1);
  });

  it("adds a usage chunk (prompt, total, completion order) with include_usage, and ends a natural stop with an empty delta", async () => {
    const res = await post("/v1/chat/completions", { model: "llama", messages: USER, stream: true, stream_options: { include_usage: true } }, { "x-mock-flavor": "vllm" });
    const events = parseSse(res.text).events;
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    for (const chunk of chunks.slice(0, -1)) expect(chunk).not.toHaveProperty("usage");
    const finish = (chunks[chunks.length - 2].choices as Json[])[0];
    expect(finish).toEqual({ index: 0, delta: { content: "" }, logprobs: null, finish_reason: "stop", stop_reason: null });
    const last = chunks[chunks.length - 1];
    expect(Object.keys(last)).toEqual(["id", "object", "created", "model", "choices", "usage"]);
    expect(last.choices).toEqual([]);
    expect(Object.keys(last.usage as Json)).toEqual(["prompt_tokens", "total_tokens", "completion_tokens"]);
    const summary = summariseOpenAiStream(events);
    expect(summary.completion_tokens).toBe(countTokens(summary.text));
    expect(summary.prompt_tokens).toBe(PROMPT_TOKENS);
    expect(summary.total_tokens).toBe(PROMPT_TOKENS + countTokens(summary.text));
  });

  it("puts cumulative usage in every chunk with continuous_usage_stats (with include_usage, as vLLM requires)", async () => {
    const res = await post(
      "/v1/chat/completions",
      { model: "llama", messages: USER, max_tokens: 5, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } },
      { "x-mock-flavor": "vllm" },
    );
    const chunks = parseSse(res.text).events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    const completions = chunks.map((c) => (c.usage as Json).completion_tokens);
    expect(completions).toEqual([0, 1, 2, 3, 4, 5, 5]);
    for (const chunk of chunks) expect((chunk.usage as Json).prompt_tokens).toBe(PROMPT_TOKENS);
    const summed = completions.reduce((a, b) => (a as number) + (b as number), 0);
    expect(summed).not.toBe(5); // the trap the reference warns about: take the last, never the sum

    const withoutIncludeUsage = await post(
      "/v1/chat/completions",
      { model: "llama", messages: USER, max_tokens: 2, stream: true, stream_options: { continuous_usage_stats: true } },
      { "x-mock-flavor": "vllm" },
    );
    for (const e of parseSse(withoutIncludeUsage.text).events.slice(0, -1)) expect(JSON.parse(e.data)).not.toHaveProperty("usage");
  });

  it("reports the matched stop string as stop_reason and answers non-streamed requests", async () => {
    const probe = JSON.parse((await post("/v1/chat/completions", { model: "llama", messages: USER, max_tokens: 10 }, { "x-mock-flavor": "vllm" })).text) as Json;
    const text = ((probe.choices as Json[])[0].message as Json).content as string;
    const stop = " " + text.split(" ")[3];
    const res = await post("/v1/chat/completions", { model: "llama", messages: USER, max_tokens: 10, stop }, { "x-mock-flavor": "vllm" });
    const body = JSON.parse(res.text) as Json;
    expect(Object.keys(body).sort()).toEqual(["choices", "created", "id", "model", "object", "prompt_logprobs", "usage"]);
    const choice = (body.choices as Json[])[0];
    expect(choice).toMatchObject({ finish_reason: "stop", stop_reason: stop, message: { role: "assistant", content: text.slice(0, text.indexOf(stop)) } });
    expect(body.usage).toEqual({ prompt_tokens: PROMPT_TOKENS, total_tokens: PROMPT_TOKENS + countTokens(text.slice(0, text.indexOf(stop))), completion_tokens: countTokens(text.slice(0, text.indexOf(stop))), prompt_tokens_details: null });
  });
});

describe("sglang flavor", () => {
  it("carries usage:null and every pydantic field until the choices:[] usage chunk", async () => {
    const res = await post("/v1/chat/completions", { model: "qwen", messages: USER, max_tokens: 4, stream: true, stream_options: { include_usage: true } }, { "x-mock-flavor": "sglang" });
    expectDataOnlyFraming(res.text);
    const events = parseSse(res.text).events;
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Json);
    expect(chunks).toHaveLength(1 + 4 + 1 + 1);
    for (const chunk of chunks) expect(Object.keys(chunk)).toEqual(["id", "object", "created", "model", "choices", "usage"]);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.usage).toBeNull();
      const choice = (chunk.choices as Json[])[0];
      expect(Object.keys(choice)).toEqual(["index", "delta", "logprobs", "finish_reason", "matched_stop"]);
      expect(Object.keys(choice.delta as Json)).toEqual(["role", "content", "reasoning_content", "tool_calls"]);
    }
    expect((chunks[0].choices as Json[])[0].delta).toEqual({ role: "assistant", content: "", reasoning_content: null, tool_calls: null });
    expect((chunks[5].choices as Json[])[0]).toEqual({
      index: 0,
      delta: { role: null, content: null, reasoning_content: null, tool_calls: null },
      logprobs: null,
      finish_reason: "length",
      matched_stop: null,
    });
    expect(chunks[6].choices).toEqual([]);
    expect(chunks[6].usage).toEqual({ prompt_tokens: PROMPT_TOKENS, total_tokens: PROMPT_TOKENS + 4, completion_tokens: 4, prompt_tokens_details: null });
    expect(summariseOpenAiStream(events)).toMatchObject({ completion_tokens: 4, finish_reason: "length", terminator: "[DONE]" });
  });

  it("answers non-streamed requests with matched_stop and its usage", async () => {
    const body = JSON.parse((await post("/v1/chat/completions", { model: "qwen", messages: USER }, { "x-mock-flavor": "sglang" })).text) as Json;
    expect(Object.keys(body)).toEqual(["id", "object", "created", "model", "choices", "usage"]);
    const choice = (body.choices as Json[])[0];
    expect(choice).toMatchObject({ finish_reason: "stop", matched_stop: 2 });
    const text = (choice.message as Json).content as string;
    expect(body.usage).toEqual({ prompt_tokens: PROMPT_TOKENS, total_tokens: PROMPT_TOKENS + countTokens(text), completion_tokens: countTokens(text), prompt_tokens_details: null });
  });
});

describe("anthropic flavor", () => {
  const request = { model: "claude-3-5-haiku-latest", max_tokens: 256, system: "Be kind.", messages: [{ role: "user", content: "Hello there" }] };
  const promptTokens = countAnthropicPromptTokens(request.system, request.messages);

  it("streams the documented event sequence with input and cumulative output tokens", async () => {
    const res = await post("/v1/messages", { ...request, stream: true }, { "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.text).toMatch(/^(event: [a-z_]+\ndata: [^\n]+\n\n)+$/);
    const events = parseSse(res.text, 5).events;
    const documented = parseSse(DOC.anthropicStream).events;
    const names = events.map((e) => e.event);
    const tokens = names.filter((n) => n === "content_block_delta").length;
    expect(names).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      ...Array<string>(tokens).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    // Same shapes as the documented stream, event by event (the documented one has two deltas).
    const byName = new Map(documented.map((e) => [e.event, JSON.parse(e.data) as unknown]));
    for (const event of events) expectShape(JSON.parse(event.data), byName.get(event.event), true);
    expect(res.text).toContain('event: ping\ndata: {"type": "ping"}\n\n');
    const summary = summariseAnthropicStream(events);
    expect(summary.prompt_tokens).toBe(promptTokens);
    expect(summary.completion_tokens).toBe(countTokens(summary.text));
    expect(summary.completion_tokens).toBe(tokens);
    expect(summary.finish_reason).toBe("end_turn");
    expect(summary.usages[0]).toEqual({ input_tokens: promptTokens, output_tokens: 1 });
  });

  it("reports max_tokens, stop_sequence and cache tokens", async () => {
    const capped = summariseAnthropicStream(parseSse((await post("/v1/messages", { ...request, max_tokens: 3, stream: true })).text).events);
    expect(capped).toMatchObject({ finish_reason: "max_tokens", completion_tokens: 3 });

    const full = JSON.parse((await post("/v1/messages", request)).text) as Json;
    const text = ((full.content as Json[])[0] as Json).text as string;
    const stop = text.split(" ")[4];
    const stopped = JSON.parse((await post("/v1/messages", { ...request, stop_sequences: [stop] })).text) as Json;
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: stop, content: [{ type: "text", text: text.slice(0, text.indexOf(stop)) }] });

    const cached = await post("/v1/messages", { ...request, stream: true }, { "x-mock-cache-read-input-tokens": "50", "x-mock-cache-creation-input-tokens": "7" });
    const start = JSON.parse(parseSse(cached.text).events[0].data) as { message: { usage: Json } };
    expect(start.message.usage).toEqual({ input_tokens: promptTokens, cache_creation_input_tokens: 7, cache_read_input_tokens: 50, output_tokens: 1 });
    expect(summariseAnthropicStream(parseSse(cached.text).events).prompt_tokens).toBe(promptTokens + 57);
  });

  it("answers non-streamed requests with the documented message body", async () => {
    const res = await post("/v1/messages", request);
    const body = JSON.parse(res.text) as Json;
    expectShape(body, JSON.parse(DOC.anthropicMessage), true);
    expect(body.id).toMatch(/^msg_01/);
    expect(body).toMatchObject({ type: "message", role: "assistant", model: request.model, stop_reason: "end_turn", stop_sequence: null });
    const text = ((body.content as Json[])[0] as Json).text as string;
    expect(body.usage).toEqual({ input_tokens: promptTokens, output_tokens: countTokens(text) });
  });

  it("frames /v1/chat/completions as Anthropic when the flavor says so", async () => {
    const res = await post("/v1/chat/completions", { model: "claude", messages: USER, max_tokens: 4, stream: true }, { "x-mock-flavor": "anthropic" });
    const summary = summariseAnthropicStream(parseSse(res.text).events);
    expect(summary).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: 4, terminator: "message_stop" });
    const ollama = await post("/v1/chat/completions", { model: "llama", messages: USER, max_tokens: 4, stream: true }, { "x-mock-flavor": "ollama" });
    expect(ollama.headers.get("content-type")).toBe("application/x-ndjson");
    expect(summariseOllamaStream(ollama.text)).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: 4, terminator: "done" });
  });
});

describe("ollama /api/chat", () => {
  const request = { model: "llama3.2", messages: [{ role: "user", content: "Why is the sky blue?" }] };
  const promptTokens = countChatPromptTokens(request.messages);

  it("streams NDJSON by default, the last line done:true with prompt_eval_count and eval_count", async () => {
    const res = await post("/api/chat", request);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.text).toMatch(/^(\{[^\n]+\}\n)+$/);
    const summary = summariseOllamaStream(res.text);
    const lines = summary.lines;
    for (const line of lines.slice(0, -1)) expectShape(line, JSON.parse(DOC.ollamaLine), true);
    const { done_reason: doneReason, ...last } = lines[lines.length - 1];
    expect(doneReason).toBe("stop");
    expectShape(last, JSON.parse(DOC.ollamaLast), true);
    expect(summary.prompt_tokens).toBe(promptTokens);
    expect(summary.completion_tokens).toBe(countTokens(summary.text));
    expect(summary.completion_tokens).toBe(lines.length - 1);
  });

  it("answers stream:false with one object, and honours num_predict with done_reason length", async () => {
    const res = await post("/api/chat", { ...request, stream: false, options: { num_predict: 5 } });
    const body = JSON.parse(res.text) as Json;
    const { done_reason: doneReason, ...rest } = body;
    expect(doneReason).toBe("length");
    expectShape(rest, JSON.parse(DOC.ollamaChat), true);
    expect(body).toMatchObject({ done: true, prompt_eval_count: promptTokens, eval_count: 5 });
  });
});

describe("other endpoints", () => {
  it("lists models and answers health checks", async () => {
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { object: string; data: Json[] };
    expect(models.object).toBe("list");
    expect(models.data.map((m) => m.id)).toContain("mock-model");
    for (const model of models.data) expect(model).toEqual({ id: model.id, object: "model", created: 1700000000, owned_by: "mock-llm" });
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
  });

  it("echoes the request's model and is deterministic for the same request", async () => {
    const request = { model: "my-model-x", messages: USER, stream: true };
    const a = await post("/v1/chat/completions", request);
    const b = await post("/v1/chat/completions", request);
    expect(a.text).toBe(b.text);
    expect(JSON.parse(parseSse(a.text).events[0].data)).toMatchObject({ model: "my-model-x" });
    const other = await post("/v1/chat/completions", { ...request, messages: [{ role: "user", content: "Something else entirely" }] });
    expect(summariseOpenAiStream(parseSse(other.text).events).text).not.toBe(summariseOpenAiStream(parseSse(a.text).events).text);
  });

  it("derives the response id from the request without stream_options (a gateway may add it)", async () => {
    const idOf = (text: string): string => (JSON.parse(parseSse(text).events[0].data) as Json).id as string;
    const request = { model: "id-model", messages: USER, stream: true };
    for (const flavor of ["openai", "vllm", "sglang"]) {
      const headers = { "x-mock-flavor": flavor };
      const plain = idOf((await post("/v1/chat/completions", request, headers)).text);
      // What token-rate-limiting sends upstream: the member inserted first, the rest untouched.
      const injected = JSON.stringify(request).replace(/^\{/, '{"stream_options":{"include_usage":true},');
      expect(idOf((await post("/v1/chat/completions", injected, headers)).text), flavor).toBe(plain);
      expect(idOf((await post("/v1/chat/completions", { ...request, stream_options: null }, headers)).text), flavor).toBe(plain);
      // Whitespace of the JSON text does not matter either; the prompt and the options do.
      expect(idOf((await post("/v1/chat/completions", JSON.stringify(request, null, 2), headers)).text), flavor).toBe(plain);
      expect(idOf((await post("/v1/chat/completions", { ...request, messages: [{ role: "user", content: "Other" }] }, headers)).text), flavor).not.toBe(plain);
      expect(idOf((await post("/v1/chat/completions", request, { ...headers, "x-mock-token-delay-ms": "1" })).text), flavor).not.toBe(plain);
    }
    const anthropic = { model: "c", max_tokens: 8, messages: [{ role: "user", content: "Hi" }], stream: true };
    const anthropicId = (text: string): string => ((JSON.parse(parseSse(text).events[0].data) as Json).message as Json).id as string;
    expect(anthropicId((await post("/v1/messages", { stream_options: { include_usage: true }, ...anthropic })).text)).toBe(anthropicId((await post("/v1/messages", anthropic)).text));
  });

  it("gives the same text across APIs and flavors for the same prompt", async () => {
    const messages = [{ role: "user", content: "Same prompt" }];
    const texts = await Promise.all(
      (["openai", "vllm", "sglang"] as const).map(async (flavor) => {
        const body = JSON.parse((await post("/v1/chat/completions", { model: "m", messages, max_tokens: 12 }, { "x-mock-flavor": flavor })).text) as Json;
        return ((body.choices as Json[])[0].message as Json).content;
      }),
    );
    const ollama = JSON.parse((await post("/api/chat", { model: "m", messages, stream: false, options: { num_predict: 12 } })).text) as Json;
    expect(new Set([...texts, (ollama.message as Json).content]).size).toBe(1);
  });
});
