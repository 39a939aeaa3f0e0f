// The seeds' stream-abort script as a test: a client that goes away in the middle of
// an SSE stream through the gateway makes the gateway close its upstream connection too, so the LLM
// stops generating; the mock LLM's request log proves what the upstream saw. Runs against the local
// gateway started from kong/kong.yml, or against Kong when KONG_PROXY_URL is set (tools/e2e.sh).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disconnectRecords, startStackTarget, waitForMockRecord, type StackTarget } from "./target.ts";

let target: StackTarget;

beforeAll(async () => {
  target = await startStackTarget();
  console.log(`[stack] stream abort against ${target.mode === "kong" ? `Kong at ${target.proxyUrl}` : "the local gateway (kong/kong.yml)"}`);
});

afterAll(async () => {
  await target?.stop();
});

/** Reads SSE `data:` events from a response until `count` have arrived; returns them. */
async function readEvents(res: Response, count: number): Promise<string[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const events: string[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) events.push(data);
    }
  }
  return events;
}

describe("stream abort through the gateway (kong/kong.yml, /v1/chat/completions)", () => {
  it("a client abort mid-stream reaches the upstream as a disconnect, before the answer is complete", async () => {
    const id = randomUUID();
    const maxTokens = 200;
    const controller = new AbortController();
    const res = await fetch(`${target.proxyUrl}/v1/chat/completions`, {
      method: "POST",
      signal: controller.signal,
      headers: {
        "content-type": "application/json",
        apikey: target.keys.llm,
        "x-e2e-id": id,
        // 200 tokens at 50 ms each: a stream of ten seconds, aborted after the first few events.
        "x-mock-token-delay-ms": "50",
      },
      body: JSON.stringify({
        model: "mock",
        stream: true,
        max_tokens: maxTokens,
        messages: [{ role: "user", content: "Tell me a long story about a lighthouse keeper." }],
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = await readEvents(res, 3);
    expect(events.length).toBeGreaterThanOrEqual(3);
    const abortedAt = Date.now();
    controller.abort();

    const rec = await waitForMockRecord(target.mockUrl, id, (r) => r.outcome !== undefined && r.outcome !== "pending" && r.outcome !== "in_progress");
    console.log(`[stack] mock LLM record after the abort: outcome=${rec.outcome} tokens_sent=${rec.tokens_sent} (${Date.now() - abortedAt} ms after the abort)`);
    expect(rec.outcome).toBe("client_disconnected");
    expect(rec.tokens_sent).toBeGreaterThanOrEqual(1);
    expect(rec.tokens_sent).toBeLessThan(maxTokens);
    // key-auth's hide_credentials: the upstream never sees the client's key.
    expect(JSON.stringify(rec.headers)).not.toContain(target.keys.llm);
  });

  it("leaves one upstream-disconnect-log record of the client abort, without the key or the prompt", async (ctx) => {
    if (target.mode === "kong") {
      console.log("[stack] against Kong the error log is in `docker compose logs kong`: tools/e2e.sh checks the [upstream-disconnect] records there");
      return ctx.skip();
    }
    const clientAborts = () => disconnectRecords(target.errorLog() ?? "").filter((r) => r.outcome === "client_abort");
    const before = clientAborts().length;
    const id = randomUUID();
    const controller = new AbortController();
    const prompt = "A secret-free prompt that must not be logged: zebra lighthouse";
    const res = await fetch(`${target.proxyUrl}/v1/chat/completions`, {
      method: "POST",
      signal: controller.signal,
      headers: { "content-type": "application/json", apikey: target.keys.llm, "x-e2e-id": id, "x-mock-token-delay-ms": "50" },
      body: JSON.stringify({ model: "mock", stream: true, max_tokens: 200, messages: [{ role: "user", content: prompt }] }),
    });
    await readEvents(res, 2);
    controller.abort();
    await waitForMockRecord(target.mockUrl, id, (r) => r.outcome === "client_disconnected");

    let records = clientAborts();
    const deadline = Date.now() + 5000;
    while (records.length <= before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      records = clientAborts();
    }
    expect(records.length, `a new client_abort record in error.log:\n${target.errorLog()}`).toBe(before + 1);
    expect(records.at(-1)?.path).toBe("/v1/chat/completions");
    const log = target.errorLog() ?? "";
    expect(log).not.toContain(target.keys.llm);
    expect(log).not.toContain("zebra lighthouse");
  });
});
