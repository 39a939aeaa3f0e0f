// The reader benchmark and the JIT check in smoke mode, so they cannot rot: every stream shape in
// 4 KiB chunks and one event per chunk, each report checked by the script itself (it exits
// non-zero when the reader finds a wrong usage, text count or terminator, which the last test
// proves with a wrong expectation). No speed is asserted: a smoke run on a shared machine is too
// short and noisy for that; `make bench` reports the targets.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { READER_CHUNKS, parseJitOutput, parseReaderOutput } from "../lib/sse-reader.ts";
import { STREAM_SHAPES, streamFiles, writeReaderStreams, type ReaderManifestEntry } from "../lib/streams.ts";

const READER = "dist/kong/plugins/ai-gateway-shared/stream_usage.lua";
const dir = mkdtempSync(join(tmpdir(), "reader-bench-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function luajit(args: string[]) {
  if (!existsSync(READER)) throw new Error(`${READER} is missing: run make lua first`);
  return spawnSync("luajit", args, { encoding: "utf8", timeout: 60_000 });
}

describe("bench/sse-reader", () => {
  const manifest = writeReaderStreams(join(dir, "streams"), streamFiles(200), READER_CHUNKS);

  it("bench.lua reads every shape correctly and reports µs per event and MB/s for each chunking", () => {
    const run = luajit(["bench/sse-reader/bench.lua", "--manifest", manifest, "--smoke"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const parsed = parseReaderOutput(run.stdout);
    if ("error" in parsed) throw new Error(parsed.error);
    expect(parsed.rows.map((r) => `${r.name}/${r.chunks}`)).toEqual(STREAM_SHAPES.flatMap((s) => [`${s}/4096`, `${s}/event`]));
    for (const r of parsed.rows) {
      expect(r.us_per_event, `${r.name}/${r.chunks}`).toBeGreaterThan(0);
      expect(r.mb_per_s, `${r.name}/${r.chunks}`).toBeGreaterThan(0);
      // one event per chunk means as many chunks as events
      if (r.chunks === "event") expect(r.chunk_count).toBe(r.events);
    }
  });

  it("jit-check.lua runs the reader under the trace dump and the profiler and reports what it found", () => {
    const run = luajit(["bench/sse-reader/jit-check.lua", "--manifest", manifest, "--seconds", "0.5"]);
    expect(run.status, run.stderr).toBe(0);
    const check = parseJitOutput(run.stdout);
    expect(check).toBeDefined();
    expect(check?.stream).toBe("openai");
    expect(check?.traces).toBeGreaterThan(0);
    expect(check?.nyi).toBeLessThanOrEqual(check?.aborts ?? 0);
    // the profiler samples every 10 ms: a short run may leave one of the two profiles empty
    expect((check?.profile_fl.length ?? 0) + (check?.profile_v.length ?? 0)).toBeGreaterThan(0);
  });

  it("a reader whose report differs from the stream's expectation fails the benchmark", () => {
    const entries = JSON.parse(readFileSync(manifest, "utf8")) as ReaderManifestEntry[];
    const openai = entries[0];
    const wrong = join(dir, "wrong.json");
    writeFileSync(wrong, JSON.stringify([{ ...openai, expected: { ...openai.expected, completion_tokens: (openai.expected.completion_tokens ?? 0) + 1 } }]));
    const run = luajit(["bench/sse-reader/bench.lua", "--manifest", wrong, "--smoke"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("WRONG RESULT: openai / 4096-byte chunks: completion_tokens=200 (want 201)");
  });
});
