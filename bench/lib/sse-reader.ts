// Runs the SSE usage reader micro-benchmark (bench/sse-reader/bench.lua, owned by the shared
// library) and takes the JSON object of its last line.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runToEnd } from "./procs.ts";
import { writeLargeFixture } from "../../upstream/mock-llm/record-fixtures.ts";
import type { SseReaderResult } from "./report.ts";

export const SSE_READER_SCRIPT = join("bench", "sse-reader", "bench.lua");

export function parseReaderOutput(stdout: string): SseReaderResult {
  const last = stdout.trim().split("\n").pop() ?? "";
  let parsed: { mb_per_s?: Record<string, number>; source?: string; bytes?: number };
  try {
    parsed = JSON.parse(last);
  } catch {
    return { status: "failed", message: `last line is not JSON: ${last.slice(0, 200)}` };
  }
  if (!parsed.mb_per_s || typeof parsed.mb_per_s !== "object") return { status: "failed", message: "no mb_per_s in its JSON", raw: parsed };
  return { status: "ok", mb_per_s: parsed.mb_per_s, source: parsed.source, bytes: parsed.bytes, raw: parsed };
}

/** `dist`: the tree of transpiled modules to read (the harness's snapshot of dist/). */
export async function runSseReaderBench(root: string, smoke: boolean, dist?: string): Promise<SseReaderResult> {
  if (!existsSync(join(root, SSE_READER_SCRIPT))) return { status: "not available", message: `${SSE_READER_SCRIPT} does not exist yet` };
  // the issue asks for a recorded stream: the mock LLM records its deterministic ~1 MB OpenAI stream
  // (spec/fixtures/streams/openai-1mb.sse, git-ignored), which bench.lua prefers when present
  await writeLargeFixture();
  const args = [SSE_READER_SCRIPT, ...(smoke ? ["--smoke"] : []), ...(dist ? ["--dist", dist] : [])];
  const { code, stdout, stderr } = await runToEnd("luajit", args, { cwd: root, timeoutMs: 300_000 });
  if (code !== 0) return { status: "failed", message: `luajit ${args.join(" ")} exited with ${code}: ${(stderr || stdout).trim().slice(-500)}` };
  return parseReaderOutput(stdout);
}
