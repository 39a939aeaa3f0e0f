// The results file's shape and its two renderings: a text table for stdout and Markdown (what
// docs/bench.md holds when someone copies a run there on purpose).
import type { Machine } from "./machine.ts";
import type { MemoryResult } from "./memory.ts";
import type { ReaderRow, ReaderRun } from "./sse-reader.ts";
import type { RowSummary, Target } from "./stats.ts";
import type { StreamShape } from "./streams.ts";
import type { ChunkSizes, CountCheck } from "./verify.ts";
import type { WrkResult } from "./wrk.ts";

export interface WorkloadRow {
  id: string;
  config: string;
  label: string;
}

export interface WorkloadResult {
  id: string;
  kind: "stream" | "json";
  label: string;
  /** What wrk sends and what comes back, in words. */
  request: string;
  /** The streamed file's shape (stream workloads). */
  shape?: StreamShape;
  /** Body bytes of one answer (the file for streams). */
  answer_bytes: number;
  threads: number;
  connections: number;
  rows: WorkloadRow[];
  /** The rows every other row is divided by, in column order. */
  bases: { id: string; label: string }[];
  rounds: Record<string, WrkResult>[];
  summary: RowSummary[];
}

export interface StreamInfo {
  shape: StreamShape;
  file: string;
  path: string;
  content_type: string;
  bytes: number;
  events: number;
  token_event_bytes: { min: number; max: number };
  completion_tokens: number;
}

export interface BenchResults {
  schema: "kong-ts-ai-bench/2";
  ok: boolean;
  mode: "full" | "smoke" | "reader";
  date: string;
  commit: string | null;
  machine: Machine;
  parameters: Record<string, unknown>;
  configs: { id: string; label: string; plugins: string[]; available: boolean; missing?: string[] }[];
  streams: StreamInfo[];
  /** What body_filter received per response, by file (through the gateway, default buffers). */
  chunks: ChunkSizes[];
  workloads: WorkloadResult[];
  memory: Record<string, MemoryResult>;
  reader: { current?: ReaderRun; baseline?: ReaderRun };
  counts: CountCheck[];
  targets: Target[];
  errors: string[];
  notes: string[];
}

const n = (v: number | null | undefined, digits: number) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits));
const x = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : `${v.toFixed(2)}×`);
const SHAPE_LABEL: Record<StreamShape, string> = { openai: "OpenAI", vllm: "vLLM", anthropic: "Anthropic", ollama: "Ollama" };

type Table = { head: string[]; body: string[][] };

function textTable({ head, body }: Table): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function mdTable({ head, body }: Table): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${head.map(esc).join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...body.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function summaryOf(w: WorkloadResult, row: string): RowSummary | undefined {
  return w.summary.find((s) => s.row === row);
}

/** "0.85× (0.80–0.90)": the median per-round ratio and its spread. */
function ratioCell(s: RowSummary | undefined, base: string): string {
  const r = s?.vs[base];
  if (!r) return "";
  return `${x(r.rps)} (${n(r.rps_min, 2)}–${n(r.rps_max, 2)})`;
}

function workloadTable(w: WorkloadResult): Table {
  const stream = w.kind === "stream";
  const head = ["configuration", stream ? "streams/s" : "req/s", ...(stream ? ["MB/s"] : []), "p50 ms", "p99 ms", ...w.bases.map((b) => `vs ${b.label} (min–max)`)];
  const body = w.rows.map((row) => {
    const s = summaryOf(w, row.id);
    return [
      row.label,
      n(s?.rps, 0),
      ...(stream ? [n(s ? (s.rps * w.answer_bytes) / 1e6 : null, 1)] : []),
      n(s?.p50_ms, 2),
      n(s?.p99_ms, 2),
      ...w.bases.map((b) => (b.id === row.id ? "(reference)" : ratioCell(s, b.id))),
    ];
  });
  return { head, body };
}

/** One row per configuration: OpenAI in full, the other shapes as ratios to the byte counter. */
function streamSummary(r: BenchResults): Table | undefined {
  const streams = r.workloads.filter((w) => w.kind === "stream");
  const openai = streams.find((w) => w.shape === "openai") ?? streams[0];
  if (!openai) return undefined;
  const others = streams.filter((w) => w !== openai);
  const labels = new Map<string, string>();
  for (const w of streams) for (const row of w.rows) if (!labels.has(row.id)) labels.set(row.id, row.label);
  const head = [
    "configuration",
    `${SHAPE_LABEL[openai.shape ?? "openai"]} streams/s`,
    "vs no plugin",
    "vs byte counter",
    ...others.map((w) => `${SHAPE_LABEL[w.shape ?? "openai"]} vs byte counter`),
  ];
  const body = [...labels.entries()].map(([id, label]) => {
    const s = summaryOf(openai, id);
    return [
      label,
      n(s?.rps, 0),
      id === "gateway" ? "(reference)" : x(s?.vs.gateway?.rps),
      id === "bytes" ? "(reference)" : x(s?.vs.bytes?.rps),
      ...others.map((w) => (id === "bytes" ? "(reference)" : x(summaryOf(w, id)?.vs.bytes?.rps))),
    ];
  });
  return { head, body };
}

function chunkTable(r: BenchResults): Table {
  return {
    head: ["file", "bytes", "body_filter calls with data", "smallest", "median", "largest", "most frequent"],
    body: r.chunks.map((c) => [c.file, String(c.bytes), String(c.calls), String(c.min), String(c.median), String(c.max), `${c.mode.size} (${c.mode.count}×)`]),
  };
}

function streamFilesTable(r: BenchResults): Table {
  return {
    head: ["shape", "served at", "content type", "bytes", "events", "token event bytes", "completion tokens"],
    body: r.streams.map((s) => [SHAPE_LABEL[s.shape], s.path, s.content_type, String(s.bytes), String(s.events), `${s.token_event_bytes.min}–${s.token_event_bytes.max}`, String(s.completion_tokens)]),
  };
}

function memoryTable(r: BenchResults, labels: Record<string, string>): Table {
  return {
    head: ["configuration", "streams", "idle KB", "with streams KB", "KB per stream", "KB/stream left after"],
    body: Object.entries(r.memory).map(([id, m]) => [
      labels[id] ?? id,
      String(m.streams),
      n(m.before_kb, 0),
      n(m.during_kb, 0),
      n(m.per_stream_kb, 1),
      n(m.retained_per_stream_kb, 2),
    ]),
  };
}

const chunkLabel = (c: string) => (c === "event" ? "one event per chunk" : `${c}-byte chunks`);

function readerTable(r: BenchResults): Table | undefined {
  const cur = r.reader.current;
  if (!cur || cur.rows.length === 0) return undefined;
  const base = r.reader.baseline?.rows ?? [];
  const find = (rows: ReaderRow[], row: ReaderRow) => rows.find((b) => b.name === row.name && b.chunks === row.chunks);
  const head = [
    "stream",
    "chunks",
    "events",
    "µs/event",
    "MB/s",
    ...(base.length > 0 ? [`µs/event, ${r.reader.baseline?.label}`, "MB/s, baseline", "speed-up"] : []),
  ];
  const body = cur.rows.map((row) => {
    const b = find(base, row);
    return [
      row.name,
      chunkLabel(row.chunks),
      String(row.events),
      n(row.us_per_event, 3),
      n(row.mb_per_s, 0),
      ...(base.length > 0 ? [n(b?.us_per_event, 3), n(b?.mb_per_s, 0), b ? x(b.us_per_event / row.us_per_event) : "–"] : []),
    ];
  });
  return { head, body };
}

function jitLines(label: string, run: ReaderRun, md: boolean): string[] {
  const j = run.jit;
  if (!j) return [`${label}: not measured${run.jit_error ? ` (${run.jit_error})` : ""}.`];
  const fence = md ? ["```"] : [];
  return [
    `${label}: ${j.traces} traces compiled; ${j.aborts} trace aborts stopping in the shared library's modules: ${j.nyi} NYI, ${j.blacklisted} blacklisted, ${j.loop_structure} where a root trace met an inner loop or left its loop (that loop then gets a trace of its own).`,
    ...(j.abort_sites.length > 0 ? ["", ...fence, ...j.abort_sites.slice(0, 12).map((a) => `${String(a.count).padStart(4)} × ${a.where}`), ...fence] : []),
    "",
    `Profile (\`-jp=fl\`, top entries; \`-jp=v\`: ${j.profile_v.map((l) => l.trim().replace(/\s+/g, " ")).join(", ")}):`,
    "",
    ...fence,
    ...j.profile_fl.slice(0, 16),
    ...fence,
  ];
}

function targetTable(r: BenchResults): Table {
  return { head: ["target", "want", "measured", "status"], body: r.targets.map((t) => [t.description, t.target, t.measured, t.status]) };
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

function inexact(r: BenchResults): string[] {
  return r.counts.filter((c) => c.counted !== c.want).map((c) => `${c.config}: ${c.what}: counted ${c.counted}, want ${c.want}`);
}

export function renderText(r: BenchResults): string {
  const labels = labelsOf(r);
  const out: string[] = [];
  out.push(`Benchmark (${r.mode}) ${r.date}${r.commit ? ` at ${r.commit.slice(0, 12)}` : ""}`);
  out.push(`Machine: ${machineLine(r.machine)}`);
  out.push(`Parameters: ${JSON.stringify(r.parameters)}`);
  const summary = streamSummary(r);
  if (summary) out.push("", "Saturated streams (streams/s ratios within each round, median over rounds)", textTable(summary));
  for (const w of r.workloads) out.push("", `${w.label}: ${w.request}; wrk -t${w.threads} -c${w.connections}`, textTable(workloadTable(w)));
  if (r.chunks.length > 0) out.push("", "Chunks body_filter received per response (gateway, default proxy buffers)", textTable(chunkTable(r)));
  if (Object.keys(r.memory).length > 0) out.push("", "Lua memory of the gateway worker (collectgarbage count after a full GC)", textTable(memoryTable(r, labels)));
  const reader = readerTable(r);
  for (const run of [r.reader.current, r.reader.baseline]) {
    if (run && run.status !== "ok") out.push("", `Reader benchmark (${run.label}): ${run.status}: ${run.message ?? ""}`);
  }
  if (reader) out.push("", `Usage reader alone (LuaJIT, no nginx; ${r.reader.current?.label})`, textTable(reader));
  for (const run of [r.reader.current, r.reader.baseline]) if (run && run.status === "ok") out.push("", ...jitLines(`JIT check, ${run.label}`, run, false));
  out.push("", "Targets", textTable(targetTable(r)));
  for (const line of inexact(r)) out.push(`inexact count: ${line}`);
  for (const note of r.notes) out.push(`note: ${note}`);
  if (r.errors.length > 0) out.push("", `ERRORS (${r.errors.length}):`, ...r.errors.map((e) => `  ${e}`));
  return out.join("\n");
}

function methodMarkdown(r: BenchResults): string[] {
  const p = r.parameters;
  return [
    "**Method.** Everything runs on 127.0.0.1, one nginx worker per proxy, started by the harness. The upstream is a",
    "separate nginx serving static files (sendfile; POST answered through `error_page 405`): a small JSON chat completion",
    "with usage, and one streamed answer per API shape (table below), so the upstream costs next to nothing per stream and",
    "the proxy's own CPU per byte and per event sets the rate. The proxies: a bare `proxy_pass` (reference only), the local",
    "gateway (`gateway/cli.ts`, Kong 3.9's runloop in Lua, Kong's default route: response buffering on, nginx's default",
    "proxy buffers) with no plugin; with `bench-byte-counter`, a benchmark-only plugin whose body_filter only adds",
    "`#ngx.arg[1]` to a counter in `kong.ctx.plugin` (the floor of any plugin that reads a stream); with each plugin alone;",
    "and with all three (token-rate-limiting on the local policy, limits never reached). Before the load every",
    "configuration is checked: the client's bytes equal the file's (where token-rate-limiting injected `include_usage`:",
    "OpenAI's answer to a client that did not ask, no usage chunk and no `\"usage\":null`), token-rate-limiting's remaining",
    "budget drops by exactly each answer's usage, the byte counter counted every byte, prompt-guard refuses a denied",
    "prompt, upstream-disconnect-log records a refused upstream.",
    `Load is \`wrk\`, saturating: streams with -t${p.stream_threads} -c${p.stream_connections}, small JSON with ${p.json_connections} connections. Each`,
    `round runs every row of a workload once (order rotated per round), ${p.rounds} round(s) of ${p.duration_s} s per cell${Number(p.warmup_s) > 0 ? ` after a ${p.warmup_s} s warm-up of each cell` : ""};`,
    "every ratio is taken within a round, then the median over rounds (min–max: the spread of the per-round ratio), so the",
    "drift of a shared machine between rounds cancels. Any non-2xx answer, socket error, short answer or worker error",
    "fails the run.",
  ];
}

export function renderMarkdown(r: BenchResults): string {
  const labels = labelsOf(r);
  const out: string[] = [
    "# Benchmarks",
    "",
    "CPU cost per event of each plugin on saturated streams, and per request on small JSON, as ratios to the same gateway",
    "without plugins and to a plugin that only counts bytes, measured in one run. Rendered from a results file of",
    "`make bench` by `npx tsx bench/run.ts --render <results.json> --docs docs/bench.md` (see `bench/README.md`).",
    "",
    `**Run:** ${r.date}${r.commit ? `, commit \`${r.commit.slice(0, 12)}\`` : ""} (${r.mode}).`,
    "",
    `**Machine:** ${machineLine(r.machine)}. Its cores are shared with other work, and wrk, the proxy and the upstream all`,
    "run on them: absolute figures are low and noisy; the ratios within a round are what matter.",
    "",
    ...methodMarkdown(r),
    "",
    "## Targets",
    "",
    mdTable(targetTable(r)),
  ];
  const wrong = inexact(r);
  if (wrong.length > 0) out.push("", "Inexact counts:", "", ...wrong.map((l) => `- ${l}`));
  const summary = streamSummary(r);
  if (summary) {
    out.push("", "## Saturated streams", "", "Streams per second and their ratios (median of per-round ratios).", "", mdTable(summary));
    out.push("", "The streamed files:", "", mdTable(streamFilesTable(r)));
    if (r.chunks.length > 0) {
      out.push("", "What body_filter received per response through the gateway (nginx's default proxy buffers), logged once per run by a", "benchmark-only plugin on a route of its own:", "", mdTable(chunkTable(r)));
    }
  }
  for (const w of r.workloads) {
    out.push("", `## ${w.label}`, "", `${w.request}; wrk -t${w.threads} -c${w.connections}.`, "", mdTable(workloadTable(w)));
  }
  out.push("", "## Lua memory per active stream", "");
  if (Object.keys(r.memory).length > 0) {
    const m = Object.values(r.memory)[0];
    out.push(
      `${m.streams} concurrent OpenAI streams through the gateway (one event every ${r.parameters.slow_interval_ms} ms, ${m.events_per_stream} events each);`,
      "`collectgarbage(\"count\")` of the gateway's worker after a full GC (through a benchmark-only probe plugin),",
      "idle and with every stream in flight. The last column is what stayed after all streams ended.",
      "",
      mdTable(memoryTable(r, labels)),
    );
  } else out.push("Not measured in this run.");
  out.push("", "## Usage reader alone", "");
  const reader = readerTable(r);
  if (reader) {
    out.push(
      "`bench/sse-reader/bench.lua`: `newUsageReader()`, `detect`, `feed` every chunk, `finish`, on the same files as above",
      "(and the mock LLM's 1 MB stream of long events, the old figure, for reference), in 4 KiB chunks and one event per chunk;",
      "each report checked (usage, finish reason, events, text measured); CPU time (`os.clock`) of repeated passes, garbage",
      "collection included, best of several rounds after a warm-up. MB = 10^6 bytes.",
      "",
      mdTable(reader),
    );
  }
  for (const run of [r.reader.current, r.reader.baseline]) {
    if (run && run.status !== "ok") out.push("", `${run.label}: ${run.status}: ${run.message ?? ""}`);
  }
  if (r.reader.current?.status === "ok") {
    out.push(
      "",
      "## The reader under LuaJIT's trace dump and profiler",
      "",
      "`luajit bench/sse-reader/jit-check.lua --manifest <dir>/manifest.json [--dist DIR]` (streams written by",
      "`npx tsx bench/run.ts --write-streams <dir>`): the OpenAI file in 4 KiB chunks and one event per chunk, first under",
      "the trace dump (`-jv`), then the profiler (`-jp=fl`, `-jp=v`).",
    );
    for (const run of [r.reader.baseline, r.reader.current]) if (run?.status === "ok") out.push("", ...jitLines(`**${run.label}**`, run, true));
  }
  if (r.notes.length > 0) out.push("", "## Notes", "", ...r.notes.map((note) => `- ${note}`));
  if (r.errors.length > 0) out.push("", "## Errors", "", ...r.errors.map((e) => `- ${e}`));
  return out.join("\n") + "\n";
}
