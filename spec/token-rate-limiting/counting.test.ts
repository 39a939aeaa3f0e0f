// token-rate-limiting through the local gateway and the mock LLM: every usage format is counted
// exactly, the client gets the bytes a direct request would give, byte for byte (usage injection,
// CRLF, keep-alive comments, split chunks, gzip), and a stream that ends without usage is estimated.
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm, type MockRequestRecord } from "../helpers/mock-llm.ts";
import { abortAfter, probeEntry, raw, uniqueId, waitFor, type RawResponse, startLlmGateway, tenantLimiter } from "./helpers.ts";

const DAY_LIMIT = 1_000_000_000;
let llm: MockLlm;
let gw: Gateway;

beforeAll(async () => {
  llm = await startMockLlm();
  gw = await startLlmGateway(llm.url, {
    count: [tenantLimiter({ day: DAY_LIMIT })],
    noinject: [tenantLimiter({ day: DAY_LIMIT, inject_stream_usage: false })],
  });
});

afterAll(async () => {
  await gw?.stop();
  await llm?.stop();
});

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Tell me about token budgets." }] };
const FIXED = { "x-mock-created": "1700000000" };

async function record(res: RawResponse): Promise<MockRequestRecord> {
  const id = Number(res.headers["x-mock-record-id"]);
  expect(id, "the response came from the mock").toBeGreaterThan(0);
  return waitFor(`mock record ${id}`, async () => (await llm.requests()).find((r) => r.id === id));
}

interface Sent {
  res: RawResponse;
  id: string;
  tenant: string;
}

async function viaGateway(route: string, path: string, body: object, headers: Record<string, string> = {}, tenant = uniqueId("t")): Promise<Sent> {
  const id = uniqueId("req");
  const res = await raw(`${gw.url}/${route}${path}`, { headers: { ...FIXED, ...headers, "x-tenant": tenant, "x-test-id": id }, body: JSON.stringify(body), allowAbort: true });
  return { res, id, tenant };
}

/** The day budget a tenant had left, read from the headers of a minimal request, and what that request cost. */
async function budget(tenant: string): Promise<{ remaining: number; probeCost: number }> {
  const probe = await viaGateway("count", "/v1/chat/completions", { ...CHAT, max_tokens: 1 }, {}, tenant);
  expect(probe.res.status).toBe(200);
  const entry = await probeEntry(gw, probe.id); // its own settlement must not race the next reader
  return { remaining: Number(probe.res.headers["x-ratelimit-remaining-tokens-day"]), probeCost: entry.token_rate_limiting!.cost };
}

async function remainingFor(tenant: string): Promise<number> {
  return (await budget(tenant)).remaining;
}

/**
 * The direct stream as the gateway's client gets it when the upstream writes a keep-alive comment
 * before every event: the upstream also wrote one before the usage chunk the plugin asked for, and
 * the plugin removes only that event. The comment stays, because a comment is its own block
 * (`: ping` and a blank line) that says nothing about the next event; real servers send them on a
 * timer, and dropping one would change a stream whose comment was not the plugin's doing. So the
 * client gets exactly one comment more than a direct request, just before the last comment (the one
 * before `data: [DONE]`); every other byte must match.
 */
function withOneMoreComment(direct: Buffer): Buffer {
  const text = direct.toString("latin1");
  const comment = /: ping(\r\n|\n|\r)\1/g;
  let last = -1;
  let block = "";
  for (let m = comment.exec(text); m !== null; m = comment.exec(text)) {
    last = m.index;
    block = m[0];
  }
  expect(last, "the direct stream has keep-alive comments").toBeGreaterThan(0);
  return Buffer.from(text.slice(0, last) + block + text.slice(last), "latin1");
}

describe("token-rate-limiting counts every usage format exactly", () => {
  const cases: { name: string; path: string; body: object; headers?: Record<string, string>; dialect: string }[] = [
    { name: "OpenAI stream, client asked include_usage", path: "/v1/chat/completions", body: { ...CHAT, stream: true, stream_options: { include_usage: true } }, dialect: "openai" },
    { name: "OpenAI stream, usage injected", path: "/v1/chat/completions", body: { ...CHAT, stream: true }, dialect: "openai" },
    { name: "OpenAI non-stream JSON", path: "/v1/chat/completions", body: CHAT, dialect: "openai" },
    { name: "OpenAI legacy completions stream", path: "/v1/completions", body: { model: "gpt-3.5-turbo-instruct", prompt: "Say hi", stream: true }, dialect: "openai" },
    { name: "vLLM stream with include_usage", path: "/v1/chat/completions", body: { ...CHAT, stream: true, stream_options: { include_usage: true } }, headers: { "x-mock-flavor": "vllm" }, dialect: "openai" },
    { name: "vLLM continuous_usage_stats (cumulative, last wins)", path: "/v1/chat/completions", body: { ...CHAT, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } }, headers: { "x-mock-flavor": "vllm" }, dialect: "openai" },
    { name: "vLLM stream, usage injected", path: "/v1/chat/completions", body: { ...CHAT, stream: true }, headers: { "x-mock-flavor": "vllm" }, dialect: "openai" },
    { name: "SGLang stream with include_usage", path: "/v1/chat/completions", body: { ...CHAT, stream: true, stream_options: { include_usage: true } }, headers: { "x-mock-flavor": "sglang" }, dialect: "openai" },
    { name: "Anthropic Messages stream", path: "/v1/messages", body: { model: "claude-3-5-haiku-latest", max_tokens: 64, stream: true, messages: CHAT.messages }, headers: { "anthropic-version": "2023-06-01" }, dialect: "anthropic" },
    { name: "Anthropic Messages stream with cache tokens", path: "/v1/messages", body: { model: "claude-3-5-haiku-latest", max_tokens: 64, stream: true, messages: CHAT.messages }, headers: { "anthropic-version": "2023-06-01", "x-mock-cache-read-input-tokens": "100", "x-mock-cache-creation-input-tokens": "20" }, dialect: "anthropic" },
    { name: "Anthropic Messages JSON", path: "/v1/messages", body: { model: "claude-3-5-haiku-latest", max_tokens: 64, messages: CHAT.messages }, headers: { "anthropic-version": "2023-06-01" }, dialect: "anthropic" },
    { name: "Ollama NDJSON stream", path: "/api/chat", body: { model: "llama3.2", messages: CHAT.messages }, dialect: "ollama" },
    { name: "Ollama JSON", path: "/api/chat", body: { model: "llama3.2", messages: CHAT.messages, stream: false }, dialect: "ollama" },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const sent = await viaGateway("count", c.path, c.body, c.headers);
      expect(sent.res.status).toBe(200);
      const rec = await record(sent.res);
      expect(rec.outcome).toBe("completed");
      const usage = rec.usage!;
      const entry = await probeEntry(gw, sent.id);
      const log = entry.token_rate_limiting!;
      expect(log).toMatchObject({
        prompt: usage.prompt_tokens,
        completion: usage.completion_tokens,
        total: usage.total_tokens,
        cost: usage.total_tokens,
        estimated: false,
        source: "usage",
        format: c.dialect,
        limited: false,
      });
      // The counter moved by exactly the reported total.
      expect(await remainingFor(sent.tenant)).toBe(DAY_LIMIT - usage.total_tokens);
    });
  }
});

describe("token-rate-limiting leaves the client's bytes as a direct request gives them", () => {
  async function direct(path: string, body: object, headers: Record<string, string> = {}): Promise<RawResponse> {
    return raw(`${llm.url}${path}`, { headers: { ...FIXED, ...headers }, body: JSON.stringify(body) });
  }

  const streams: { name: string; headers: Record<string, string> }[] = [
    { name: "OpenAI", headers: {} },
    { name: "vLLM", headers: { "x-mock-flavor": "vllm" } },
    { name: "OpenAI with CRLF line endings", headers: { "x-mock-crlf": "1" } },
    { name: "OpenAI with keep-alive comments", headers: { "x-mock-keepalive-comments": "1" } },
    { name: "OpenAI split into small writes", headers: { "x-mock-split": "1" } },
    { name: "vLLM with CRLF, comments and split writes", headers: { "x-mock-flavor": "vllm", "x-mock-crlf": "1", "x-mock-keepalive-comments": "1", "x-mock-split": "1" } },
  ];

  for (const s of streams) {
    it(`injects include_usage, removes the usage chunk and counts exactly: ${s.name}`, async () => {
      const body = { ...CHAT, stream: true };
      const expected = await direct("/v1/chat/completions", body, s.headers);
      expect(expected.text).not.toContain('"usage"');
      const sent = await viaGateway("count", "/v1/chat/completions", body, s.headers);
      expect(sent.res.status).toBe(200);
      // The mock's id ignores stream_options (its README), so the ids match too: byte for byte.
      const want = s.headers["x-mock-keepalive-comments"] ? withOneMoreComment(expected.body) : expected.body;
      expect(sent.res.text).toBe(want.toString("utf8"));
      expect(sent.res.body.equals(want)).toBe(true);

      const rec = await record(sent.res);
      expect((rec.body as { stream_options?: unknown }).stream_options).toEqual({ include_usage: true });
      const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
      expect(log).toMatchObject({ injected: true, estimated: false, prompt: rec.usage!.prompt_tokens, completion: rec.usage!.completion_tokens });
    });
  }

  it("passes a stream unchanged when injection is off, and estimates it", async () => {
    const body = { ...CHAT, stream: true };
    const expected = await direct("/v1/chat/completions", body);
    const sent = await viaGateway("noinject", "/v1/chat/completions", body);
    expect(sent.res.body.equals(expected.body)).toBe(true);
    const rec = await record(sent.res);
    expect((rec.body as { stream_options?: unknown }).stream_options).toBeUndefined();
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ injected: false, estimated: true, source: "estimate" });
    expect(log.completion).toBeGreaterThan(0);
  });

  it("asks the upstream for identity encoding", async () => {
    const sent = await viaGateway("count", "/v1/chat/completions", CHAT, { "accept-encoding": "gzip, br" });
    const rec = await record(sent.res);
    expect(rec.headers["accept-encoding"]).toBe("identity");
  });

  it("decodes a gzip stream the upstream sends anyway, and passes it compressed to the client", async () => {
    const body = { ...CHAT, stream: true, stream_options: { include_usage: true } };
    const headers = { "x-mock-gzip": "1", "accept-encoding": "gzip" };
    const expected = await direct("/v1/chat/completions", body, headers);
    expect(expected.headers["content-encoding"]).toBe("gzip");
    const sent = await viaGateway("count", "/v1/chat/completions", body, headers);
    expect(sent.res.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(sent.res.body).equals(gunzipSync(expected.body))).toBe(true);
    const rec = await record(sent.res);
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ estimated: false, prompt: rec.usage!.prompt_tokens, completion: rec.usage!.completion_tokens });
  });

  it("sends a gzip stream decoded when it must remove the injected usage chunk", async () => {
    const body = { ...CHAT, stream: true };
    const headers = { "x-mock-gzip": "1", "accept-encoding": "gzip" };
    const expected = gunzipSync((await direct("/v1/chat/completions", body, headers)).body);
    const sent = await viaGateway("count", "/v1/chat/completions", body, headers);
    expect(sent.res.headers["content-encoding"]).toBeUndefined();
    expect(sent.res.text).toBe(expected.toString("utf8"));
    expect(sent.res.body.equals(expected)).toBe(true);
    const rec = await record(sent.res);
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ injected: true, estimated: false, total: rec.usage!.total_tokens });
  });

  it("decodes a gzip JSON body", async () => {
    const sent = await viaGateway("count", "/v1/chat/completions", CHAT, { "x-mock-gzip": "1", "accept-encoding": "gzip" });
    expect(sent.res.headers["content-encoding"]).toBe("gzip");
    const rec = await record(sent.res);
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ estimated: false, total: rec.usage!.total_tokens });
  });
});

describe("token-rate-limiting reads large request bodies", () => {
  it("reads a body Kong buffers to a file (over 8 KiB): model, stream and prompt estimate", async () => {
    const content = "Explain this log line. ".repeat(2000); // about 46 KB
    const sent = await viaGateway("count", "/v1/chat/completions", { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content }] });
    expect(sent.res.status).toBe(200);
    const rec = await record(sent.res);
    expect((rec.body as { stream_options?: unknown }).stream_options).toEqual({ include_usage: true });
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ model: "gpt-4o-mini", stream: true, injected: true, estimated: false, prompt: rec.usage!.prompt_tokens });
    expect(rec.usage!.prompt_tokens).toBeGreaterThan(8000);
  });
});

describe("token-rate-limiting estimates what has no usage", () => {
  it("counts a client that aborts mid-stream from what was streamed", async () => {
    const tenant = uniqueId("abort");
    const id = uniqueId("req");
    const before = await budget(tenant);
    const body = JSON.stringify({ ...CHAT, stream: true, max_tokens: 200 });
    const { status, read } = await abortAfter(`${gw.url}/count/v1/chat/completions`, { headers: { "x-tenant": tenant, "x-test-id": id, "x-mock-token-delay-ms": "20" }, body }, 600);
    expect(status).toBe(200);
    expect(read.length).toBeGreaterThanOrEqual(600);
    const entry = await probeEntry(gw, id, 10_000);
    const log = entry.token_rate_limiting!;
    expect(log).toMatchObject({ estimated: true, source: "estimate" });
    expect(log.prompt).toBeGreaterThan(0);
    expect(log.completion).toBeGreaterThan(0);
    const rec = await waitFor("the aborted record", async () => (await llm.requests()).find((r) => (r.headers["x-test-id"] as string) === id));
    expect(rec.outcome).toBe("client_disconnected");
    // Never more than the upstream actually generated (allowing the estimate's 4 chars per token).
    expect(log.completion).toBeLessThanOrEqual(rec.tokens_sent * 4);
    expect(await remainingFor(tenant)).toBe(before.remaining - before.probeCost - log.cost);
  });

  it("counts an upstream that dies mid-stream as an estimate", async () => {
    const sent = await viaGateway("count", "/v1/chat/completions", { ...CHAT, stream: true, stream_options: { include_usage: true } }, { "x-mock-abort-after-tokens": "5" });
    expect(sent.res.aborted).toBe(true);
    const rec = await record(sent.res);
    expect(rec.outcome).toBe("aborted_by_fault");
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ estimated: true, source: "estimate" });
    expect(log.completion).toBeGreaterThan(0);
  });

  it("counts nothing for a request the upstream refuses with 4xx", async () => {
    const sent = await viaGateway("count", "/v1/chat/completions", CHAT, { "x-mock-fail-status": "400" });
    expect(sent.res.status).toBe(400);
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ cost: 0, source: "upstream_error", estimated: false });
    expect(await remainingFor(sent.tenant)).toBe(DAY_LIMIT);
  });

  it("counts the prompt estimate for an upstream 5xx", async () => {
    const sent = await viaGateway("count", "/v1/chat/completions", CHAT, { "x-mock-fail-status": "503" });
    expect(sent.res.status).toBe(503);
    const log = (await probeEntry(gw, sent.id)).token_rate_limiting!;
    expect(log).toMatchObject({ source: "estimate", estimated: true, completion: 0 });
    expect(log.prompt).toBeGreaterThan(0);
  });
});
