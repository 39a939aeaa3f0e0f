// The streamed answers of the benchmark, as files: one per API shape (OpenAI, vLLM with usage in
// every chunk, Anthropic messages, Ollama NDJSON), one token per event and events of the size
// real servers send (OpenAI's about 190 bytes). Deterministic, so the upstream nginx, the
// in-process reader benchmark and every check see the same bytes, with the counts a correct
// reader must find.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type StreamShape = "openai" | "vllm" | "anthropic" | "ollama";
export const STREAM_SHAPES: readonly StreamShape[] = ["openai", "vllm", "anthropic", "ollama"];

/** What a correct usage reader reports at the end of the stream. */
export interface StreamExpectation {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** SSE events with data ([DONE] included) or NDJSON lines. */
  events: number;
  /**
   * The generated text as readers measure it: UTF-8 characters after JSON unescaping (older
   * readers' content_chars) or bytes as the JSON strings carry them (text_bytes). Absent for
   * vLLM: with the usage in every event a reader never needs the text for an estimate, and may
   * skip measuring it.
   */
  content_chars?: number;
  text_bytes?: number;
  finish_reason: string;
  framing: "sse" | "ndjson";
  dialect: "openai" | "anthropic" | "ollama";
}

export interface StreamFile {
  shape: StreamShape;
  /** File name, also the last part of its upstream path. */
  file: string;
  contentType: string;
  /** Where the upstream serves it and the gateway routes it (an API-shaped path, so plugins read the API from it as they would in production). */
  path: string;
  /** Every event with its terminating blank line (SSE) or newline (NDJSON). */
  events: string[];
  body: string;
  /** The chunk events' sizes in bytes (smallest, largest), what the shape's servers send per token. */
  tokenEventBytes: { min: number; max: number };
  /**
   * OpenAI only: what a client that did not ask for usage gets from OpenAI (no usage chunk, no
   * `"usage":null` in the chunks), which token-rate-limiting must restore when it asked instead.
   */
  unaskedBody?: string;
  expected: StreamExpectation;
}

// Short words as a chat model streams them, one token each: mostly ASCII with a leading space,
// punctuation, a newline (a JSON escape) and a few multi-byte ones (accents, CJK, an emoji).
const WORDS = [
  " the", " model", " answers", " with", " a", " short", " list", ":", "\n", "1", ".", " Check",
  " your", " data", " and", " logs", ",", " then", " retry", " café", " it", " is", " 東京", " in",
  " naïve", " terms", " of", " tokens", " 🚀", " per", " second", " that",
];

/** The i-th token of every stream (a fixed pseudo-random walk over WORDS). */
function token(i: number): string {
  return WORDS[(i * 7 + (i >> 2) + ((i * i) % 5)) % WORDS.length];
}

const chars = (s: string) => [...s].length;
const bytes = (s: string) => Buffer.byteLength(s);

const CREATED = 1726000000;

/** A shape's events; the token events are `tokens` in a row from index `firstToken`. */
interface Built {
  events: string[];
  firstToken: number;
  unaskedBody?: string;
}

function sse(data: object | string, event?: string): string {
  return `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

function openaiChunk(model: string, delta: object, finish: string | null, extra: { logprobs?: null; usage?: object | null }): string {
  const { logprobs, usage } = extra;
  return sse({
    id: "chatcmpl-bench",
    object: "chat.completion.chunk",
    created: CREATED,
    model,
    choices: [{ index: 0, delta, ...(logprobs === null ? { logprobs } : {}), finish_reason: finish }],
    usage,
  });
}

/**
 * OpenAI chat completion with `stream_options.include_usage`: a role chunk, one chunk per
 * token, a finish_reason chunk, the usage chunk (`choices: []`) and `data: [DONE]`. Every chunk
 * carries `"usage":null` as OpenAI sends it when usage was asked for, so a reader meets the key
 * in every event; `logprobs` is left out to keep the events at 150-200 bytes.
 */
function openai(tokens: number, prompt: number): Built {
  const model = "gpt-4o-mini";
  // asked: every chunk says "usage":null; not asked: no usage member at all
  const chunks = (extra: { usage?: null }) => {
    const out = [openaiChunk(model, { role: "assistant", content: "" }, null, extra)];
    for (let i = 0; i < tokens; i++) out.push(openaiChunk(model, { content: token(i) }, null, extra));
    out.push(openaiChunk(model, {}, "stop", extra));
    return out;
  };
  const usage = { prompt_tokens: prompt, completion_tokens: tokens, total_tokens: prompt + tokens };
  const usageEvent = sse({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: CREATED, model, choices: [], usage });
  return {
    events: [...chunks({ usage: null }), usageEvent, sse("[DONE]")],
    firstToken: 1,
    unaskedBody: [...chunks({}), sse("[DONE]")].join(""),
  };
}

/** vLLM with `continuous_usage_stats`: the running usage in every chunk, then a usage chunk and [DONE]. */
function vllm(tokens: number, prompt: number): Built {
  const model = "meta-llama/Llama-3.1-8B-Instruct";
  // vLLM's own member order
  const usage = (n: number) => ({ logprobs: null, usage: { prompt_tokens: prompt, total_tokens: prompt + n, completion_tokens: n } });
  const events = [openaiChunk(model, { role: "assistant", content: "" }, null, usage(0))];
  for (let i = 0; i < tokens; i++) events.push(openaiChunk(model, { content: token(i) }, null, usage(i + 1)));
  events.push(openaiChunk(model, { content: "" }, "stop", usage(tokens)));
  events.push(sse({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: CREATED, model, choices: [], usage: usage(tokens).usage }), sse("[DONE]"));
  return { events, firstToken: 1 };
}

/** Anthropic messages: message_start (input tokens), text deltas, message_delta (output tokens), message_stop. */
function anthropic(tokens: number, prompt: number): Built {
  const message = {
    id: "msg_01BenchAbCdEfGhIjKlMnOpQr",
    type: "message",
    role: "assistant",
    model: "claude-3-5-haiku-20241022",
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
  };
  const events = [
    sse({ type: "message_start", message }, "message_start"),
    sse({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, "content_block_start"),
    sse({ type: "ping" }, "ping"),
  ];
  for (let i = 0; i < tokens; i++) {
    events.push(sse({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: token(i) } }, "content_block_delta"));
  }
  events.push(
    sse({ type: "content_block_stop", index: 0 }, "content_block_stop"),
    sse({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: tokens } }, "message_delta"),
    sse({ type: "message_stop" }, "message_stop"),
  );
  return { events, firstToken: 3 };
}

/** Ollama /api/chat: one JSON line per token, then the done line with the counts. */
function ollama(tokens: number, prompt: number): Built {
  const at = (i: number) => `2024-09-10T12:00:${String(Math.floor(i / 100) % 60).padStart(2, "0")}.${String(123456789 + i * 9871).slice(0, 9)}Z`;
  const line = (o: object) => JSON.stringify(o) + "\n";
  const events: string[] = [];
  for (let i = 0; i < tokens; i++) {
    events.push(line({ model: "llama3.2", created_at: at(i), message: { role: "assistant", content: token(i) }, done: false }));
  }
  const counts = { total_duration: 4883583458, load_duration: 1334875, prompt_eval_count: prompt, prompt_eval_duration: 342546000, eval_count: tokens, eval_duration: 4535599000 };
  events.push(line({ model: "llama3.2", created_at: at(tokens), message: { role: "assistant", content: "" }, done_reason: "stop", done: true, ...counts }));
  return { events, firstToken: 0 };
}

const SSE = "text/event-stream";
const SHAPES = {
  openai: { build: openai, prompt: 24, file: "openai.sse", contentType: SSE, path: "/openai/v1/chat/completions", dialect: "openai" },
  vllm: { build: vllm, prompt: 31, file: "vllm.sse", contentType: SSE, path: "/vllm/v1/chat/completions", dialect: "openai" },
  anthropic: { build: anthropic, prompt: 27, file: "anthropic.sse", contentType: SSE, path: "/anthropic/v1/messages", dialect: "anthropic" },
  ollama: { build: ollama, prompt: 29, file: "ollama.ndjson", contentType: "application/x-ndjson", path: "/ollama/api/chat", dialect: "ollama" },
} as const;

/** The stream of one shape with `tokens` generated tokens (one event each). */
export function streamFile(shape: StreamShape, tokens: number): StreamFile {
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`a stream needs at least one token, not ${tokens}`);
  const s = SHAPES[shape];
  const { events, firstToken, unaskedBody } = s.build(tokens, s.prompt);
  const tokenEvents = events.slice(firstToken, firstToken + tokens).map(bytes);
  let text = "";
  for (let i = 0; i < tokens; i++) text += token(i);
  const textMeasures = shape === "vllm" ? {} : { content_chars: chars(text), text_bytes: bytes(JSON.stringify(text)) - 2 };
  return {
    shape,
    file: s.file,
    contentType: s.contentType,
    path: s.path,
    events,
    body: events.join(""),
    tokenEventBytes: { min: Math.min(...tokenEvents), max: Math.max(...tokenEvents) },
    ...(unaskedBody !== undefined ? { unaskedBody } : {}),
    // every shape ends its answer with "stop" in its own words, which a reader reports as "stop"
    expected: {
      prompt_tokens: s.prompt,
      completion_tokens: tokens,
      total_tokens: s.prompt + tokens,
      events: events.length,
      ...textMeasures,
      finish_reason: "stop",
      framing: s.contentType === SSE ? "sse" : "ndjson",
      dialect: s.dialect,
    },
  };
}

export function streamFiles(tokens: number): StreamFile[] {
  return STREAM_SHAPES.map((shape) => streamFile(shape, tokens));
}

/** One entry of the manifest bench/sse-reader/bench.lua reads. */
export interface ReaderManifestEntry {
  name: string;
  file: string;
  content_type: string;
  /** Chunk sizes in bytes, or "event": each event (line) fed as its own chunk. */
  chunks: (number | "event")[];
  expected: Partial<StreamExpectation>;
}

/**
 * Writes the streams and a manifest.json for bench/sse-reader/bench.lua into `dir`
 * (`extra`: more entries, e.g. a recorded stream). Returns the manifest's path.
 */
export function writeReaderStreams(dir: string, files: StreamFile[], chunks: (number | "event")[], extra: ReaderManifestEntry[] = []): string {
  mkdirSync(dir, { recursive: true });
  const entries: ReaderManifestEntry[] = files.map((f) => {
    writeFileSync(join(dir, f.file), f.body);
    return { name: f.shape, file: join(dir, f.file), content_type: f.contentType, chunks, expected: f.expected };
  });
  const manifest = join(dir, "manifest.json");
  writeFileSync(manifest, JSON.stringify([...entries, ...extra], null, 2) + "\n");
  return manifest;
}
