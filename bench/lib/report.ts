// The results file's shape and its two renderings: a text table for stdout and the Markdown of
// docs/bench.md (the README shows the latter).
import type { Machine } from "./machine.ts";
import type { MemoryResult } from "./memory.ts";
import type { CellSummary, Target } from "./stats.ts";
import type { WrkResult } from "./wrk.ts";

export interface WorkloadResult {
  id: string;
  label: string;
  request: string;
  connections: number;
  configs: string[];
  rounds: Record<string, WrkResult>[];
  summary: CellSummary[];
}

export interface SseReaderResult {
  status: "ok" | "not available" | "failed";
  message?: string;
  mb_per_s?: Record<string, number>;
  source?: string;
  bytes?: number;
  raw?: unknown;
}

export interface BenchResults {
  schema: "kong-ts-ai-bench/1";
  ok: boolean;
  mode: "full" | "smoke";
  date: string;
  commit: string | null;
  machine: Machine;
  parameters: Record<string, unknown>;
  configs: { id: string; label: string; plugins: string[]; available: boolean; missing?: string[] }[];
  workloads: WorkloadResult[];
  memory: Record<string, MemoryResult>;
  sse_reader: SseReaderResult;
  targets: Target[];
  errors: string[];
  notes: string[];
}

const n = (v: number | null | undefined, digits: number) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits));
const pct = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`);
const signed = (v: number | null | undefined, digits: number) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;

const HEAD = ["configuration", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "(min–max)", "p50 vs bare", "p99 vs bare", "req/s vs gateway", "p50 +ms vs gateway"];

function rows(w: WorkloadResult, labels: Record<string, string>): string[][] {
  return w.summary.map((s) => [
    labels[s.config] ?? s.config,
    n(s.rps, 0),
    n(s.p50_ms, 2),
    n(s.p99_ms, 2),
    s.vs_bare ? pct(s.vs_bare.rps) : "(floor)",
    s.vs_bare ? `${pct(s.vs_bare.rps_min)}–${pct(s.vs_bare.rps_max)}` : "",
    s.vs_bare ? `${n(s.vs_bare.p50, 2)}×` : "",
    s.vs_bare ? `${n(s.vs_bare.p99, 2)}×` : "",
    s.vs_gateway ? pct(s.vs_gateway.rps) : "",
    s.added_p50_ms_vs_gateway === null ? "" : signed(s.added_p50_ms_vs_gateway, 3),
  ]);
}

function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function mdTable(head: string[], body: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${head.map(esc).join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...body.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function memoryRows(r: BenchResults, labels: Record<string, string>): string[][] {
  return Object.entries(r.memory).map(([id, m]) => [
    labels[id] ?? id,
    String(m.streams),
    n(m.before_kb, 0),
    n(m.during_kb, 0),
    n(m.per_stream_kb, 1),
    n(m.retained_per_stream_kb, 2),
  ]);
}
const MEMORY_HEAD = ["configuration", "streams", "idle KB", "with streams KB", "KB per stream", "KB/stream left after"];

function readerRows(r: BenchResults): string[][] {
  return Object.entries(r.sse_reader.mb_per_s ?? {})
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([size, mbps]) => [`${size}-byte chunks`, n(mbps, 1)]);
}

function targetRows(r: BenchResults): string[][] {
  return r.targets.map((t) => [t.description, t.target, t.measured, t.status]);
}

const SUMMARY_HEAD = [
  "configuration",
  "JSON req/s vs bare",
  "JSON req/s vs gateway",
  "JSON p99 vs bare",
  "stream p50 vs bare",
  "stream p50 +ms vs gateway",
  "1 KB prompt req/s vs bare",
  "100 KB prompt req/s vs bare",
];

function summaryRows(r: BenchResults, labels: Record<string, string>): string[][] {
  const cell = (w: string, c: string) => r.workloads.find((x) => x.id === w)?.summary.find((s) => s.config === c);
  return r.configs
    .filter((c) => c.available && c.id !== "bare")
    .map((c) => {
      const json = cell("json", c.id);
      const sse = cell("sse", c.id);
      const pg1 = cell("pg-1k", c.id);
      const pg100 = cell("pg-100k", c.id);
      return [
        labels[c.id] ?? c.id,
        pct(json?.vs_bare?.rps),
        c.id === "gateway" ? "" : pct(json?.vs_gateway?.rps),
        json?.vs_bare ? `${n(json.vs_bare.p99, 2)}×` : "–",
        sse?.vs_bare ? `${n(sse.vs_bare.p50, 2)}×` : "–",
        c.id === "gateway" ? "" : signed(sse?.added_p50_ms_vs_gateway, 2),
        pct(pg1?.vs_bare?.rps),
        pct(pg100?.vs_bare?.rps),
      ];
    });
}

function labelsOf(r: BenchResults): Record<string, string> {
  return Object.fromEntries(r.configs.map((c) => [c.id, c.label]));
}

function machineLine(m: Machine): string {
  return (
    `${m.cpu_model}, ${m.cores} cores, ${m.memory_gib} GiB, Linux ${m.kernel}; nginx ${m.nginx}` +
    `${m.lua_nginx_module ? ` + lua-nginx-module ${m.lua_nginx_module}` : ""}, ${m.luajit}, ${m.wrk}, redis ${m.redis}, Node ${m.node}; ` +
    `load average ${m.loadavg_start.join(" ")} at start${m.loadavg_end ? `, ${m.loadavg_end.join(" ")} at end` : ""}`
  );
}

export function renderText(r: BenchResults): string {
  const labels = labelsOf(r);
  const out: string[] = [];
  out.push(`Benchmark (${r.mode}) ${r.date}${r.commit ? ` at ${r.commit.slice(0, 12)}` : ""}`);
  out.push(`Machine: ${machineLine(r.machine)}`);
  out.push(`Parameters: ${JSON.stringify(r.parameters)}`);
  out.push("", "Summary (ratios within each round, median over rounds)", textTable(SUMMARY_HEAD, summaryRows(r, labels)));
  for (const w of r.workloads) {
    out.push("", `${w.label}: ${w.request}, ${w.connections} connection(s)`, textTable(HEAD, rows(w, labels)));
  }
  if (Object.keys(r.memory).length > 0) out.push("", "Lua memory of the gateway worker (collectgarbage count after a full GC)", textTable(MEMORY_HEAD, memoryRows(r, labels)));
  out.push("", `SSE usage reader (luajit bench/sse-reader/bench.lua): ${r.sse_reader.status}${r.sse_reader.message ? ` (${r.sse_reader.message})` : ""}`);
  if (r.sse_reader.mb_per_s) out.push(textTable(["chunks", "MB/s"], readerRows(r)));
  out.push("", "Targets", textTable(["target", "want", "measured", "status"], targetRows(r)));
  for (const note of r.notes) out.push(`note: ${note}`);
  if (r.errors.length > 0) out.push("", `ERRORS (${r.errors.length}):`, ...r.errors.map((e) => `  ${e}`));
  return out.join("\n");
}

export function renderMarkdown(r: BenchResults): string {
  const labels = labelsOf(r);
  const p = r.parameters;
  const out: string[] = [];
  out.push(
    "# Benchmarks",
    "",
    "What each plugin costs, as ratios to a bare nginx `proxy_pass` measured in the same run, on the same nginx binary.",
    "Written by `make bench` (`bench/run.ts`) from `bench/results/latest.json`; do not edit by hand.",
    "",
    `**Run:** ${r.date}${r.commit ? `, commit \`${r.commit.slice(0, 12)}\`` : ""}.`,
    "",
    `**Machine:** ${machineLine(r.machine)}.`,
    "",
    "**Method.** The upstream is a separate nginx on 127.0.0.1 (a static JSON chat completion; an SSE stream of precomputed",
    "OpenAI chunks written by Lua in batches as fast as the socket takes them, chunked like an LLM server). Every proxy runs one",
    "nginx worker: the bare `proxy_pass` (HTTP/1.1 keepalive pool, access log to a file), and the local gateway (`gateway/cli.ts`,",
    "Kong 3.9's runloop in Lua) with no plugin, each plugin alone and all three (token-rate-limiting with the local policy in that",
    "row, `fault_tolerant: false` for redis so a Redis failure shows as errors). Limits are high enough never to reject; the",
    "prompt-guard requests pass its 20 deny patterns. Load is `wrk` at fixed concurrency; each round runs every configuration",
    `once (order rotated per round), ${p.rounds} round(s) of ${p.duration_s} s per cell${Number(p.warmup_s) > 0 ? ` after a ${p.warmup_s} s warm-up of each cell` : ""}; every figure is the median over rounds,`,
    "and every ratio is computed within a round (against that round's bare proxy or gateway) before taking the median, so",
    "drift of the shared machine between rounds cancels out. Latency of the SSE rows is the time to the last byte of the whole",
    "stream. Before the load each configuration is checked (byte-identical JSON and stream, plugin proof: rate-limit headers,",
    "a denied prompt refused, a disconnect record, Redis keys) and any non-2xx answer or worker error fails the run.",
    "",
    `The machine has ${r.machine.cores} cores shared with other work and wrk, the proxy and the upstream all run on them:`,
    "absolute numbers are noisy and low; the ratios within a round are what matter. The (min–max) column shows the spread of",
    "the per-round ratio.",
    "",
    "Run it with `make bench` (about 7 minutes; `npx tsx bench/run.ts --help` for the parameters) or `make bench-smoke`",
    "(under a minute, numbers meaningless, fails on any error); see `bench/README.md`.",
    "",
    "## Summary",
    "",
    "Each plugin's cost as a ratio to the bare proxy and to the gateway without plugins (the gateway's own cost is its row).",
    "",
    mdTable(SUMMARY_HEAD, summaryRows(r, labels)),
  );
  for (const w of r.workloads) {
    out.push("", `## ${w.label}`, "", `${w.request}; wrk ${p.threads} thread(s), ${w.connections} connection(s).`, "", mdTable(HEAD, rows(w, labels)));
  }
  out.push("", "## Lua memory per active stream", "");
  if (Object.keys(r.memory).length > 0) {
    const m = Object.values(r.memory)[0];
    out.push(
      `${m.streams} concurrent streams through the gateway (one event every ${p.slow_interval_ms} ms, ${m.events_per_stream} events each);`,
      "`collectgarbage(\"count\")` of the gateway's worker after a full GC (through a benchmark-only probe plugin, `bench/fixtures/lua`),",
      "idle and with every stream in flight. The last column is what stayed after all streams ended.",
      "",
      mdTable(MEMORY_HEAD, memoryRows(r, labels)),
    );
  } else out.push("Not measured in this run.");
  out.push("", "## SSE usage reader (LuaJIT, no nginx)", "");
  if (r.sse_reader.mb_per_s) {
    out.push(
      `\`luajit bench/sse-reader/bench.lua\` over ${r.sse_reader.source ?? "a recorded stream"}${r.sse_reader.bytes ? ` (${(r.sse_reader.bytes / 2 ** 20).toFixed(2)} MB)` : ""}, split into chunks of each size; best round.`,
      "",
      mdTable(["chunks", "MB/s"], readerRows(r)),
    );
  } else out.push(`${r.sse_reader.status}${r.sse_reader.message ? `: ${r.sse_reader.message}` : ""}.`);
  out.push("", "## Targets", "", mdTable(["target", "want", "measured", "status"], targetRows(r)));
  if (r.notes.length > 0) out.push("", ...r.notes.map((x) => `- ${x}`));
  if (r.errors.length > 0) out.push("", "## Errors", "", ...r.errors.map((e) => `- ${e}`));
  return out.join("\n") + "\n";
}
