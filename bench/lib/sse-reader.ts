// The in-process reader benchmark (bench/sse-reader/bench.lua) and the JIT check
// (bench/sse-reader/jit-check.lua), run on the streams of streams.ts written to a folder, against
// one tree of transpiled modules; each prints one JSON object on its last line.
import { join } from "node:path";
import { writeLargeFixture } from "../../upstream/mock-llm/record-fixtures.ts";
import { runToEnd } from "./procs.ts";
import { streamFiles, writeReaderStreams, type ReaderManifestEntry } from "./streams.ts";

export const READER_SCRIPT = join("bench", "sse-reader", "bench.lua");
export const JIT_SCRIPT = join("bench", "sse-reader", "jit-check.lua");
/** The chunkings every stream is read in: nginx's default proxy buffer, and one event per chunk. */
export const READER_CHUNKS: (number | "event")[] = [4096, "event"];

export interface ReaderRow {
  name: string;
  /** "4096" or "event". */
  chunks: string;
  chunk_count: number;
  bytes: number;
  events: number;
  us_per_event: number;
  mb_per_s: number;
  passes: number;
}

export interface JitCheck {
  stream: string;
  traces: number;
  /** Trace aborts that stop in the shared library's modules. */
  aborts: number;
  /** Of those: not yet implemented in the JIT, blacklisted, and a root trace meeting an inner loop or leaving its loop. */
  nyi: number;
  blacklisted: number;
  loop_structure: number;
  abort_sites: { where: string; count: number }[];
  profile_fl: string[];
  profile_v: string[];
}

export interface ReaderRun {
  /** What was measured: "dist/ (this checkout)" or the baseline's label. */
  label: string;
  status: "ok" | "failed";
  message?: string;
  rows: ReaderRow[];
  jit?: JitCheck;
  /** Why the JIT check has no result (it timed out or failed); the rows stand on their own. */
  jit_error?: string;
}

function lastJson(stdout: string): Record<string, unknown> | undefined {
  const last = stdout.trim().split("\n").pop() ?? "";
  try {
    const v: unknown = JSON.parse(last);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** bench.lua's rows, or why there are none. */
export function parseReaderOutput(stdout: string): { rows: ReaderRow[] } | { error: string } {
  const parsed = lastJson(stdout);
  if (!parsed) return { error: `last line is not a JSON object: ${stdout.trim().split("\n").pop()?.slice(0, 200) ?? ""}` };
  // cjson writes an empty array as {}
  const rows = Array.isArray(parsed.results) ? (parsed.results as ReaderRow[]) : [];
  if (rows.length === 0) return { error: "no results in its JSON" };
  return { rows };
}

export function parseJitOutput(stdout: string): JitCheck | undefined {
  const p = lastJson(stdout);
  return p && p.bench === "jit-check" ? parseJitFields(p) : undefined;
}

/** The check's figures; undefined without the trace dump's (the profiles alone judge nothing). */
function parseJitFields(p: Record<string, unknown>): JitCheck | undefined {
  if (typeof p.traces !== "number") return undefined;
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
  return {
    stream: String(p.stream),
    traces: p.traces,
    aborts: Number(p.aborts),
    nyi: Number(p.nyi),
    blacklisted: Number(p.blacklisted ?? 0),
    loop_structure: Number(p.loop_structure ?? 0),
    abort_sites: list<{ where: string; count: number }>(p.abort_sites),
    profile_fl: list<string>(p.profile_fl),
    profile_v: list<string>(p.profile_v),
  };
}

/** The mock LLM's 1 MB stream (long events), kept as a reference row in 16 KiB chunks: the old figure. */
async function mockReference(dir: string): Promise<ReaderManifestEntry> {
  const { path, expected: e } = await writeLargeFixture(dir);
  return {
    name: "mock-1mb",
    file: path,
    content_type: "text/event-stream",
    chunks: [16384],
    expected: {
      ...e.usage,
      content_chars: [...e.text].length,
      text_bytes: Buffer.byteLength(JSON.stringify(e.text)) - 2,
      finish_reason: e.finish_reason,
      framing: e.framing,
    },
  };
}

/** Writes the streams (and the mock's 1 MB stream unless smoke) with their manifest into `dir`. */
export async function prepareReaderStreams(dir: string, tokens: number, withReference: boolean): Promise<string> {
  const reference = withReference ? [await mockReference(dir)] : [];
  return writeReaderStreams(dir, streamFiles(tokens), READER_CHUNKS, reference);
}

/** Runs bench.lua, then jit-check.lua, on the modules under `dist` (a tree holding kong/plugins). */
export async function runReaderBench(root: string, opts: { manifest: string; dist: string; label: string; smoke: boolean }): Promise<ReaderRun> {
  const args = [READER_SCRIPT, "--manifest", opts.manifest, "--dist", opts.dist, ...(opts.smoke ? ["--smoke"] : [])];
  const bench = await runToEnd("luajit", args, { cwd: root, timeoutMs: 300_000 });
  const parsed = parseReaderOutput(bench.stdout);
  if (bench.code !== 0 || "error" in parsed) {
    const why = "error" in parsed ? parsed.error : "";
    return { label: opts.label, status: "failed", rows: [], message: `luajit ${args.join(" ")} exited with ${bench.code}: ${(bench.stderr || why).trim().slice(-600)}` };
  }
  const jit = await runJitCheck(root, opts);
  return { label: opts.label, status: "ok", rows: parsed.rows, ...jit };
}

/** One stage of the JIT check ("dump", "fl", "v"), its JSON; a stage that never returns is tried once more. */
async function jitStage(root: string, stage: string, opts: { manifest: string; dist: string; smoke: boolean }): Promise<Record<string, unknown> | string> {
  const args = [JIT_SCRIPT, "--manifest", opts.manifest, "--dist", opts.dist, "--stage", stage, "--seconds", opts.smoke ? "0.2" : "2"];
  let why = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    const run = await runToEnd("luajit", args, { cwd: root, timeoutMs: 60_000 });
    const parsed = lastJson(run.stdout);
    if (run.code === 0 && parsed?.bench === "jit-check") return parsed;
    // LuaJIT 2.1.0-beta3's profiler now and then spins forever: a hang is worth a second try
    why = run.code === null ? "did not finish within 60 s" : `exited with ${run.code}: ${run.stderr.trim().slice(-400)}`;
    if (run.code !== null) break;
  }
  return `luajit ${args.join(" ")} ${why}`;
}

/**
 * The trace dump and the two profiles, each in a process of its own. A diagnostic, not a
 * measurement: a stage that fails leaves its part empty and says why (jit_error).
 */
async function runJitCheck(root: string, opts: { manifest: string; dist: string; smoke: boolean }): Promise<{ jit?: JitCheck; jit_error?: string }> {
  const parts: Record<string, unknown> = {};
  const failures: string[] = [];
  for (const stage of ["dump", "fl", "v"]) {
    const out = await jitStage(root, stage, opts);
    if (typeof out === "string") failures.push(out);
    else Object.assign(parts, out);
  }
  const check = parseJitFields(parts);
  return { ...(check ? { jit: check } : {}), ...(failures.length > 0 ? { jit_error: failures.join("; ") } : {}) };
}

/** Several runs of one side as one: the first failure if any, else each row's fastest, the last JIT check that finished. */
export function bestRows(runs: ReaderRun[]): ReaderRun {
  const failed = runs.find((r) => r.status !== "ok");
  if (failed || runs.length === 0) return failed ?? { label: "", status: "failed", rows: [], message: "not run" };
  const best = new Map<string, ReaderRow>();
  for (const run of runs) {
    for (const row of run.rows) {
      const key = `${row.name}/${row.chunks}`;
      const seen = best.get(key);
      if (!seen || row.us_per_event < seen.us_per_event) best.set(key, row);
    }
  }
  // the last JIT check that finished (each run's reflects the same code)
  const checked = [...runs].reverse().find((r) => r.jit !== undefined);
  const last = runs[runs.length - 1];
  return { ...last, rows: [...best.values()], ...(checked ? { jit: checked.jit, jit_error: undefined } : {}) };
}
