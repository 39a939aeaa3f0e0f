/**
 * Records sample streams from the mock into spec/fixtures/streams/, each with a sidecar
 * `<name>.expected.json` (the request, the usage the stream reports, the text, how it ends).
 * Busted specs and benchmarks read them; mock-llm's tests check that they still match what the mock
 * produces.
 *
 *   npx tsx upstream/mock-llm/record-fixtures.ts           rewrite the committed small fixtures
 *   npx tsx upstream/mock-llm/record-fixtures.ts --check   exit 1 when a committed fixture is stale
 *   npx tsx upstream/mock-llm/record-fixtures.ts --large   also write openai-1mb.sse (not committed)
 *
 * Recordings are reproducible: `x-mock-created` fixes the timestamp and response ids derive from the
 * request.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MockRequestRecord } from "./records.ts";
import { startMockLlmServer } from "./server.ts";

export const FIXTURE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../spec/fixtures/streams");

export const FIXED_CREATED = 1_700_000_000;

export interface FixtureSpec {
  /** File name in FIXTURE_DIR. */
  name: string;
  description: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface FixtureExpectation {
  file: string;
  description: string;
  flavor: string;
  api: string;
  request: { path: string; headers: Record<string, string>; body: Record<string, unknown> };
  framing: "sse" | "ndjson";
  line_ending: "lf" | "crlf";
  /** The usage a reader must find in the stream (for Anthropic, prompt_tokens = input + cache tokens). */
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  /** Whether the stream itself carries the usage (false: a reader has to count or estimate). */
  usage_in_stream: boolean;
  /** The completion text, all deltas joined. */
  text: string;
  finish_reason: string;
  /** The last event: "[DONE]", "message_stop" or "done". */
  terminator: string;
  bytes: number;
}

const TRICKY_TEXT =
  'Here is JSON: {"usage": {"prompt_tokens": 99, "completion_tokens": 1}} and a fake end: data: [DONE]\n\n' +
  "then 你好, 世界 🚀 — naïve café \\ \"quoted\" done.";

const CHAT = "/v1/chat/completions";
const created = { "x-mock-created": String(FIXED_CREATED) };

export const FIXTURES: readonly FixtureSpec[] = [
  {
    name: "openai-usage.sse",
    description: "OpenAI chat stream with stream_options.include_usage: usage:null in every chunk, a choices:[] usage chunk, [DONE]",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "openai" },
    body: {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "You are a terse assistant." },
        { role: "user", content: "Name three rivers, please." },
      ],
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  {
    name: "openai-no-usage.sse",
    description: "OpenAI chat stream without include_usage: no usage key anywhere, finish_reason stop",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "openai" },
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say something short." }], stream: true },
  },
  {
    name: "openai-tricky-text.sse",
    description: "OpenAI stream whose text contains \"usage\", \"prompt_tokens\", data: [DONE], newlines, quotes, backslashes and multi-byte characters",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "openai", "x-mock-text-b64": Buffer.from(TRICKY_TEXT, "utf8").toString("base64") },
    body: {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Show me a usage object." }],
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  {
    name: "openai-crlf-comments.sse",
    description: "OpenAI stream with include_usage, CRLF line endings and ': ping' comments between events",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "openai", "x-mock-crlf": "1", "x-mock-keepalive-comments": "1" },
    body: {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Count to five." }],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  {
    name: "openai-completions.sse",
    description: "OpenAI legacy completions stream (text_completion chunks) with include_usage",
    path: "/v1/completions",
    headers: { ...created, "x-mock-flavor": "openai" },
    body: { model: "gpt-3.5-turbo-instruct", prompt: "Once upon a time", max_tokens: 7, stream: true, stream_options: { include_usage: true } },
  },
  {
    name: "vllm-usage.sse",
    description: "vLLM chat stream with include_usage: no usage key in chunks, a choices:[] usage chunk (prompt, total, completion order)",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "vllm" },
    body: {
      model: "meta-llama/Llama-3.1-8B-Instruct",
      messages: [{ role: "user", content: "What is a token bucket?" }],
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  {
    name: "vllm-continuous.sse",
    description: "vLLM chat stream with include_usage and continuous_usage_stats: cumulative usage in every chunk (take the last, never the sum)",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "vllm" },
    body: {
      model: "meta-llama/Llama-3.1-8B-Instruct",
      messages: [{ role: "user", content: "Explain rate limits in one line." }],
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    },
  },
  {
    name: "sglang-usage.sse",
    description: "SGLang chat stream with include_usage: usage:null in chunks until the choices:[] usage chunk; finish_reason length",
    path: CHAT,
    headers: { ...created, "x-mock-flavor": "sglang" },
    body: {
      model: "Qwen/Qwen2.5-7B-Instruct",
      messages: [{ role: "user", content: "List some colours." }],
      max_tokens: 9,
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  {
    name: "anthropic.sse",
    description: "Anthropic Messages stream: message_start (input_tokens), ping, content_block_delta per token, message_delta (cumulative output_tokens), message_stop",
    path: "/v1/messages",
    headers: { ...created, "anthropic-version": "2023-06-01" },
    body: {
      model: "claude-3-5-haiku-latest",
      max_tokens: 256,
      system: "You are a poet.",
      messages: [{ role: "user", content: "Write about the sea." }],
      stream: true,
    },
  },
  {
    name: "anthropic-cache.sse",
    description: "Anthropic stream with cache_creation_input_tokens and cache_read_input_tokens (prompt = input + both), stopped by max_tokens",
    path: "/v1/messages",
    headers: { ...created, "anthropic-version": "2023-06-01", "x-mock-cache-read-input-tokens": "100", "x-mock-cache-creation-input-tokens": "20" },
    body: {
      model: "claude-3-5-haiku-latest",
      max_tokens: 6,
      messages: [{ role: "user", content: [{ type: "text", text: "Summarise the cached document." }] }],
      stream: true,
    },
  },
  {
    name: "ollama.ndjson",
    description: "Ollama native /api/chat NDJSON stream: done:false lines, then done:true with prompt_eval_count and eval_count",
    path: "/api/chat",
    headers: { ...created },
    body: { model: "llama3.2", messages: [{ role: "user", content: "Why is the sky blue?" }], options: { num_predict: 11 } },
  },
];

/** The ~1 MiB OpenAI stream for benchmarks and large-input specs; generated on demand, not committed. */
export const LARGE_FIXTURE: FixtureSpec = {
  name: "openai-1mb.sse",
  description: "OpenAI chat stream with include_usage, about 1 MiB (3800 tokens)",
  path: CHAT,
  headers: { ...created, "x-mock-flavor": "openai" },
  body: {
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Write a very long story." }],
    max_tokens: 3800,
    stream: true,
    stream_options: { include_usage: true },
  },
};

export function expectationName(fixtureName: string): string {
  return fixtureName.replace(/\.(sse|ndjson)$/, "") + ".expected.json";
}

export interface RenderedFixture {
  bytes: Buffer;
  expected: FixtureExpectation;
}

/** Sends the fixture's request to a mock at `baseUrl` and returns the raw stream and its expectation. */
export async function renderFixture(spec: FixtureSpec, baseUrl: string): Promise<RenderedFixture> {
  const response = await fetch(baseUrl + spec.path, {
    method: "POST",
    headers: { "content-type": "application/json", ...spec.headers },
    body: JSON.stringify(spec.body),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${spec.name}: mock answered ${response.status}: ${bytes.toString("utf8")}`);
  const recordId = response.headers.get("x-mock-record-id");
  const records = (await (await fetch(`${baseUrl}/_mock/requests`)).json()) as MockRequestRecord[];
  const record = records.find((r) => String(r.id) === recordId);
  if (!record || record.usage === null || record.flavor === null || record.api === null || record.finish_reason === null) {
    throw new Error(`${spec.name}: no complete record for the request`);
  }
  const ndjson = spec.path.endsWith("/api/chat");
  const terminator = ndjson ? "done" : record.flavor === "anthropic" ? "message_stop" : "[DONE]";
  const expected: FixtureExpectation = {
    file: spec.name,
    description: spec.description,
    flavor: record.flavor,
    api: record.api,
    request: { path: spec.path, headers: spec.headers, body: spec.body },
    framing: ndjson ? "ndjson" : "sse",
    line_ending: spec.headers["x-mock-crlf"] === "1" ? "crlf" : "lf",
    usage: record.usage,
    usage_in_stream: record.usage_sent,
    text: await nonStreamedText(spec, baseUrl),
    finish_reason: record.finish_reason,
    terminator,
    bytes: bytes.length,
  };
  return { bytes, expected };
}

/**
 * The completion text of the fixture's request, from the mock's non-streamed answer to it: a second
 * path to the same text, which the tests compare with the deltas of the stream.
 */
async function nonStreamedText(spec: FixtureSpec, baseUrl: string): Promise<string> {
  const body = { ...spec.body, stream: false };
  delete (body as Record<string, unknown>).stream_options;
  const response = await fetch(baseUrl + spec.path, {
    method: "POST",
    headers: { "content-type": "application/json", ...spec.headers, "x-mock-crlf": "0", "x-mock-keepalive-comments": "0" },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (spec.path.endsWith("/api/chat")) return String((json.message as { content: string }).content);
  if (spec.path.endsWith("/v1/messages")) return String((json.content as { text: string }[])[0].text);
  const choice = (json.choices as Record<string, unknown>[])[0];
  if (spec.path.endsWith("/v1/completions")) return String(choice.text);
  return String((choice.message as { content: string }).content);
}

/** Renders every spec against one in-process mock. */
export async function renderFixtures(specs: readonly FixtureSpec[]): Promise<Map<string, RenderedFixture>> {
  const server = await startMockLlmServer({ port: 0 });
  try {
    const out = new Map<string, RenderedFixture>();
    for (const spec of specs) {
      out.set(spec.name, await renderFixture(spec, server.url));
    }
    return out;
  } finally {
    await server.close();
  }
}

export function serialiseExpectation(expected: FixtureExpectation): string {
  return JSON.stringify(expected, null, 2) + "\n";
}

async function writeFixture(dir: string, rendered: RenderedFixture): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = resolve(dir, rendered.expected.file);
  await writeFile(file, rendered.bytes);
  await writeFile(resolve(dir, expectationName(rendered.expected.file)), serialiseExpectation(rendered.expected));
  return file;
}

/** Writes openai-1mb.sse (and its sidecar) into `dir`; returns its path and expectation. */
export async function writeLargeFixture(dir: string = FIXTURE_DIR): Promise<{ path: string; expected: FixtureExpectation }> {
  const rendered = (await renderFixtures([LARGE_FIXTURE])).get(LARGE_FIXTURE.name);
  if (!rendered) throw new Error("large fixture not rendered");
  return { path: await writeFixture(dir, rendered), expected: rendered.expected };
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes("--check");
  const large = argv.includes("--large");
  const rendered = await renderFixtures(FIXTURES);
  let stale = 0;
  for (const [name, fixture] of rendered) {
    if (check) {
      const onDisk = await readFile(resolve(FIXTURE_DIR, name)).catch(() => null);
      const sidecar = await readFile(resolve(FIXTURE_DIR, expectationName(name)), "utf8").catch(() => null);
      if (!onDisk || !onDisk.equals(fixture.bytes) || sidecar !== serialiseExpectation(fixture.expected)) {
        process.stdout.write(`stale: ${name}\n`);
        stale++;
      }
    } else {
      process.stdout.write(`wrote ${await writeFixture(FIXTURE_DIR, fixture)} (${fixture.bytes.length} bytes)\n`);
    }
  }
  if (large && !check) {
    const { path, expected } = await writeLargeFixture();
    process.stdout.write(`wrote ${path} (${expected.bytes} bytes)\n`);
  }
  return stale > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
