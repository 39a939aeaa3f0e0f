/**
 * The recorded streams in spec/fixtures/streams/ are what the mock produces now, and each sidecar
 * states what an independent reader (eventsource-parser plus the format's usage rules) finds in them.
 * Regenerate with: npx tsx upstream/mock-llm/record-fixtures.ts
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { FixtureExpectation, RenderedFixture } from "./record-fixtures.ts";
import { expectationName, FIXTURE_DIR, FIXTURES, renderFixtures, serialiseExpectation, writeLargeFixture } from "./record-fixtures.ts";
import type { StreamSummary } from "./testing.ts";
import { parseSse, summariseAnthropicStream, summariseOllamaStream, summariseOpenAiStream } from "./testing.ts";
import { countAnthropicPromptTokens, countChatPromptTokens, countCompletionPromptTokens, countTokens } from "./tokenizer.ts";

const REGENERATE = "regenerate with: npx tsx upstream/mock-llm/record-fixtures.ts";

function summarise(expected: FixtureExpectation, bytes: Buffer): StreamSummary {
  const text = bytes.toString("utf8");
  if (expected.framing === "ndjson") return summariseOllamaStream(text);
  const events = parseSse(text, 13).events;
  return expected.flavor === "anthropic" ? summariseAnthropicStream(events) : summariseOpenAiStream(events);
}

/** Prompt tokens from the request alone, by the documented tokenizer rules. */
function promptTokensOf(expected: FixtureExpectation): number {
  const body = expected.request.body as { messages?: { role: string; content: unknown }[]; system?: unknown; prompt?: string };
  const headers = expected.request.headers;
  if (expected.api === "completions") return countCompletionPromptTokens(body.prompt ?? "");
  if (expected.api === "messages") {
    const cache = Number(headers["x-mock-cache-read-input-tokens"] ?? 0) + Number(headers["x-mock-cache-creation-input-tokens"] ?? 0);
    return countAnthropicPromptTokens(body.system, body.messages ?? []) + cache;
  }
  return countChatPromptTokens(body.messages ?? []);
}

describe("recorded stream fixtures", () => {
  let rendered: Map<string, RenderedFixture>;
  beforeAll(async () => {
    rendered = await renderFixtures(FIXTURES);
  });

  it("has exactly the committed fixtures and sidecars", async () => {
    const files = (await readdir(FIXTURE_DIR)).filter((f) => !f.startsWith(".") && !f.startsWith("openai-1mb."));
    const wanted = FIXTURES.flatMap((f) => [f.name, expectationName(f.name)]);
    expect(files.sort(), REGENERATE).toEqual(wanted.sort());
  });

  it.each(FIXTURES.map((f) => [f.name]))("%s is what the mock produces now", async (name) => {
    const fixture = rendered.get(name)!;
    const onDisk = await readFile(resolve(FIXTURE_DIR, name));
    expect(onDisk.toString("utf8"), REGENERATE).toBe(fixture.bytes.toString("utf8"));
    expect(onDisk.equals(fixture.bytes), REGENERATE).toBe(true);
    const sidecar = await readFile(resolve(FIXTURE_DIR, expectationName(name)), "utf8");
    expect(sidecar, REGENERATE).toBe(serialiseExpectation(fixture.expected));
  });

  it.each(FIXTURES.map((f) => [f.name]))("%s: an independent reader finds the sidecar's usage, text and ending", async (name) => {
    const bytes = await readFile(resolve(FIXTURE_DIR, name));
    const expected = JSON.parse(await readFile(resolve(FIXTURE_DIR, expectationName(name)), "utf8")) as FixtureExpectation;
    expect(expected.bytes).toBe(bytes.length);
    const summary = summarise(expected, bytes);
    expect(summary.text).toBe(expected.text);
    expect(summary.terminator).toBe(expected.terminator);
    const expectedFinish = expected.flavor === "anthropic" ? { length: "max_tokens", stop: "end_turn" }[expected.finish_reason] : expected.finish_reason;
    expect(summary.finish_reason).toBe(expectedFinish);
    expect(expected.usage.prompt_tokens).toBe(promptTokensOf(expected));
    expect(expected.usage.completion_tokens).toBe(countTokens(expected.text));
    expect(expected.usage.total_tokens).toBe(expected.usage.prompt_tokens + expected.usage.completion_tokens);
    if (expected.usage_in_stream) {
      expect({ prompt_tokens: summary.prompt_tokens, completion_tokens: summary.completion_tokens, total_tokens: summary.total_tokens }).toEqual(expected.usage);
    } else {
      expect(summary.usages).toEqual([]);
    }
    const text = bytes.toString("utf8");
    if (expected.line_ending === "crlf") expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    else expect(text).not.toContain("\r");
  });

  it("covers every flavor and the traps the plugins must handle", () => {
    const expectations = [...rendered.values()].map((r) => r.expected);
    expect(new Set(expectations.map((e) => e.flavor))).toEqual(new Set(["openai", "vllm", "sglang", "anthropic", "ollama"]));
    const tricky = rendered.get("openai-tricky-text.sse")!;
    expect(tricky.expected.text).toContain('"usage"');
    expect(tricky.expected.text).toContain("data: [DONE]");
    const continuous = rendered.get("vllm-continuous.sse")!;
    const usages = summariseOpenAiStream(parseSse(continuous.bytes.toString("utf8")).events).usages;
    expect(usages.length).toBeGreaterThan(5);
    expect(usages.map((u) => u.completion_tokens)).toEqual([...usages.map((u) => u.completion_tokens)].sort((a, b) => a - b));
    expect(parseSse(rendered.get("openai-crlf-comments.sse")!.bytes.toString("utf8")).comments.length).toBeGreaterThan(0);
  });
});

describe("the ~1 MB fixture", () => {
  it("is generated on demand, deterministically, over 1 MiB, with its usage", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mock-llm-large-"));
    try {
      const first = await writeLargeFixture(dir);
      const bytes = await readFile(first.path);
      expect(bytes.length).toBeGreaterThan(1024 * 1024);
      expect(first.expected.bytes).toBe(bytes.length);
      const summary = summariseOpenAiStream(parseSse(bytes.toString("utf8"), 65536).events);
      expect(summary).toMatchObject({ completion_tokens: 3800, terminator: "[DONE]", finish_reason: "length" });
      expect(summary.prompt_tokens).toBe(first.expected.usage.prompt_tokens);
      const second = await writeLargeFixture(dir);
      expect((await readFile(second.path)).equals(bytes)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
