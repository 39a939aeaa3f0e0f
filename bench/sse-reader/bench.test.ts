// Smoke run of the SSE usage reader micro-benchmark (issue 10 item 4), so the harness cannot rot:
// a 64 KiB generated stream in 1-byte, 64-byte and 16 KiB chunks, results checked by the script
// itself (it exits non-zero when the reader finds a wrong usage, text count or terminator).
// The 200 MB/s target is not asserted here: a smoke run on a shared machine is too short and
// noisy for that; `luajit bench/sse-reader/bench.lua` reports it.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

const READER = "dist/kong/plugins/ai-gateway-shared/stream_usage.lua";

describe("bench/sse-reader smoke", () => {
  it("runs, checks its results and prints MB/s per chunk size as JSON on the last line", () => {
    if (!existsSync(READER)) throw new Error(`${READER} is missing: run make lua first`);
    const run = spawnSync("luajit", ["bench/sse-reader/bench.lua", "--smoke"], { encoding: "utf8", timeout: 60_000 });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split("\n");
    const result = JSON.parse(lines[lines.length - 1]) as { bench: string; smoke: boolean; mb_per_s: Record<string, number> };
    expect(result.bench).toBe("sse-reader");
    expect(result.smoke).toBe(true);
    for (const size of ["1", "64", "16384"]) expect(result.mb_per_s[size]).toBeGreaterThan(0);
    console.log(lines.join("\n"));
  });
});
