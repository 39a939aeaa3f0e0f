/**
 * Request records (one per request, client disconnects seen), request validation, and the mock as a
 * child process through spec/helpers/mock-llm.ts, the way gateway tests run it.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MockLlm } from "../../spec/helpers/mock-llm.ts";
import { startMockLlm } from "../../spec/helpers/mock-llm.ts";
import { countChatPromptTokens } from "./tokenizer.ts";
import { parseSse, rawRequest, summariseOpenAiStream } from "./testing.ts";

const MESSAGES = [{ role: "user", content: "Stream me something long." }];

async function readUntil(response: Response, needle: string): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${needle}`);
    text += decoder.decode(value, { stream: true });
    if (text.includes(needle)) {
      reader.releaseLock();
      return text;
    }
  }
}

describe.each([
  { name: "child process", inProcess: false },
  { name: "in process", inProcess: true },
])("records ($name)", ({ inProcess }) => {
  let llm: MockLlm;
  beforeAll(async () => {
    llm = await startMockLlm({ inProcess, flavor: "vllm" });
  });
  afterAll(async () => {
    await llm?.stop();
  });

  it("records a completed stream with its usage, redacting credentials", async () => {
    await llm.clearRequests();
    const res = await fetch(`${llm.url}/v1/chat/completions?api_key=sk-query-secret&x=1`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-secret", "x-api-key": "sk-ant-secret", apikey: "kong-key", "x-trace": "t1" },
      body: JSON.stringify({ model: "llama", messages: MESSAGES, max_tokens: 5, stream: true, stream_options: { include_usage: true } }),
    });
    const text = await res.text();
    const [record] = await llm.requests({ waitFor: 1 });
    expect(record).toMatchObject({
      id: Number(res.headers.get("x-mock-record-id")),
      method: "POST",
      path: "/v1/chat/completions?api_key=[REDACTED]&x=1",
      api: "chat",
      flavor: "vllm",
      model: "llama",
      stream: true,
      status: 200,
      outcome: "completed",
      tokens_sent: 5,
      usage: { prompt_tokens: countChatPromptTokens(MESSAGES), completion_tokens: 5, total_tokens: countChatPromptTokens(MESSAGES) + 5 },
      usage_sent: true,
      finish_reason: "length",
      bytes_sent: Buffer.byteLength(text),
      error: null,
      body: { model: "llama", max_tokens: 5 },
    });
    expect(record.headers).toMatchObject({ authorization: "[REDACTED]", "x-api-key": "[REDACTED]", apikey: "[REDACTED]", "x-trace": "t1" });
    expect(JSON.stringify(record)).not.toMatch(/sk-secret|sk-ant-secret|kong-key|sk-query-secret/);
    expect(Date.parse(record.received_at)).not.toBeNaN();
    expect(record.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it("records client_disconnected with the tokens sent when the client aborts mid-stream", async () => {
    await llm.clearRequests();
    const controller = new AbortController();
    const res = await fetch(`${llm.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-token-delay-ms": "40" },
      body: JSON.stringify({ model: "llama", messages: MESSAGES, max_tokens: 50, stream: true }),
      signal: controller.signal,
    });
    const seen = await readUntil(res, '"content":" ');
    controller.abort();
    const [record] = await llm.requests({ waitFor: 1 });
    expect(record.outcome).toBe("client_disconnected");
    expect(record.tokens_sent).toBeGreaterThanOrEqual(1);
    expect(record.tokens_sent).toBeLessThan(50);
    expect(record.usage_sent).toBe(false);
    expect(summariseOpenAiStream(parseSse(seen).events).terminator).toBeNull();
  });

  it("keeps one record per request, excludes health checks, and clears", async () => {
    await llm.clearRequests();
    await (await fetch(`${llm.url}/healthz`)).text();
    await (await fetch(`${llm.url}/v1/models`)).text();
    await (await fetch(`${llm.url}/nowhere`)).text();
    await (await fetch(`${llm.url}/v1/chat/completions`, { method: "POST", body: "{not json" })).text();
    const records = await llm.requests({ waitFor: 3 });
    expect(records.map((r) => [r.path, r.status, r.outcome])).toEqual([
      ["/v1/models", 200, "completed"],
      ["/nowhere", 404, "error"],
      ["/v1/chat/completions", 400, "error"],
    ]);
    expect(records[2].body).toBe("{not json");
    await llm.clearRequests();
    expect(await llm.requests()).toEqual([]);
  });

  it("waits server-side for records (wait_for) and reports a shortfall", async () => {
    await llm.clearRequests();
    const waiting = llm.requests({ waitFor: 1, timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    await (await fetch(`${llm.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", messages: MESSAGES }) })).text();
    expect(await waiting).toHaveLength(1);
    const started = performance.now();
    await expect(llm.requests({ waitFor: 5, timeoutMs: 200 })).rejects.toThrow(/waited 200 ms for 5 request records, have 1/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe("validation", () => {
  let llm: MockLlm;
  beforeAll(async () => {
    llm = await startMockLlm({ inProcess: true });
  });
  afterAll(async () => {
    await llm?.stop();
  });

  async function send(path: string, body: string | object, headers: Record<string, string> = { "content-type": "application/json" }) {
    const res = await fetch(llm.url + path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  const openAiCases: [string, string | object, string | null, string | null][] = [
    ["bad JSON", '{"messages": [', null, null],
    ["empty body", "", null, null],
    ["body not an object", "[1,2]", null, "invalid_type"],
    ["missing messages", { model: "m" }, "messages", "missing_required_parameter"],
    ["messages not an array", { model: "m", messages: "hi" }, "messages", "invalid_type"],
    ["empty messages", { model: "m", messages: [] }, "messages", "empty_array"],
    ["bad role", { model: "m", messages: [{ role: "wizard", content: "hi" }] }, "messages[0].role", "invalid_value"],
    ["missing role", { model: "m", messages: [{ content: "hi" }] }, "messages[0].role", "missing_required_parameter"],
    ["missing user content", { model: "m", messages: [{ role: "user" }] }, "messages[0].content", "missing_required_parameter"],
    ["content of wrong type", { model: "m", messages: [{ role: "user", content: 5 }] }, "messages[0].content", "invalid_type"],
    ["max_tokens zero", { model: "m", messages: MESSAGES, max_tokens: 0 }, "max_tokens", "integer_below_min_value"],
    ["max_tokens negative", { model: "m", messages: MESSAGES, max_tokens: -3 }, "max_tokens", "integer_below_min_value"],
    ["max_tokens decimal", { model: "m", messages: MESSAGES, max_tokens: 2.5 }, "max_tokens", "invalid_type"],
    ["max_tokens string", { model: "m", messages: MESSAGES, max_tokens: "10" }, "max_tokens", "invalid_type"],
    ["stream not boolean", { model: "m", messages: MESSAGES, stream: "yes" }, "stream", "invalid_type"],
    ["stream_options without stream", { model: "m", messages: MESSAGES, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
    ["stop of wrong type", { model: "m", messages: MESSAGES, stop: 3 }, "stop", "invalid_type"],
  ];

  it.each(openAiCases)("chat: %s -> 400 invalid_request_error", async (_name, body, param, code) => {
    const res = await send("/v1/chat/completions", body);
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: { message: expect.any(String), type: "invalid_request_error", param, code } });
  });

  it("chat: a non-JSON body labelled as a form names the content type", async () => {
    const res = await send("/v1/chat/completions", "hello", { "content-type": "text/plain" });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: { code: "invalid_content_type", message: expect.stringContaining("text/plain") } });
  });

  it("completions: missing or token-id prompt -> 400", async () => {
    expect((await send("/v1/completions", { model: "m" })).json).toMatchObject({ error: { param: "prompt", code: "missing_required_parameter" } });
    expect((await send("/v1/completions", { model: "m", prompt: [1, 2, 3] })).status).toBe(400);
    expect((await send("/v1/completions", { model: "m", prompt: "x", max_tokens: 0 })).json).toMatchObject({ error: { param: "max_tokens" } });
  });

  it.each([
    ["missing max_tokens", { model: "c", messages: MESSAGES }, "max_tokens: Field required"],
    ["missing model", { max_tokens: 5, messages: MESSAGES }, "model: Field required"],
    ["empty messages", { model: "c", max_tokens: 5, messages: [] }, "messages: at least one message is required"],
    ["system role in messages", { model: "c", max_tokens: 5, messages: [{ role: "system", content: "x" }] }, "messages.0.role: Input should be 'user' or 'assistant'"],
    ["max_tokens zero", { model: "c", max_tokens: 0, messages: MESSAGES }, "max_tokens: Input should be greater than or equal to 1"],
    ["bad JSON", "{", "There was an error parsing the body of your request as JSON"],
  ])("messages: %s -> Anthropic-style 400", async (_name, body, message) => {
    const res = await send("/v1/messages", body);
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ type: "error", error: { type: "invalid_request_error", message } });
  });

  it("ollama: errors are {error: string}", async () => {
    const res = await send("/api/chat", { messages: MESSAGES });
    expect(res).toEqual({ status: 400, json: { error: "model is required" } });
  });

  it("unknown paths and wrong methods get JSON errors", async () => {
    const missing = await fetch(`${llm.url}/v2/unknown`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { message: "Invalid URL (GET /v2/unknown)", type: "invalid_request_error", param: null, code: "unknown_url" } });
    const wrongMethod = await fetch(`${llm.url}/v1/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(await wrongMethod.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("matches API paths by suffix, so a gateway prefix still lands", async () => {
    const res = await send("/llm/v1/chat/completions", { model: "m", messages: MESSAGES, max_tokens: 2 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ object: "chat.completion", usage: { completion_tokens: 2 } });
  });

  it("rejects bodies above the size limit with 413", async () => {
    const huge = JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }] });
    const exchange = await rawRequest(llm.port, "POST", "/v1/chat/completions", {}, huge).done;
    const head = Buffer.concat(exchange.reads.map((r) => r.bytes)).toString("latin1");
    expect(head.startsWith("HTTP/1.1 413")).toBe(true);
  });
});

describe("main.ts", () => {
  it("prints the listening line, serves, and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "upstream/mock-llm/main.ts", "--port", "0", "--flavor", "sglang"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const match = /^mock-llm listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
          if (match) resolve(match[1]);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: MESSAGES, max_tokens: 1 }) });
      expect(((await res.json()) as { choices: { matched_stop: unknown }[] }).choices[0]).toHaveProperty("matched_stop");
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("refuses an unknown flavor with a usage message", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "upstream/mock-llm/main.ts", "--port", "0", "--flavor", "nope"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stderr).toContain('unknown flavor "nope"');
  });
});
