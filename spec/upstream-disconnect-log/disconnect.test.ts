// upstream-disconnect-log through the local gateway (real nginx + lua-nginx-module) and the mock
// LLM: every class produced on purpose, the record's fields checked against what the client and
// the upstream saw. A second gateway without the plugin proves the client's bytes are unchanged.
//
// Set UDL_RECORDS_OUT=<file> to keep one real record per reason (docs/disconnect-records.md is
// written from it).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startGateway, type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm, type MockRequestRecord } from "../helpers/mock-llm.ts";
import { freePort } from "../helpers/ports.ts";
import {
  call, jsonObjectAt, loggedRecords, recordsFor, sleep, startPlainUpstream, startWsUpstream, waitRecord,
  SERIALIZED_PREFIX, type CallOptions, type CallResult, type DisconnectRecord, type LoggedRecord, type SmallServer,
} from "./helpers.ts";

const PROBE_LUA = join(import.meta.dirname, "lua");
const OUTCOMES = ["completed", "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit"];

let llm: MockLlm;
let plain: SmallServer;
let wsUp: SmallServer;
let gw: Gateway;
let bare: Gateway;
let closedPort: number;
let seq = 0;
const captured = new Map<string, DisconnectRecord>();

function services(withPlugin: boolean): string {
  const plugin = (config: string): string => (withPlugin ? `\n        plugins:\n          - name: upstream-disconnect-log\n            config: ${config}` : "");
  return `
services:
  - name: mock-llm
    url: ${llm.url}
    routes:
      - name: llm
        paths: ["/llm"]
      - name: llm-unbuffered
        paths: ["/ub"]
        request_buffering: false
        response_buffering: false
      - name: quiet
        paths: ["/quiet"]${plugin("{ log_completed: false }")}
      - name: sampled-out
        paths: ["/sampled-out"]${plugin("{ log_completed: true, sample_rate: 0 }")}
      - name: with-query
        paths: ["/with-query"]${plugin("{ log_completed: true, include_query: true, log_level: notice }")}
      - name: keyed
        paths: ["/keyed"]
        plugins:
          - name: key-auth
      - name: metered
        paths: ["/metered"]
        plugins:
          - name: token-rate-limiting
            config: { minute: 100000000, inject_stream_usage: true }
      - name: metered-noinject
        paths: ["/metered-noinject"]
        plugins:
          - name: token-rate-limiting
            config: { minute: 100000000, inject_stream_usage: false }
  - name: slow-llm
    url: ${llm.url}
    read_timeout: 500
    routes:
      - name: slow
        paths: ["/slow"]
      - name: slow-unbuffered
        paths: ["/slow-ub"]
        response_buffering: false
  - name: nowhere
    url: http://127.0.0.1:${closedPort}
    retries: 0
    routes:
      - name: refused
        paths: ["/refused"]
  - name: plain
    url: ${plain.url}
    routes:
      - name: plain
        paths: ["/plain"]
  - name: ws
    url: ${wsUp.url}
    routes:
      - name: ws
        paths: ["/ws"]
  - name: ws-slow
    url: ${wsUp.url}
    read_timeout: 500
    routes:
      - name: ws-slow
        paths: ["/ws-slow"]
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-key
`;
}

beforeAll(async () => {
  closedPort = await freePort();
  [llm, plain, wsUp] = await Promise.all([startMockLlm(), startPlainUpstream(), startWsUpstream()]);
  const yaml = `_format_version: "3.0"\n${services(true)}
plugins:
  - name: upstream-disconnect-log
    config: { log_completed: true }
  - name: udl-serialize-probe
`;
  // info: nginx's own line about closing the upstream after a client abort is at info level
  gw = await startGateway({ yaml, luaPath: [PROBE_LUA], env: { KONG_LOG_LEVEL: "info" } });
  bare = await startGateway({ yaml: `_format_version: "3.0"\n${services(false)}` });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([gw?.stop(), bare?.stop()]);
  await Promise.allSettled([llm?.stop(), plain?.close(), wsUp?.close()]);
  const out = process.env.UDL_RECORDS_OUT;
  if (out) writeFileSync(out, JSON.stringify(Object.fromEntries(captured), null, 2) + "\n");
});

/** A path no other request uses: the record is found by it (the mock matches by suffix). */
function tagged(prefix: string, rest: string): string {
  seq += 1;
  return `${prefix}/t${seq}-${Date.now().toString(36)}${rest}`;
}

const CHAT = "/v1/chat/completions";
const PROMPT = "Tell me about the rivers of Europe, in detail.";

function chat(extra: object = {}): object {
  return { model: "mock-model", stream: true, messages: [{ role: "user", content: PROMPT }], ...extra };
}

/** The mock's record of the request whose path ends with `suffix` (after the route prefix was stripped). */
async function mockRecord(suffix: string): Promise<MockRequestRecord> {
  const until = Date.now() + 10_000;
  for (;;) {
    const found = (await llm.requests()).filter((r) => r.path.split("?")[0].endsWith(suffix));
    if (found.length === 1) return found[0];
    if (found.length > 1) throw new Error(`several mock records for ${suffix}`);
    if (Date.now() > until) throw new Error(`no mock record for ${suffix}`);
    await sleep(50);
  }
}

function keep(rec: DisconnectRecord): DisconnectRecord {
  const key = `${rec.outcome}/${rec.reason}`;
  if (!captured.has(key)) captured.set(key, rec);
  return rec;
}

async function recordOf(path: string): Promise<DisconnectRecord> {
  const { record, line } = await waitRecord(gw, path);
  expect(line).toMatch(/\[warn\]|\[notice\]/);
  expect(record.schema_version).toBe(1);
  expect(OUTCOMES).toContain(record.outcome);
  return keep(record);
}

/** What every record of a proxied request carries, checked against the client's view. */
function expectCommon(rec: DisconnectRecord, path: string, res: CallResult | undefined, route: string, service: string): void {
  expect(rec.path).toBe(path);
  expect(rec.route?.name).toBe(route);
  expect(rec.route?.id).toMatch(/\S/);
  expect(rec.service?.name).toBe(service);
  expect(rec.request_id).toMatch(/^[0-9a-f]{32}$/);
  if (res?.headers["x-kong-request-id"] !== undefined) expect(rec.request_id).toBe(res.headers["x-kong-request-id"]);
  const started = Date.parse(rec.started_at);
  const ended = Date.parse(rec.ended_at);
  expect(Number.isFinite(started)).toBe(true);
  expect(Math.abs(ended - started - rec.duration_ms)).toBeLessThanOrEqual(2);
  if (res !== undefined) expect(rec.duration_ms).toBeLessThanOrEqual(res.elapsedMs + 50);
}

describe("completed responses (log_completed on)", () => {
  it("an SSE stream that reached [DONE]: usage as reported, bytes and events as the client got them", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path + "?api_key=SECRET-IN-QUERY", {
      body: chat({ stream_options: { include_usage: true } }),
      headers: { authorization: "Bearer sk-SECRET-KEY", "x-mock-token-delay-ms": "5" },
    });
    expect(res.status).toBe(200);
    expect(res.ending).toBe("end");
    const rec = await recordOf(path);
    const mock = await mockRecord(path.slice("/llm".length));
    expectCommon(rec, path, res, "llm", "mock-llm");
    expect(rec).toMatchObject({
      outcome: "completed", reason: "terminator", status: 200, upstream_status: 200, kind: "sse", method: "POST",
      upstream_addr: `127.0.0.1:${llm.port}`, upstream_tries: 1, last_finish_reason: mock.finish_reason,
    });
    expect(rec.bytes_to_client).toBe(res.body.length);
    expect(rec.sse_events).toBe(res.events);
    expect(rec.bytes_from_upstream).toBeGreaterThan(res.body.length);
    expect(rec.tokens).toEqual({ prompt: mock.usage!.prompt_tokens, completion: mock.usage!.completion_tokens, total: mock.usage!.total_tokens, estimated: false, source: "usage" });
    expect(rec.ttfb_ms).toBeGreaterThanOrEqual(0);
    expect(rec.time_to_first_data_ms).toBeGreaterThanOrEqual(rec.ttfb_ms!);
    expect(rec.duration_ms).toBeGreaterThanOrEqual(rec.time_to_first_data_ms!);
    expect(rec.content_type).toMatch(/^text\/event-stream/);
    // no prompt, no key, no query in the record
    const json = JSON.stringify(rec);
    for (const secret of ["SECRET-IN-QUERY", "sk-SECRET-KEY", "rivers of Europe", "api_key"]) expect(json).not.toContain(secret);
  });

  it("the log serializer carries the same record (seen by a plugin at file-log's PRIORITY 9)", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path, { body: chat() });
    const rec = await recordOf(path);
    const serialized = gw.errorLog().split("\n")
      .filter((l) => l.includes(SERIALIZED_PREFIX + "{"))
      .map((l) => JSON.parse(jsonObjectAt(l, l.indexOf(SERIALIZED_PREFIX) + SERIALIZED_PREFIX.length)) as DisconnectRecord)
      .filter((r) => r.request_id === res.headers["x-kong-request-id"]);
    expect(serialized).toEqual([rec]);
  });

  it("NDJSON (Ollama /api/chat): done:true ends it, counts from prompt_eval_count/eval_count", async () => {
    const path = tagged("/llm", "/api/chat");
    const res = await call(gw.url + path, { body: { model: "llama3.2", messages: [{ role: "user", content: PROMPT }] } });
    expect(res.status).toBe(200);
    const rec = await recordOf(path);
    const mock = await mockRecord(path.slice("/llm".length));
    expect(rec).toMatchObject({ outcome: "completed", reason: "terminator", kind: "ndjson", last_finish_reason: mock.finish_reason });
    expect(rec.sse_events).toBe(res.body.toString().trim().split("\n").length);
    expect(rec.bytes_to_client).toBe(res.body.length);
    expect(rec.tokens).toEqual({ prompt: mock.usage!.prompt_tokens, completion: mock.usage!.completion_tokens, total: mock.usage!.total_tokens, estimated: false, source: "usage" });
  });

  it("a non-stream JSON answer and a plain chunked body", async () => {
    const jsonPath = tagged("/llm", CHAT);
    const jsonRes = await call(gw.url + jsonPath, { body: chat({ stream: false }) });
    const json = await recordOf(jsonPath);
    expect(json).toMatchObject({ outcome: "completed", reason: "terminator", kind: "body", sse_events: 0, bytes_to_client: jsonRes.body.length });
    expect(json.tokens.estimated).toBe(false);

    const chunkedPath = tagged("/plain", "/chunked");
    const chunkedRes = await call(gw.url + chunkedPath);
    expect(chunkedRes.headers["transfer-encoding"]).toBe("chunked");
    const chunked = await recordOf(chunkedPath);
    expect(chunked).toMatchObject({ outcome: "completed", reason: "body_complete", kind: "chunked", bytes_to_client: chunkedRes.body.length, sse_events: 0 });
    expect(chunked.tokens.estimated).toBe(true);
  });

  it("log_completed off writes nothing for a completed stream, and still writes an abnormal one", async () => {
    const donePath = tagged("/quiet", CHAT);
    await call(gw.url + donePath, { body: chat() });
    const cutPath = tagged("/quiet", CHAT);
    await call(gw.url + cutPath, { body: chat(), headers: { "x-mock-abort-after-tokens": "2" } });
    // one worker handles both in order: the first one's log phase ran before the second's
    expect((await recordOf(cutPath)).outcome).toBe("upstream_abort");
    expect(recordsFor(gw, donePath)).toEqual([]);
    expect((await mockRecord(donePath.slice("/quiet".length))).outcome).toBe("completed");
  });

  it("sample_rate 0 keeps no completed record, abnormal ones still", async () => {
    const donePaths = [tagged("/sampled-out", CHAT), tagged("/sampled-out", CHAT), tagged("/sampled-out", CHAT)];
    for (const p of donePaths) await call(gw.url + p, { body: chat() });
    const cutPath = tagged("/sampled-out", CHAT);
    await call(gw.url + cutPath, { body: chat(), headers: { "x-mock-abort-after-tokens": "1" } });
    expect((await recordOf(cutPath)).outcome).toBe("upstream_abort");
    for (const p of donePaths) expect(recordsFor(gw, p)).toEqual([]);
  });

  it("include_query keeps the query with credential values redacted, at the configured level", async () => {
    const path = tagged("/with-query", CHAT);
    await call(gw.url + path + "?user=bob&api_key=SECRET-Q&stream=1", { body: chat() });
    const withQuery = path + "?user=bob&api_key=REDACTED&stream=1";
    await waitRecord(gw, withQuery);
    const found = loggedRecords(gw).filter((r) => r.record.path.startsWith(path));
    expect(found).toHaveLength(1);
    expect(found[0].record.path).toBe(withQuery);
    expect(found[0].line).toContain("[notice]");
    keep(found[0].record);
  });
});

describe("client_abort", () => {
  it("before the first token (ttft 2 s, client gone at 300 ms): status 499, nothing sent, upstream told", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-ttft-ms": "2000" }, abortAfterMs: 300 });
    expect(res.ending).toBe("aborted-by-client");
    expect(res.status).toBeUndefined();
    const rec = await recordOf(path);
    expectCommon(rec, path, undefined, "llm", "mock-llm");
    expect(rec).toMatchObject({ outcome: "client_abort", reason: "client_closed_before_response", status: 499, upstream_status: 200, bytes_to_client: 0, sse_events: 0 });
    expect(rec.time_to_first_data_ms).toBeUndefined();
    expect(rec.duration_ms).toBeGreaterThanOrEqual(250);
    expect(rec.duration_ms).toBeLessThan(1500);
    expect(rec.tokens.estimated).toBe(true);
    expect(rec.tokens.completion).toBe(0);
    expect(rec.tokens.prompt).toBeGreaterThan(0);
    // nginx closed the upstream connection when the client left
    const mock = await mockRecord(path.slice("/llm".length));
    expect(mock.outcome).toBe("client_disconnected");
    expect(mock.tokens_sent).toBe(0);
    expect(mock.duration_ms).toBeLessThan(res.elapsedMs + 500);
  });

  it.each([
    ["buffered", "/llm", "llm"],
    ["unbuffered", "/ub", "llm-unbuffered"],
  ])("mid-stream on a %s route: status stays 200, the record shows how far it got, nginx closes the upstream", async (_kind, prefix, route) => {
    const path = tagged(prefix, CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-token-delay-ms": "60" }, abortAfterEvents: 4 });
    expect(res.status).toBe(200);
    expect(res.ending).toBe("aborted-by-client");
    const rec = await recordOf(path);
    const mock = await mockRecord(path.slice(prefix.length));
    expectCommon(rec, path, res, route, "mock-llm");
    expect(rec).toMatchObject({ outcome: "client_abort", reason: "client_closed_mid_response", status: 200, upstream_status: 200, kind: "sse" });
    expect(rec.last_finish_reason).toBeUndefined();
    // nginx may have passed a little more to the socket than the client read before hanging up
    expect(rec.bytes_to_client).toBeGreaterThanOrEqual(res.body.length);
    expect(rec.sse_events).toBeGreaterThanOrEqual(4);
    expect(rec.sse_events).toBeLessThan(mock.usage!.completion_tokens);
    expect(rec.tokens.estimated).toBe(true);
    expect(rec.tokens.completion).toBeGreaterThan(0);
    // nginx noticed the client's close and closed the upstream connection...
    const nginxSays = gw.errorLog().split("\n").filter((l) => l.includes(`request: "POST ${path} HTTP/1.1"`) && l.includes("[info]"));
    expect(nginxSays.join("\n")).toContain("client prematurely closed connection, so upstream connection is closed too");
    // ...and the upstream saw the disconnect long before its stream would have ended
    expect(mock.outcome).toBe("client_disconnected");
    expect(mock.tokens_sent).toBeLessThan(mock.usage!.completion_tokens);
    expect(mock.tokens_sent).toBeGreaterThanOrEqual(3);
    expect(mock.duration_ms).toBeLessThan(res.elapsedMs + 500);
  });
});

describe("upstream_abort", () => {
  it("the upstream closes mid-stream (abort_after_tokens 3): truncated stream, no finish reason", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-abort-after-tokens": "3", "x-mock-token-delay-ms": "20" } });
    expect(res.status).toBe(200);
    expect(res.ending).not.toBe("end");
    const rec = await recordOf(path);
    const mock = await mockRecord(path.slice("/llm".length));
    expect(mock.outcome).toBe("aborted_by_fault");
    expectCommon(rec, path, res, "llm", "mock-llm");
    expect(rec).toMatchObject({ outcome: "upstream_abort", reason: "closed_mid_response", status: 200, upstream_status: 200, kind: "sse" });
    expect(rec.bytes_to_client).toBe(res.body.length);
    expect(rec.sse_events).toBe(res.events);
    expect(rec.last_finish_reason).toBeUndefined();
    expect(rec.tokens.estimated).toBe(true);
    expect(rec.idle_before_end_ms).toBeLessThan(1000);
  });

  it("the upstream closes after reading the request, before any header: 502 from the gateway", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path, { body: chat({ stream: false }), headers: { "x-mock-abort-after-tokens": "1" } });
    expect(res.status).toBe(502);
    const rec = await recordOf(path);
    expect((await mockRecord(path.slice("/llm".length))).outcome).toBe("aborted_by_fault");
    expect(rec).toMatchObject({ outcome: "upstream_abort", reason: "closed_before_headers", status: 502, upstream_status: 502, method: "POST", upstream_tries: 1, sse_events: 0, bytes_from_upstream: 0 });
  });

  it("NDJSON cut mid-stream", async () => {
    const path = tagged("/llm", "/api/chat");
    const res = await call(gw.url + path, { body: { model: "llama3.2", messages: [{ role: "user", content: PROMPT }] }, headers: { "x-mock-abort-after-tokens": "3" } });
    const rec = await recordOf(path);
    expect(rec).toMatchObject({ outcome: "upstream_abort", reason: "closed_mid_response", kind: "ndjson", bytes_to_client: res.body.length });
  });

  it("a plain chunked body cut, and a body shorter than its Content-Length", async () => {
    const cutPath = tagged("/plain", "/chunked-cut");
    const cutRes = await call(gw.url + cutPath);
    const cut = await recordOf(cutPath);
    expect(cut).toMatchObject({ outcome: "upstream_abort", reason: "closed_mid_response", kind: "chunked", bytes_to_client: cutRes.body.length });

    const shortPath = tagged("/plain", "/short");
    const shortRes = await call(gw.url + shortPath);
    expect(shortRes.body.length).toBe(50);
    const short = await recordOf(shortPath);
    expect(short).toMatchObject({ outcome: "upstream_abort", reason: "closed_mid_response", kind: "body", bytes_to_client: 50 });
  });

  it("an LLM stream whose body ends cleanly without its terminator", async () => {
    const path = tagged("/plain", "/sse-no-done");
    const res = await call(gw.url + path);
    expect(res.ending).toBe("end");
    const rec = await recordOf(path);
    expect(rec).toMatchObject({ outcome: "upstream_abort", reason: "no_terminator", kind: "sse", sse_events: 3, bytes_to_client: res.body.length });
    expect(rec.tokens).toMatchObject({ completion: 5, estimated: true }); // ceil(17 chars / 4)
  });
});

describe("upstream_timeout", () => {
  it.each([
    ["buffered", "/slow", "slow"],
    ["unbuffered", "/slow-ub", "slow-unbuffered"],
  ])("a stall past read_timeout (500 ms) after 3 tokens, %s route", async (_kind, prefix, route) => {
    const path = tagged(prefix, CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-stall-after-tokens": "3", "x-mock-token-delay-ms": "30" } });
    expect(res.status).toBe(200);
    const rec = await recordOf(path);
    const mock = await mockRecord(path.slice(prefix.length));
    expectCommon(rec, path, res, route, "slow-llm");
    expect(rec).toMatchObject({ outcome: "upstream_timeout", reason: "read_timeout_mid_response", status: 200, upstream_status: 200 });
    expect(rec.bytes_to_client).toBe(res.body.length);
    expect(rec.sse_events).toBe(res.events);
    expect(rec.idle_before_end_ms).toBeGreaterThanOrEqual(175);
    expect(rec.idle_before_end_ms).toBeLessThan(1500);
    expect(mock.outcome).toBe("client_disconnected");
    expect(mock.tokens_sent).toBe(3);
  });

  it("headers but no first token within read_timeout", async () => {
    const path = tagged("/slow", CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-ttft-ms": "3000" } });
    expect(res.body.length).toBe(0);
    const rec = await recordOf(path);
    expect(rec).toMatchObject({ outcome: "upstream_timeout", reason: "read_timeout_mid_response", bytes_to_client: 0, sse_events: 0 });
    expect(rec.time_to_first_data_ms).toBeUndefined();
    expect(rec.idle_before_end_ms).toBeGreaterThanOrEqual(400);
  });

  it("no headers within read_timeout: the gateway answers 504", async () => {
    const path = tagged("/slow", CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-header-delay-ms": "3000" } });
    expect(res.status).toBe(504);
    const rec = await recordOf(path);
    expect(rec).toMatchObject({ outcome: "upstream_timeout", reason: "read_timeout_before_headers", status: 504, upstream_status: 504, method: "POST" });
    expect(rec.duration_ms).toBeGreaterThanOrEqual(450);
    expect(rec.bytes_to_client).toBe(res.body.length);
  });
});

describe("upstream_error", () => {
  it("the upstream answers 503", async () => {
    const path = tagged("/llm", CHAT);
    const res = await call(gw.url + path, { body: chat(), headers: { "x-mock-fail-status": "503" } });
    expect(res.status).toBe(503);
    const rec = await recordOf(path);
    expectCommon(rec, path, res, "llm", "mock-llm");
    expect(rec).toMatchObject({ outcome: "upstream_error", reason: "upstream_5xx", status: 503, upstream_status: 503, bytes_to_client: res.body.length });
    expect(rec.tokens.completion).toBe(0);
  });

  it("connection refused: 502 from the gateway, the address tried", async () => {
    const path = tagged("/refused", CHAT);
    const res = await call(gw.url + path, { body: chat() });
    expect(res.status).toBe(502);
    const rec = await recordOf(path);
    expectCommon(rec, path, res, "refused", "nowhere");
    expect(rec).toMatchObject({ outcome: "upstream_error", reason: "connect_failed", method: "POST", status: 502, upstream_status: 502, upstream_addr: `127.0.0.1:${closedPort}`, bytes_from_upstream: 0 });
  });
});

describe("gateway_exit", () => {
  it("key-auth answers 401 without calling the upstream; a valid key goes through", async () => {
    const before = (await llm.requests()).length;
    const path = tagged("/keyed", CHAT);
    const res = await call(gw.url + path, { body: chat() });
    expect(res.status).toBe(401);
    const rec = await recordOf(path);
    expectCommon(rec, path, res, "keyed", "mock-llm");
    expect(rec).toMatchObject({ outcome: "gateway_exit", reason: "plugin_exit", status: 401, bytes_to_client: res.body.length, bytes_from_upstream: 0 });
    expect(rec.upstream_status).toBeUndefined();
    expect(rec.tokens).toEqual({ prompt: 0, completion: 0, total: 0, estimated: false, source: "not_proxied" });
    expect((await llm.requests()).length).toBe(before);

    const okPath = tagged("/keyed", CHAT);
    await call(gw.url + okPath, { body: chat(), headers: { apikey: "alice-key" } });
    const ok = await recordOf(okPath);
    expect(ok.outcome).toBe("completed");
    expect(ok.consumer_id).toMatch(/\S/);
    expect(JSON.stringify(ok)).not.toContain("alice-key");
  });
});

describe("no route", () => {
  it("Kong's 404 is a gateway exit without route or service", async () => {
    const path = tagged("/no-such-route", "/x");
    const res = await call(gw.url + path);
    expect(res.status).toBe(404);
    const rec = await recordOf(path);
    expect(rec).toMatchObject({ outcome: "gateway_exit", reason: "no_route", status: 404, method: "GET", bytes_to_client: res.body.length });
    expect(rec.route).toBeUndefined();
    expect(rec.service).toBeUndefined();
  });
});

describe("after token-rate-limiting (905) rewrote the stream", () => {
  /** The counts token-rate-limiting put in the log serializer for this response (the probe writes them). */
  async function trlCounted(res: CallResult): Promise<DisconnectRecord["tokens"]> {
    const prefix = "[udl-trl-serialized] ";
    const id = res.headers["x-kong-request-id"];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const until = Date.now() + 5000;
    for (;;) {
      for (const line of gw.errorLog().split("\n")) {
        const at = line.indexOf(prefix + "{");
        if (at < 0) continue;
        const { request_id, ...tokens } = JSON.parse(jsonObjectAt(line, at + prefix.length)) as DisconnectRecord["tokens"] & { request_id: string };
        if (request_id === id) return tokens;
      }
      if (Date.now() > until) throw new Error(`no token-rate-limiting counts logged for request ${String(id)}`);
      await sleep(50);
    }
  }

  it("counts the bytes the client got, and the exact tokens token-rate-limiting read from the chunk it removed", async () => {
    const path = tagged("/metered", CHAT);
    const res = await call(gw.url + path, { body: chat() }); // the client did not ask for usage
    expect(res.status).toBe(200);
    const mock = await mockRecord(path.slice("/metered".length));
    expect((mock.body as { stream_options?: unknown }).stream_options).toEqual({ include_usage: true }); // token-rate-limiting asked for it...
    expect(mock.usage_sent).toBe(true);
    expect(res.body.toString()).not.toContain('"usage"'); // ...and removed it from the client's stream
    const rec = await recordOf(path);
    expect(rec.outcome).toBe("completed");
    expect(rec.bytes_to_client).toBe(res.body.length);
    expect(rec.sse_events).toBe(res.events);
    // Not the estimate this plugin would make from the client's bytes: what token-rate-limiting
    // published in kong.ctx.shared (ai_gateway_tokens).
    expect(rec.tokens).toEqual({ prompt: mock.usage!.prompt_tokens, completion: mock.usage!.completion_tokens, total: mock.usage!.total_tokens, estimated: false, source: "usage" });
    expect(await trlCounted(res)).toEqual(rec.tokens);
  });

  it("without injection token-rate-limiting estimates, and the record carries the same estimate", async () => {
    const path = tagged("/metered-noinject", CHAT);
    const res = await call(gw.url + path, { body: chat() });
    expect(res.status).toBe(200);
    const mock = await mockRecord(path.slice("/metered-noinject".length));
    expect(mock.usage_sent).toBe(false);
    const rec = await recordOf(path);
    expect(rec.tokens).toMatchObject({ estimated: true, source: "estimate" });
    expect(rec.tokens.completion).toBeGreaterThan(0);
    expect(await trlCounted(res)).toEqual(rec.tokens);
  });
});

describe("WebSocket (101)", () => {
  interface WsRun {
    path: string;
    closeCode: number;
    elapsedMs: number;
  }

  function wsSession(prefix: string, mode: string, client: (ws: WebSocket) => void): Promise<WsRun> {
    const path = tagged(prefix, "/socket");
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}?mode=${mode}`);
      ws.on("open", () => client(ws));
      ws.on("close", (code) => resolve({ path, closeCode: code, elapsedMs: Date.now() - started }));
      ws.on("error", (e) => reject(e));
    });
  }

  const sayHelloThenClose = (extra?: string) => (ws: WebSocket): void => {
    ws.send("hello");
    let echoes = 0;
    const wanted = extra === undefined ? 1 : 2;
    if (extra !== undefined) ws.send(extra);
    ws.on("message", () => {
      if (++echoes === wanted) setTimeout(() => ws.close(1000, "done"), 150);
    });
  };

  it("closed by the client: duration and bytes each way; who closed is not claimed", async () => {
    const a = await wsSession("/ws", "echo", sayHelloThenClose());
    const b = await wsSession("/ws", "echo", sayHelloThenClose("x".repeat(1000)));
    expect(a.closeCode).toBe(1000);
    const ra = await recordOf(a.path);
    const rb = await recordOf(b.path);
    expectCommon(ra, a.path, undefined, "ws", "ws");
    expect(ra).toMatchObject({ outcome: "completed", reason: "websocket_closed", status: 101, upstream_status: 101, kind: "websocket", method: "GET" });
    expect(ra.websocket?.closed_by).toBe("unknown");
    expect(ra.duration_ms).toBeGreaterThanOrEqual(150);
    expect(ra.duration_ms).toBeLessThanOrEqual(a.elapsedMs + 50);
    // the same handshake: the difference is exactly the extra frames
    // client -> upstream: 1000-byte payload, 2 + 2 length bytes, 4 mask bytes
    expect(rb.websocket!.client_to_upstream_bytes - ra.websocket!.client_to_upstream_bytes).toBe(1000 + 4 + 4);
    // upstream -> client: "echo:" + 1000 bytes, 2 + 2 length bytes, no mask
    expect(rb.websocket!.upstream_to_client_bytes - ra.websocket!.upstream_to_client_bytes).toBe(1005 + 4);
    expect(rb.bytes_to_client - ra.bytes_to_client).toBe(1005 + 4);
    // "hello" echoed (2 + 10) and the close frame (2 + 2 + "done")
    expect(ra.websocket!.upstream_to_client_bytes).toBe(12 + 8);
  });

  it("closed by the upstream: recorded the same way (nginx does not say which side closed)", async () => {
    const run = await wsSession("/ws", "server-close", (ws) => ws.send("hello"));
    expect(run.closeCode).toBe(1000);
    const rec = await recordOf(run.path);
    expect(rec).toMatchObject({ outcome: "completed", reason: "websocket_closed", kind: "websocket", websocket: { closed_by: "unknown" } });
    // "echo:hello" (2 + 10) and the close frame (2 + 2 + "bye")
    expect(rec.websocket!.upstream_to_client_bytes).toBe(12 + 7);
    expect(rec.duration_ms).toBeGreaterThanOrEqual(150);
  });

  it("idle past read_timeout (500 ms): the gateway ends the tunnel", async () => {
    const run = await wsSession("/ws-slow", "idle", (ws) => ws.send("hello"));
    expect(run.closeCode).toBe(1006);
    const rec = await recordOf(run.path);
    expect(rec).toMatchObject({ outcome: "upstream_timeout", reason: "websocket_idle_timeout", kind: "websocket", websocket: { closed_by: "gateway", upstream_to_client_bytes: 0 } });
    expect(rec.duration_ms).toBeGreaterThanOrEqual(400);
  });
});

describe("the client's bytes are the same with and without the plugin", () => {
  const cases: [string, string, CallOptions][] = [
    ["SSE stream", CHAT, { body: chat(), headers: { "x-mock-created": "1700000000" } }],
    ["SSE stream with usage", CHAT, { body: chat({ stream_options: { include_usage: true } }), headers: { "x-mock-created": "1700000000", "x-mock-split": "1" } }],
    ["NDJSON", "/api/chat", { body: { model: "llama3.2", messages: [{ role: "user", content: PROMPT }] }, headers: { "x-mock-created": "1700000000" } }],
    ["JSON body", CHAT, { body: chat({ stream: false }), headers: { "x-mock-created": "1700000000" } }],
    ["upstream abort", CHAT, { body: chat(), headers: { "x-mock-created": "1700000000", "x-mock-abort-after-tokens": "4" } }],
    ["5xx", CHAT, { body: chat(), headers: { "x-mock-fail-status": "503" } }],
  ];

  it.each(cases)("%s", async (_name, rest, opts) => {
    const same = `/llm/same${rest}`;
    const withPlugin = await call(gw.url + same, opts);
    const without = await call(bare.url + same, opts);
    expect(withPlugin.status).toBe(without.status);
    expect(withPlugin.body.length).toBeGreaterThan(0);
    expect(withPlugin.body.equals(without.body)).toBe(true);
    for (const h of ["content-type", "content-length", "transfer-encoding"]) expect(withPlugin.headers[h]).toBe(without.headers[h]);
  });

  it("plain chunked", async () => {
    const withPlugin = await call(gw.url + "/plain/same/chunked");
    const without = await call(bare.url + "/plain/same/chunked");
    expect(withPlugin.body.equals(without.body)).toBe(true);
  });
});

describe("the records of the run", () => {
  it("every outcome was produced, and no record holds a prompt or a key", () => {
    const all = loggedRecords(gw).map((r: LoggedRecord) => r.record);
    const seen = new Set(all.map((r) => r.outcome));
    for (const o of OUTCOMES) expect(seen, o).toContain(o);
    for (const r of all) {
      const json = JSON.stringify(r);
      for (const secret of ["rivers of Europe", "sk-SECRET", "SECRET-Q", "SECRET-IN-QUERY", "alice-key"]) expect(json).not.toContain(secret);
    }
  });
});
