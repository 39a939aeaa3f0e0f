// token-rate-limiting meters compressed answers exactly when another FFI binding in the same
// Lua state declared zlib.h's standard prototypes (real Kong loads lua-ffi-zlib at start):
// declared when the plugin modules load (before token-rate-limiting declares its own), and in
// another gateway declared only after token-rate-limiting decoded a first response, which must
// leave that binding working too. The upstream here compresses whatever it was asked for, with
// gzip, zlib deflate or raw deflate, one flush per event.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { constants, createDeflate, createDeflateRaw, createGzip, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway } from "../helpers/gateway.ts";
import { probeEntry, raw, startLlmGateway, tenantLimiter, uniqueId, waitFor } from "./helpers.ts";

const USAGE = { prompt_tokens: 17, completion_tokens: 12, total_tokens: 29 };
const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Count my tokens." }] };

type Encoding = "gzip" | "deflate" | "deflate-raw" | "identity";
const ENCODINGS: Encoding[] = ["gzip", "deflate", "deflate-raw", "identity"];

function chunk(body: object): string {
  return `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1700000000, model: "gpt-4o-mini", ...body })}\n\n`;
}

const WORDS = ["Tokens ", "are ", "counted ", "from ", "usage, ", "even ", "when ", "the ", "answer ", "is ", "compressed", "."];
const CONTENT_EVENTS = [
  chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }),
  ...WORDS.map((w) => chunk({ choices: [{ index: 0, delta: { content: w }, finish_reason: null }] })),
  chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }),
];
const USAGE_EVENT = chunk({ choices: [], usage: USAGE });
const DONE = "data: [DONE]\n\n";
const JSON_BODY = JSON.stringify({
  id: "c1", object: "chat.completion", created: 1700000000, model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: WORDS.join("") }, finish_reason: "stop" }],
  usage: USAGE,
});

/** What the upstream sends for a request body: every SSE event, or the JSON body. */
function answerFor(body: { stream?: boolean; stream_options?: { include_usage?: boolean } }): string[] {
  if (body.stream !== true) return [JSON_BODY];
  return [...CONTENT_EVENTS, ...(body.stream_options?.include_usage === true ? [USAGE_EVENT] : []), DONE];
}

function decode(encoding: Encoding, body: Buffer): Buffer {
  if (encoding === "gzip") return gunzipSync(body);
  if (encoding === "deflate") return inflateSync(body);
  if (encoding === "deflate-raw") return inflateRawSync(body);
  return body;
}

/** An upstream that compresses with the encoding named by `x-encode`, whatever Accept-Encoding says. */
function startUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(parts).toString("utf8")) as Parameters<typeof answerFor>[0];
        const encoding = (req.headers["x-encode"] ?? "identity") as Encoding;
        const headers: Record<string, string> = { "content-type": body.stream === true ? "text/event-stream; charset=utf-8" : "application/json" };
        if (encoding !== "identity") headers["content-encoding"] = encoding === "gzip" ? "gzip" : "deflate";
        res.writeHead(200, headers);
        const pieces = answerFor(body);
        if (encoding === "identity") {
          for (const p of pieces) res.write(p);
          res.end();
          return;
        }
        const z = encoding === "gzip" ? createGzip() : encoding === "deflate" ? createDeflate() : createDeflateRaw();
        z.on("data", (c: Buffer) => res.write(c));
        const ended = new Promise<void>((resolve) => z.once("end", () => resolve()));
        for (const p of pieces) {
          z.write(p);
          await new Promise<void>((resolve) => z.flush(constants.Z_SYNC_FLUSH, () => resolve()));
        }
        z.end();
        await ended;
        res.end();
      })();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }));
  });
}

let upstream: { url: string; server: Server };

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await new Promise<void>((resolve) => upstream?.server.close(() => resolve()));
});

describe.each([
  { when: "before", fixture: "trl-zlib-early", what: "when the plugin modules load" },
  { when: "after", fixture: "trl-zlib-late", what: "after token-rate-limiting decoded a first response" },
])("token-rate-limiting next to a zlib binding declared $when its own declarations ($what)", ({ fixture }) => {
  let gw: Gateway;

  beforeAll(async () => {
    gw = await startLlmGateway(upstream.url, {
      count: [{ name: fixture }, tenantLimiter({ day: 1_000_000_000 })],
    });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  async function send(encoding: Encoding, body: object): Promise<{ res: Awaited<ReturnType<typeof raw>>; id: string }> {
    const id = uniqueId("zlib");
    const res = await raw(`${gw.url}/count/v1/chat/completions`, {
      headers: { "x-encode": encoding, "accept-encoding": "gzip, deflate", "x-tenant": uniqueId("t"), "x-test-id": id },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    return { res, id };
  }

  async function expectExactCount(id: string): Promise<void> {
    const log = (await probeEntry(gw, id)).token_rate_limiting!;
    expect(log).toMatchObject({ estimated: false, prompt: USAGE.prompt_tokens, completion: USAGE.completion_tokens, total: USAGE.total_tokens });
  }

  /** The fixture's report for a request: its zlib binding still worked. */
  async function expectBindingWorks(id: string): Promise<void> {
    const line = await waitFor(`the binding report of ${id}`, () => gw.errorLog().split("\n").find((l) => l.includes(`TRL_ZLIB_BINDING ${id} `)));
    expect(line).toMatch(new RegExp(`TRL_ZLIB_BINDING ${id} ok\\b`));
  }

  // The first request decodes gzip, so with trl-zlib-late the binding is declared after it.
  const cases = [{ encoding: "gzip" as Encoding, first: true }, ...ENCODINGS.map((encoding) => ({ encoding, first: false }))];

  it.each(cases)("meters a $encoding stream with the injected usage chunk removed (first request: $first)", async ({ encoding }) => {
    const body = { ...CHAT, stream: true };
    const { res, id } = await send(encoding, body);
    // The client did not ask for usage: it gets the stream decoded, without the usage chunk.
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(res.text).toBe([...CONTENT_EVENTS, DONE].join(""));
    await expectExactCount(id);
    await expectBindingWorks(id);
  });

  it.each(ENCODINGS)("meters a %s stream the client asked usage for, passing its bytes on", async (encoding) => {
    const body = { ...CHAT, stream: true, stream_options: { include_usage: true } };
    const { res, id } = await send(encoding, body);
    expect(res.headers["content-encoding"]).toBe(encoding === "identity" ? undefined : encoding === "gzip" ? "gzip" : "deflate");
    expect(decode(encoding, res.body).toString("utf8")).toBe(answerFor(body).join(""));
    await expectExactCount(id);
    await expectBindingWorks(id);
  });

  it.each(ENCODINGS)("meters a %s JSON answer, passing its bytes on", async (encoding) => {
    const { res, id } = await send(encoding, CHAT);
    expect(decode(encoding, res.body).toString("utf8")).toBe(JSON_BODY);
    await expectExactCount(id);
    await expectBindingWorks(id);
  });

  it("logged no metering error", () => {
    const errors = gw.errorLog().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    expect(errors).toEqual([]);
  });
});
