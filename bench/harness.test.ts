// The benchmark's arithmetic, payloads and parsing, without starting anything.
import { describe, expect, it } from "vitest";
import { CHUNK_LOG_PATH, CONFIGS, gatewayConfig } from "./lib/configs.ts";
import { luaNginxModuleVersion } from "./lib/machine.ts";
import { BLOCKED_PROMPT, PROMPT_GUARD_PATTERNS, chatRequest, promptText, streamRequest } from "./lib/payloads.ts";
import { renderMarkdown, renderText, type BenchResults } from "./lib/report.ts";
import { bestRows, parseJitOutput, parseReaderOutput, type ReaderRow } from "./lib/sse-reader.ts";
import { evaluateTargets, median, summarise, type Round, type TargetInputs } from "./lib/stats.ts";
import { streamFile, streamFiles } from "./lib/streams.ts";
import { errorLogProblems, parseChunkLog } from "./lib/verify.ts";
import { parseWrkOutput, wrkErrorCount, type WrkResult } from "./lib/wrk.ts";

function wrk(rps: number, p50us: number, p99us: number, statusErrors = 0): WrkResult {
  return {
    requests: rps * 5,
    duration_s: 5,
    bytes: rps * 5 * 1000,
    rps,
    latency_us: { p50: p50us, p90: p50us, p99: p99us, mean: p50us, max: p99us },
    errors: { connect: 0, read: 0, write: 0, status: statusErrors, timeout: 0 },
  };
}

describe("median", () => {
  it("takes the middle value, or the mean of the two middle ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe("summarise", () => {
  // the machine slows down in round 2: ratios within a round stay the same
  const rounds: Round[] = [
    { gateway: wrk(1000, 1000, 4000), bytes: wrk(800, 1250, 5000), all3: wrk(600, 1400, 6000) },
    { gateway: wrk(500, 2000, 8000), bytes: wrk(400, 2500, 10000), all3: wrk(300, 2800, 12000) },
    { gateway: wrk(900, 1100, 4400), bytes: wrk(720, 1375, 5500), all3: wrk(540, 1540, 6600) },
  ];

  it("reports ratios to each reference computed within each round, then their median", () => {
    const s = summarise(rounds, "all3", ["gateway", "bytes"]);
    expect(s.rounds).toBe(3);
    expect(s.vs.bytes?.rps).toBeCloseTo(0.75, 10);
    expect(s.vs.gateway?.rps).toBeCloseTo(0.6, 10);
    expect(s.vs.gateway?.rps_min).toBeCloseTo(0.6, 10);
    expect(s.vs.gateway?.rps_max).toBeCloseTo(0.6, 10);
    expect(s.vs.gateway?.p50).toBeCloseTo(1.4, 10);
    expect(s.rps).toBe(540);
    expect(s.p50_ms).toBeCloseTo(1.54, 10);
    expect(s.bytes_per_request).toBe(1000);
  });

  it("has no ratio of a reference to itself", () => {
    const g = summarise(rounds, "gateway", ["gateway", "bytes"]);
    expect(g.vs.gateway).toBeNull();
    expect(g.vs.bytes?.rps).toBeCloseTo(1.25, 10);
  });

  it("skips rounds where a row or its reference is missing, and spreads min–max over the others", () => {
    const partial: Round[] = [
      { gateway: wrk(1000, 1000, 4000), all3: wrk(500, 2000, 8000) },
      { gateway: wrk(1000, 1000, 4000), all3: wrk(700, 2000, 8000) },
      { gateway: wrk(1000, 1000, 4000) },
    ];
    const s = summarise(partial, "all3", ["gateway", "bytes"]);
    expect(s.rounds).toBe(2);
    expect(s.vs.gateway?.rps).toBeCloseTo(0.6, 10);
    expect(s.vs.gateway?.rps_min).toBeCloseTo(0.5, 10);
    expect(s.vs.gateway?.rps_max).toBeCloseTo(0.7, 10);
    expect(s.vs.bytes).toBeNull();
  });
});

describe("evaluateTargets", () => {
  const all: TargetInputs = {
    streamTrlVsBytes: 0.8,
    streamUdlVsBytes: 0.79,
    streamAllVsBytes: null,
    jsonTrlVsGateway: 0.81,
    jsonAllVsGateway: 0.64,
    readerUsPerEvent: { openai: { "4096": 0.25, event: 0.61 }, vllm: { "4096": 0.375, event: 0.9 }, anthropic: { "4096": 0.376 } },
    luaKbPerStream: 64,
    exactChecks: { made: 10, failed: 0 },
    jit: { aborts: 0, nyi: 0, blacklisted: 0, loop_structure: 0 },
  };

  it("says met, not met, or not measured against each threshold, never guesses", () => {
    const t = Object.fromEntries(evaluateTargets(all).map((x) => [x.id, x.status]));
    expect(t.stream_trl_vs_bytes).toBe("met");
    expect(t.stream_udl_vs_bytes).toBe("not met");
    expect(t.stream_all3_vs_bytes).toBe("not measured");
    expect(t.json_trl_vs_gateway).toBe("met");
    expect(t.json_all3_vs_gateway).toBe("not met");
    expect(t.lua_memory_per_stream).toBe("not met");
    expect(t.exact_counts).toBe("met");
    expect(t.reader_jit).toBe("met");
  });

  it("holds the reader to 0.25 µs (4 KiB) and 0.6 µs (one event) per OpenAI event, other shapes to 1.5× that", () => {
    const t = Object.fromEntries(evaluateTargets(all).map((x) => [x.id, x.status]));
    expect(t.reader_openai_4096).toBe("met");
    expect(t.reader_openai_event).toBe("not met");
    expect(t.reader_vllm_4096).toBe("met");
    expect(t.reader_vllm_event).toBe("met");
    expect(t.reader_anthropic_4096).toBe("not met");
    expect(t.reader_anthropic_event).toBe("not measured");
    expect(t.reader_ollama_4096).toBe("not measured");
  });

  it("fails the exact-count target on one wrong count, and the JIT target on any abort", () => {
    const t = evaluateTargets({ ...all, exactChecks: { made: 10, failed: 1 }, jit: { aborts: 2, nyi: 0, blacklisted: 0, loop_structure: 2 } });
    expect(t.find((x) => x.id === "exact_counts")).toMatchObject({ status: "not met", measured: "9 of 10 exact" });
    expect(t.find((x) => x.id === "reader_jit")?.status).toBe("not met");
    const none = evaluateTargets({ ...all, exactChecks: { made: 0, failed: 0 }, jit: undefined });
    expect(none.find((x) => x.id === "exact_counts")?.status).toBe("not measured");
    expect(none.find((x) => x.id === "reader_jit")?.status).toBe("not measured");
  });
});

describe("wrk output", () => {
  it("takes the BENCH_JSON line of report.lua and counts every kind of error", () => {
    const stdout =
      "Running 1s test @ http://127.0.0.1:1/json\n  1 threads and 8 connections\n" +
      'BENCH_JSON {"requests":10,"duration_s":1.0,"bytes":100,"rps":10.0,"latency_us":{"p50":1,"p90":2,"p99":3,"mean":1.5,"max":4},' +
      '"errors":{"connect":1,"read":2,"write":0,"status":3,"timeout":4}}\n';
    const r = parseWrkOutput(stdout);
    expect(r.latency_us.p99).toBe(3);
    expect(wrkErrorCount(r)).toBe(10);
    expect(() => parseWrkOutput("no json here")).toThrow(/BENCH_JSON/);
  });
});

describe("reader and JIT check output", () => {
  const row = (name: string, chunks: string, us: number): ReaderRow => ({ name, chunks, chunk_count: 1, bytes: 1000, events: 10, us_per_event: us, mb_per_s: 1000 / (us * 10), passes: 1 });

  it("reads the JSON of the last line, and calls anything else a failure", () => {
    const ok = parseReaderOutput(`openai 4096-byte chunks ...\n${JSON.stringify({ bench: "sse-reader", results: [row("openai", "4096", 0.3)], failures: {} })}\n`);
    expect("rows" in ok && ok.rows[0].us_per_event).toBe(0.3);
    expect("error" in parseReaderOutput("WRONG RESULT: openai")).toBe(true);
    // cjson writes an empty array as {}
    expect("error" in parseReaderOutput('{"bench":"sse-reader","results":{}}')).toBe(true);
    expect(parseJitOutput('{"bench":"jit-check","stream":"openai","traces":5,"aborts":1,"nyi":0,"abort_sites":{},"profile_fl":["10% x"],"profile_v":{}}')).toMatchObject({
      traces: 5,
      aborts: 1,
      abort_sites: [],
      profile_fl: ["10% x"],
    });
    expect(parseJitOutput('{"bench":"sse-reader"}')).toBeUndefined();
    // a profile stage alone judges nothing: no trace counts, no check
    expect(parseJitOutput('{"bench":"jit-check","stream":"openai","profile_v":["90% Compiled"]}')).toBeUndefined();
  });

  it("keeps each row's fastest of several runs, and a failure over any figure", () => {
    const a = { label: "x", status: "ok" as const, rows: [row("openai", "4096", 0.3), row("openai", "event", 0.5)] };
    const b = { label: "x", status: "ok" as const, rows: [row("openai", "4096", 0.4), row("openai", "event", 0.45)] };
    expect(bestRows([a, b]).rows.map((r) => r.us_per_event)).toEqual([0.3, 0.45]);
    expect(bestRows([a, { label: "x", status: "failed", rows: [], message: "wrong" }]).status).toBe("failed");
    const jit = { stream: "openai", traces: 9, aborts: 0, nyi: 0, blacklisted: 0, loop_structure: 0, abort_sites: [], profile_fl: [], profile_v: [] };
    const merged = bestRows([{ ...a, jit }, { ...b, jit_error: "did not finish within 120 s" }]);
    expect(merged.jit).toEqual(jit);
    expect(merged.jit_error).toBeUndefined();
  });
});

/** The data of each SSE event (or each NDJSON line), decoded, [DONE] as a string. */
function decodeEvents(body: string, ndjson: boolean): unknown[] {
  const blocks = ndjson ? body.split("\n").filter((l) => l !== "") : body.split("\n\n").filter((b) => b !== "");
  return blocks.map((b) => {
    const data = ndjson ? b : b.split("\n").find((l) => l.startsWith("data: "))?.slice(6) ?? "";
    return data === "[DONE]" ? data : JSON.parse(data);
  });
}

describe("streamed files", () => {
  it("OpenAI: 1,000 chunk events of 150–200 bytes, one token each, then the usage chunk and [DONE]", () => {
    const s = streamFile("openai", 998);
    expect(s.events).toHaveLength(1002);
    expect(s.tokenEventBytes.min).toBeGreaterThanOrEqual(150);
    expect(s.tokenEventBytes.max).toBeLessThanOrEqual(200);
    expect(Buffer.byteLength(s.body)).toBeGreaterThan(180_000);
    expect(Buffer.byteLength(s.body)).toBeLessThan(200_000);
    const events = decodeEvents(s.body, false) as { choices?: { delta: { content?: string }; finish_reason: string | null }[]; usage?: unknown }[];
    expect(events[1000]).toMatchObject({ choices: [], usage: { prompt_tokens: 24, completion_tokens: 998, total_tokens: 1022 } });
    expect(events[1001]).toBe("[DONE]");
    expect(events[999].choices?.[0].finish_reason).toBe("stop");
    // as OpenAI sends them when the client asked for usage
    expect(events.slice(0, 1000).every((e) => e.usage === null)).toBe(true);
    const text = events.slice(1, 999).map((e) => e.choices?.[0].delta.content ?? "").join("");
    expect([...text].length).toBe(s.expected.content_chars);
    // as the JSON strings carry it: "\n" is two bytes there
    expect(s.expected.text_bytes).toBe(Buffer.byteLength(JSON.stringify(text)) - 2);
    expect(s.expected.text_bytes).toBeGreaterThan(Buffer.byteLength(text));
    expect(/[^\x00-\x7f]/.test(text)).toBe(true);
  });

  it("OpenAI for a client that did not ask for usage: no usage chunk, no usage member", () => {
    const s = streamFile("openai", 50);
    const events = decodeEvents(s.unaskedBody ?? "", false) as object[];
    expect(events).toHaveLength(53);
    expect(events.every((e) => typeof e === "string" || !("usage" in e))).toBe(true);
    expect(s.unaskedBody).toBe(s.body.replace(s.events[52], "").replaceAll(',"usage":null', ""));
  });

  it("vLLM carries the running usage in every chunk; Anthropic and Ollama end with their counts", () => {
    const [, vllm, anthropic, ollama] = streamFiles(20);
    const v = decodeEvents(vllm.body, false) as { usage?: { completion_tokens: number } }[];
    expect(v.slice(0, 21).map((e) => e.usage?.completion_tokens)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(vllm.expected).toMatchObject({ completion_tokens: 20, total_tokens: 51, events: 24 });
    // usage in every event: a reader needs no text measure for an estimate, none is expected
    expect(vllm.expected.text_bytes).toBeUndefined();
    expect(anthropic.expected.text_bytes).toBe(ollama.expected.text_bytes);

    const a = decodeEvents(anthropic.body, false) as { type: string }[];
    expect(a.map((e) => e.type).filter((t, i, all) => all.indexOf(t) === i)).toEqual([
      "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]);
    expect(anthropic.body.split("\n\n")[0].startsWith("event: message_start\ndata: ")).toBe(true);
    expect(a[a.length - 2]).toMatchObject({ delta: { stop_reason: "end_turn" }, usage: { output_tokens: 20 } });

    const o = decodeEvents(ollama.body, true) as { done: boolean; eval_count?: number; prompt_eval_count?: number }[];
    expect(o).toHaveLength(21);
    expect(o.slice(0, 20).every((l) => !l.done)).toBe(true);
    expect(o[20]).toMatchObject({ done: true, done_reason: "stop", prompt_eval_count: 29, eval_count: 20 });
    expect(ollama.contentType).toBe("application/x-ndjson");
  });
});

describe("payloads", () => {
  it("prompts of the requested size pass all 20 deny patterns; the blocked prompt does not", () => {
    expect(PROMPT_GUARD_PATTERNS).toHaveLength(20);
    for (const size of [1024, 100 * 1024]) {
      const text = promptText(size);
      expect(text).toHaveLength(size);
      for (const p of PROMPT_GUARD_PATTERNS) expect(new RegExp(p).test(text), p).toBe(false);
    }
    expect(PROMPT_GUARD_PATTERNS.some((p) => new RegExp(p).test(BLOCKED_PROMPT))).toBe(true);
  });

  it("stream requests ask for usage unless told not to; each API's request has its own shape", () => {
    expect(JSON.parse(streamRequest("openai")).stream_options).toEqual({ include_usage: true });
    expect(JSON.parse(streamRequest("openai", { askUsage: false })).stream_options).toBeUndefined();
    expect(JSON.parse(streamRequest("anthropic"))).toMatchObject({ stream: true, max_tokens: 1024 });
    expect(JSON.parse(streamRequest("ollama"))).toMatchObject({ stream: true, model: "llama3.2" });
    expect(JSON.parse(chatRequest({ stream: false })).stream).toBeUndefined();
  });
});

describe("gateway configs", () => {
  it("puts the plugins of a configuration on the measured routes, never on the probe or the chunk log", () => {
    const all3 = CONFIGS.find((c) => c.id === "all3");
    if (!all3) throw new Error("no all3");
    const cfg = gatewayConfig(all3, { upstreamPort: 1, closedPort: 2 }, ["/json", "/openai/v1/chat/completions"]) as {
      services: { name: string; plugins: { name: string }[]; routes: { paths: string[] }[] }[];
    };
    const byName = Object.fromEntries(cfg.services.map((s) => [s.name, s]));
    expect(byName.llm.plugins.map((p) => p.name)).toEqual(["token-rate-limiting", "prompt-guard", "upstream-disconnect-log"]);
    expect(byName.llm.routes[0].paths).toEqual(["/json", "/openai/v1/chat/completions"]);
    expect(byName.refused.plugins).toEqual(byName.llm.plugins);
    expect(byName["bench-probe"].plugins.map((p) => p.name)).toEqual(["bench-probe"]);
    expect(byName["chunk-log"].plugins.map((p) => p.name)).toEqual(["bench-chunk-log"]);
    expect(byName["chunk-log"].routes[0].paths).toEqual([CHUNK_LOG_PATH]);
    const bytes = CONFIGS.find((c) => c.id === "bytes");
    if (!bytes) throw new Error("no bytes");
    const b = gatewayConfig(bytes, { upstreamPort: 1, closedPort: 2 }, ["/json"]) as { services: { plugins: { name: string }[] }[] };
    expect(b.services[0].plugins.map((p) => p.name)).toEqual(["bench-byte-counter"]);
  });

  it("points the redis policy at the harness's redis-server and never tolerates its failure", () => {
    const redis = CONFIGS.find((c) => c.id === "trl-redis");
    if (!redis) throw new Error("no trl-redis");
    const r = gatewayConfig(redis, { upstreamPort: 1, closedPort: 2, redisPort: 3 }, ["/json"]) as { services: { plugins: { config: Record<string, unknown> }[] }[] };
    expect(r.services[0].plugins[0].config).toMatchObject({ policy: "redis", redis: { host: "127.0.0.1", port: 3 }, fault_tolerant: false });
  });
});

describe("error log scan", () => {
  it("flags worker and plugin errors but not the refused route's expected connect error", () => {
    const log = [
      "2026/01/01 00:00:00 [notice] 1#1: start worker processes",
      '2026/01/01 00:00:00 [error] 2#2: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: kong, request: "GET /_bench/refused HTTP/1.1"',
      '2026/01/01 00:00:00 [error] 2#2: *2 [kong] runloop.lua:399 handler.lua:44: attempt to call a nil value, request: "POST /json HTTP/1.1"',
      "2026/01/01 00:00:00 [warn] 2#2: *3 [upstream-disconnect] {}",
    ].join("\n");
    const bad = errorLogProblems(log);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toContain("attempt to call");
  });

  it("reads bench-chunk-log's line: sizes of the chunks with data, the eof-only call left out", () => {
    const log = '2026/01/01 [notice] 2#2: *9 [kong] handler.lua:22 [bench-chunk-log] [bench-chunks] /_bench/chunks/x 4096,8192,8192,100+eof,0+eof, client: 127.0.0.1';
    expect(parseChunkLog(log, "/_bench/chunks/x", "x.sse")).toEqual({
      file: "x.sse",
      calls: 4,
      bytes: 20580,
      min: 100,
      max: 8192,
      median: 8192,
      mode: { size: 8192, count: 2 },
    });
    expect(parseChunkLog(log, "/_bench/chunks/y", "y.sse")).toBeUndefined();
  });
});

describe("rendering", () => {
  it("prints every target with its status, and the baseline's reader figures beside the current ones", () => {
    const reader = (label: string, us: number) => ({ label, status: "ok" as const, rows: [{ name: "openai", chunks: "4096", chunk_count: 48, bytes: 192686, events: 1002, us_per_event: us, mb_per_s: 700, passes: 9 }] });
    const r: BenchResults = {
      schema: "kong-ts-ai-bench/2",
      ok: true,
      mode: "reader",
      date: "2026-01-01T00:00:00Z",
      commit: null,
      machine: { cpu_model: "cpu", cores: 2, memory_gib: 1, kernel: "k", nginx: "n", luajit: "l", lua_nginx_module: null, wrk: "w", redis: "r", node: "v", loadavg_start: [1] },
      parameters: {},
      configs: [],
      streams: [],
      chunks: [],
      workloads: [],
      memory: {},
      reader: { current: reader("now", 0.2), baseline: reader("before", 0.6) },
      counts: [],
      targets: evaluateTargets({ streamTrlVsBytes: 0.5, streamUdlVsBytes: null, streamAllVsBytes: null, jsonTrlVsGateway: null, jsonAllVsGateway: null, readerUsPerEvent: { openai: { "4096": 0.2 } }, luaKbPerStream: null, exactChecks: { made: 0, failed: 0 }, jit: undefined }),
      errors: [],
      notes: [],
    };
    const text = renderText(r);
    expect(text).toMatch(/saturated OpenAI stream: token-rate-limiting \/ byte counter.*0\.50×\s+not met/);
    expect(text).toMatch(/reader alone, openai events, 4 KiB chunks.*0\.200 µs\/event\s+met/);
    expect(text).toMatch(/openai\s+4096-byte chunks\s+1002\s+0\.200\s+700\s+0\.600\s+700\s+3\.00×/);
    const md = renderMarkdown(r);
    expect(md).toContain("## Targets");
    expect(md).toContain("| stream | chunks | events | µs/event | MB/s | µs/event, before | MB/s, baseline | speed-up |");
  });
});

describe("machine", () => {
  it("writes ngx_lua_version as a version string", () => {
    expect(luaNginxModuleVersion(10023)).toBe("0.10.23");
  });
});
