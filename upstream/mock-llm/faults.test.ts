/**
 * Every fault, produced on demand and observed from the client side: timings with a clock, aborts and
 * stalls on a raw TCP socket (so that the missing last chunk and the silence are visible), gzip by
 * decoding, comments and CRLF by the bytes, split writes by TCP reads that end inside a UTF-8 character.
 */
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countChatPromptTokens, countTokens, truncateToTokens } from "./tokenizer.ts";
import type { MockLlmServer } from "./server.ts";
import { startMockLlmServer } from "./server.ts";
import { splitOffsets } from "./wire.ts";
import {
  parseHttpResponse,
  parseSse,
  rawRequest,
  splitsUtf8Character,
  summariseAnthropicStream,
  summariseOllamaStream,
  summariseOpenAiStream,
} from "./testing.ts";

let server: MockLlmServer;
beforeAll(async () => {
  server = await startMockLlmServer({ port: 0 });
});
afterAll(async () => {
  await server?.close();
});

const MESSAGES = [{ role: "user", content: "Tell me a story about gateways." }];
const streamBody = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ model: "m", messages: MESSAGES, stream: true, stream_options: { include_usage: true }, max_tokens: 8, ...extra });

function chat(headers: Record<string, string>, body = streamBody()) {
  return rawRequest(server.port, "POST", "/v1/chat/completions", headers, body);
}

async function recordFor(id: string | undefined) {
  const records = await server.records.waitFor(Number(id), 5_000);
  const record = records.find((r) => String(r.id) === id);
  if (!record) throw new Error(`no record ${id}`);
  return record;
}

describe("timing", () => {
  it("ttft_ms: headers at once, the first event after the delay", async () => {
    const exchange = await chat({ "x-mock-ttft-ms": "300" }).done;
    const res = parseHttpResponse(exchange.reads);
    expect(res.status).toBe(200);
    expect(res.firstBodyByteAt! - exchange.sentAt).toBeGreaterThanOrEqual(290);
    expect(res.firstBodyByteAt! - res.headersAt!).toBeGreaterThanOrEqual(250);
    expect(res.complete).toBe(true);
  });

  it("token_delay_ms: tokens arrive spaced by the delay", async () => {
    const exchange = await chat({ "x-mock-token-delay-ms": "80" }, streamBody({ max_tokens: 5 })).done;
    const res = parseHttpResponse(exchange.reads);
    const text = res.body.toString("utf8");
    // Arrival time of each content event, by where its bytes end.
    const times: number[] = [];
    let offset = 0;
    for (const block of text.split("\n\n").slice(0, -1)) {
      offset += Buffer.byteLength(block) + 2;
      if (!block.includes('"delta":{"content"')) continue;
      times.push(res.bodyReads.find((r) => r.to >= offset)!.at);
    }
    expect(times).toHaveLength(5);
    // Lower bounds only (timers never fire early); a busy machine may bunch two reads, not all of them.
    expect(times[4] - times[0]).toBeGreaterThanOrEqual(240);
    const spaced = times.slice(1).filter((t, i) => t - times[i] >= 60);
    expect(spaced.length).toBeGreaterThanOrEqual(2);
  });

  it("header_delay_ms: nothing, not even the status line, before the delay", async () => {
    const exchange = await chat({ "x-mock-header-delay-ms": "250" }).done;
    expect(exchange.reads[0].at - exchange.sentAt).toBeGreaterThanOrEqual(240);
    expect(parseHttpResponse(exchange.reads).status).toBe(200);
  });

  it("delays a non-streamed answer by ttft plus the token delays", async () => {
    const started = performance.now();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-ttft-ms": "100", "x-mock-token-delay-ms": "30" },
      body: JSON.stringify({ model: "m", messages: MESSAGES, max_tokens: 6 }),
    });
    await res.json();
    expect(performance.now() - started).toBeGreaterThanOrEqual(100 + 5 * 30 - 10);
  });
});

describe("fail_status", () => {
  async function fail(path: string, flavor: string | null, status: number, body: unknown) {
    const headers: Record<string, string> = { "content-type": "application/json", "x-mock-fail-status": String(status) };
    if (flavor) headers["x-mock-flavor"] = flavor;
    const res = await fetch(server.url + path, { method: "POST", headers, body: JSON.stringify(body) });
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
  }

  it("answers with the status and an error body in each flavor's format", async () => {
    const chatBody = { model: "m", messages: MESSAGES, stream: true };
    const openai = await fail("/v1/chat/completions", "openai", 429, chatBody);
    expect(openai.status).toBe(429);
    expect(openai.headers.get("retry-after")).toBe("1");
    expect(openai.json).toEqual({ error: { message: expect.any(String), type: "requests", param: null, code: "rate_limit_exceeded" } });
    expect(await fail("/v1/chat/completions", "openai", 500, chatBody)).toMatchObject({ status: 500, json: { error: { type: "server_error" } } });
    expect((await fail("/v1/chat/completions", "vllm", 503, chatBody)).json).toEqual({
      error: { message: expect.any(String), type: "ServiceUnavailableError", param: null, code: 503 },
    });
    expect((await fail("/v1/chat/completions", "sglang", 400, chatBody)).json).toEqual({
      object: "error", message: expect.any(String), type: "BadRequestError", param: null, code: 400,
    });
    expect((await fail("/v1/messages", null, 529, { model: "c", max_tokens: 5, messages: MESSAGES })).json).toEqual({
      type: "error", error: { type: "overloaded_error", message: expect.any(String) },
    });
    expect((await fail("/api/chat", null, 500, { model: "l", messages: MESSAGES })).json).toEqual({ error: expect.any(String) });
  });

  it("records the failure as outcome error", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-fail-status": "502" },
      body: JSON.stringify({ model: "m", messages: MESSAGES }),
    });
    await res.text();
    const record = await recordFor(res.headers.get("x-mock-record-id") ?? undefined);
    expect(record).toMatchObject({ status: 502, outcome: "error", error: "fail_status", faults: { fail_status: 502 }, tokens_sent: 0 });
  });
});

describe("abort_after_tokens", () => {
  it("closes the connection after N tokens: no [DONE], no usage chunk, no last HTTP chunk", async () => {
    const exchange = await chat({ "x-mock-abort-after-tokens": "3", "x-mock-token-delay-ms": "5" }).done;
    const res = parseHttpResponse(exchange.reads);
    expect(exchange.closedAt).not.toBeNull();
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    const text = res.body.toString("utf8");
    expect(text).not.toContain("[DONE]");
    const summary = summariseOpenAiStream(parseSse(text).events);
    expect(countTokens(summary.text)).toBe(3);
    expect(summary.usages).toEqual([]);
    expect(summary.finish_reason).toBeNull();
    const record = await recordFor(res.headers["x-mock-record-id"]);
    expect(record).toMatchObject({ outcome: "aborted_by_fault", tokens_sent: 3, usage_sent: false, faults: { abort_after_tokens: 3 } });
  });

  it("makes a fetch client see a broken stream", async () => {
    const res = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-abort-after-tokens": "2" },
      body: JSON.stringify({ model: "c", max_tokens: 50, messages: MESSAGES, stream: true }),
    });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it("drops a non-streamed request before any response", async () => {
    const exchange = await rawRequest(server.port, "POST", "/v1/chat/completions", { "x-mock-abort-after-tokens": "1" }, JSON.stringify({ model: "m", messages: MESSAGES })).done;
    expect(exchange.reads).toEqual([]);
    expect(exchange.closedAt).not.toBeNull();
  });

  it("aborts after the last token when N is larger than the completion", async () => {
    const exchange = await chat({ "x-mock-abort-after-tokens": "1000" }, streamBody({ max_tokens: 4 })).done;
    const text = parseHttpResponse(exchange.reads).body.toString("utf8");
    const summary = summariseOpenAiStream(parseSse(text).events);
    expect(countTokens(summary.text)).toBe(4);
    expect(summary.terminator).toBeNull();
  });
});

describe("stall_after_tokens", () => {
  it("sends N tokens, then nothing while the connection stays open, until the client leaves", async () => {
    const client = chat({ "x-mock-stall-after-tokens": "2" });
    await client.waitFor('"delta":{"content"');
    await new Promise((r) => setTimeout(r, 100));
    const before = client.reads.length;
    const quietSince = client.reads[client.reads.length - 1].at;
    await new Promise((r) => setTimeout(r, 400));
    expect(client.reads.length).toBe(before); // no bytes for 400 ms
    expect(performance.now() - quietSince).toBeGreaterThanOrEqual(400);
    const res = parseHttpResponse(client.reads);
    expect(countTokens(summariseOpenAiStream(parseSse(res.body.toString("utf8")).events).text)).toBe(2);
    client.destroy();
    const exchange = await client.done;
    expect(exchange.closedAt).not.toBeNull();
    const record = await recordFor(res.headers["x-mock-record-id"]);
    expect(record).toMatchObject({ outcome: "client_disconnected", tokens_sent: 2, faults: { stall_after_tokens: 2 } });
    expect(record.duration_ms).toBeGreaterThanOrEqual(500);
  });
});

describe("gzip", () => {
  it("compresses the stream and flushes every event as it goes", async () => {
    const exchange = await chat({ "x-mock-gzip": "1", "x-mock-token-delay-ms": "60" }, streamBody({ max_tokens: 5 })).done;
    const res = parseHttpResponse(exchange.reads);
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(res.complete).toBe(true);
    expect(res.bodyReads.length).toBeGreaterThanOrEqual(5); // flushed per event, not buffered to the end
    const text = gunzipSync(res.body).toString("utf8");
    const summary = summariseOpenAiStream(parseSse(text).events);
    expect(summary).toMatchObject({ completion_tokens: 5, terminator: "[DONE]", prompt_tokens: countChatPromptTokens(MESSAGES) });
    // Decompress what had arrived after each read: the first event decodes long before [DONE] does.
    const decodedAt = (needle: string): number =>
      res.bodyReads.find((r) => gunzipSync(res.body.subarray(0, r.to), { finishFlush: 2 /* Z_SYNC_FLUSH */ }).toString("utf8").includes(needle))!.at;
    expect(decodedAt("[DONE]") - decodedAt("}\n\n")).toBeGreaterThanOrEqual(150);
  });

  it("compresses non-streamed and error bodies too", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-gzip": "true" },
      body: JSON.stringify({ model: "m", messages: MESSAGES, max_tokens: 3 }),
    });
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
  });
});

describe("keepalive_comments and crlf", () => {
  it("puts ': ping' comments between events", async () => {
    const exchange = await chat({ "x-mock-keepalive-comments": "1" }, streamBody({ max_tokens: 3 })).done;
    const text = parseHttpResponse(exchange.reads).body.toString("utf8");
    const { events, comments } = parseSse(text, 3);
    expect(events.length).toBe(1 + 3 + 1 + 1 + 1);
    expect(comments).toHaveLength(events.length - 1);
    expect(comments.every((c) => c.trim() === "ping")).toBe(true);
    expect(text.startsWith("data: ")).toBe(true);
    expect(text.split("\n\n: ping\n\n")).toHaveLength(events.length);
  });

  it("ends every line with CRLF and parses the same as LF", async () => {
    const crlf = parseHttpResponse((await chat({ "x-mock-crlf": "1" }).done).reads).body.toString("utf8");
    const lf = parseHttpResponse((await chat({}).done).reads).body.toString("utf8");
    expect(crlf.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(crlf).toMatch(/^(data: [^\r\n]+\r\n\r\n)+$/);
    expect(crlf.endsWith("data: [DONE]\r\n\r\n")).toBe(true);
    // Same events but for the id (derived from the request, which differs by the x-mock-crlf header).
    const withoutId = (text: string) => parseSse(text, 5).events.map((e) => e.data.replace(/"id":"[^"]+"/, ""));
    expect(withoutId(crlf)).toEqual(withoutId(lf));
  });

  it("combines comments and CRLF on an Anthropic stream", async () => {
    const exchange = await rawRequest(server.port, "POST", "/v1/messages", { "x-mock-crlf": "1", "x-mock-keepalive-comments": "1" }, JSON.stringify({ model: "c", max_tokens: 4, messages: MESSAGES, stream: true })).done;
    const text = parseHttpResponse(exchange.reads).body.toString("utf8");
    expect(text).toContain("\r\n\r\n: ping\r\n\r\nevent: content_block_delta\r\n");
    expect(summariseAnthropicStream(parseSse(text).events)).toMatchObject({ completion_tokens: 4, terminator: "message_stop" });
  });
});

describe("split", () => {
  it("cuts each event inside its first and last multi-byte character, at 3 bytes, the middle and before the last byte", () => {
    const bytes = Buffer.from('data: {"x":"é 🚀"}\n\n');
    const offsets = splitOffsets(bytes);
    expect(offsets).toContain(3);
    expect(offsets).toContain(bytes.length - 1);
    expect(offsets).toContain(bytes.indexOf(Buffer.from("é")) + 1);
    expect(offsets).toContain(bytes.indexOf(Buffer.from("🚀")) + 1);
  });

  it("delivers events in separate TCP reads that end inside UTF-8 characters", async () => {
    const text = "Grüße aus 東京 🚀 und schöne Grüße";
    const exchange = await chat({ "x-mock-split": "1", "x-mock-text-b64": Buffer.from(text).toString("base64") }).done;
    const res = parseHttpResponse(exchange.reads);
    expect(res.complete).toBe(true);
    const body = res.body;
    const eventCount = body.toString("utf8").split("\n\n").length - 1;
    expect(res.bodyReads.length).toBeGreaterThan(eventCount);
    const inside = res.bodyOffsetsAtReads.filter((offset) => splitsUtf8Character(body, offset));
    expect(inside.length).toBeGreaterThan(0);
    // And the pieces still make the same stream.
    const summary = summariseOpenAiStream(parseSse(body.toString("utf8")).events);
    expect(summary.text).toBe(text);
    expect(summary.completion_tokens).toBe(countTokens(text));
  });

  it("splits gzip output the same way, one flush per piece", async () => {
    const exchange = await chat({ "x-mock-split": "1", "x-mock-gzip": "1" }, streamBody({ max_tokens: 3 })).done;
    const res = parseHttpResponse(exchange.reads);
    expect(res.bodyReads.length).toBeGreaterThan(6);
    expect(summariseOpenAiStream(parseSse(gunzipSync(res.body).toString("utf8")).events).completion_tokens).toBe(3);
  });

  it("splits Ollama NDJSON lines too", async () => {
    const exchange = await rawRequest(server.port, "POST", "/api/chat", { "x-mock-split": "1", "x-mock-text": Buffer.from("naïve 你好").toString("latin1") }, JSON.stringify({ model: "l", messages: MESSAGES })).done;
    const res = parseHttpResponse(exchange.reads);
    expect(res.bodyOffsetsAtReads.some((o) => splitsUtf8Character(res.body, o))).toBe(true);
    expect(summariseOllamaStream(res.body.toString("utf8"))).toMatchObject({ text: "naïve 你好", completion_tokens: 2 });
  });
});

describe("text", () => {
  it("forces the completion text by body field, header or base64 header", async () => {
    const tricky = 'He wrote "usage": {"prompt_tokens": 5} then data: [DONE]\n\n… 你好 🚀';
    const viaBody = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: MESSAGES, stream: true, stream_options: { include_usage: true }, mock_text: tricky }),
    });
    const summary = summariseOpenAiStream(parseSse(await viaBody.text()).events);
    expect(summary).toMatchObject({ text: tricky, completion_tokens: countTokens(tricky), finish_reason: "stop" });

    const viaB64 = summariseOpenAiStream(parseSse(parseHttpResponse((await chat({ "x-mock-text-b64": Buffer.from(tricky).toString("base64") }).done).reads).body.toString("utf8")).events);
    expect(viaB64.text).toBe(truncateToTokens(tricky, 8)); // max_tokens 8 cuts the forced text
    expect(viaB64.completion_tokens).toBe(8);
    expect(viaB64.finish_reason).toBe("length");

    // A raw UTF-8 header value (Node reads header bytes as latin1; the mock re-reads them as UTF-8).
    const viaHeader = parseHttpResponse(
      (await rawRequest(server.port, "POST", "/v1/chat/completions", { "x-mock-text": Buffer.from("Grüße 🚀", "utf8").toString("latin1") }, JSON.stringify({ model: "m", messages: MESSAGES })).done).reads,
    );
    const body = JSON.parse(viaHeader.body.toString("utf8")) as { choices: { message: { content: string } }[] };
    expect(body.choices[0].message.content).toBe("Grüße 🚀");
  });

  it("template_tokens: the prompt the usage reports grows as a chat template's would, in every flavor", async () => {
    const plain = JSON.parse((await (await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: MESSAGES }) })).text())) as { usage: { prompt_tokens: number; total_tokens: number } };
    const withTemplate = JSON.parse((await (await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-mock-template-tokens": "30" },
      body: JSON.stringify({ model: "m", messages: MESSAGES }),
    })).text())) as { usage: { prompt_tokens: number; total_tokens: number } };
    expect(plain.usage.prompt_tokens).toBe(countChatPromptTokens(MESSAGES));
    expect(withTemplate.usage.prompt_tokens).toBe(plain.usage.prompt_tokens + 30);
    expect(withTemplate.usage.total_tokens).toBe(plain.usage.total_tokens + 30);
    const sent = rawRequest(server.port, "POST", "/v1/messages", { "x-mock-template-tokens": "30" }, JSON.stringify({ model: "m", max_tokens: 8, stream: true, messages: MESSAGES }));
    const anthropic = summariseAnthropicStream(parseSse(parseHttpResponse((await sent.done).reads).body.toString("utf8")).events);
    expect(anthropic.prompt_tokens).toBe(plain.usage.prompt_tokens + 30);
  });

  it("accepts options as mock_ body fields and bare names, the header winning", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-text": "from header" },
      body: JSON.stringify({ model: "m", messages: MESSAGES, mock_text: "from body", ttft_ms: 120 }),
    });
    const record = await recordFor(res.headers.get("x-mock-record-id") ?? undefined);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0].message.content).toBe("from header");
    expect(record.faults).toMatchObject({ text: true, ttft_ms: 120 });
  });

  it("rejects a bad option value with a 400 naming it, in the API's error format", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-ttft-ms": "soon" },
      body: JSON.stringify({ model: "m", messages: MESSAGES }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; param: string } };
    expect(body.error.param).toBe("header x-mock-ttft-ms");
    expect(body.error.message).toContain("soon");

    const anthropic = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "c", max_tokens: 5, messages: MESSAGES, mock_flavor: "bogus" }),
    });
    expect(anthropic.status).toBe(400);
    expect(await anthropic.json()).toEqual({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("mock_flavor") } });
  });
});
