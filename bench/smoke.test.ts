// The benchmark harness in smoke mode (seconds-long cells), so `make bench` cannot rot: every
// configuration must start, pass its checks, count exactly and carry every workload without a
// single error; and a configuration that fails under load must fail the run instead of producing
// a number. No speed is asserted: smoke cells are too short, and run side by side.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../spec/helpers/gateway.ts";
import { CONFIGS } from "./lib/configs.ts";
import type { BenchResults } from "./lib/report.ts";
import { STREAM_SHAPES } from "./lib/streams.ts";

const dir = mkdtempSync(join(tmpdir(), "bench-smoke-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "bench", "run.ts"), ...args], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.once("close", (code) => resolve({ code, output }));
  });
}

describe("bench/run.ts --smoke", () => {
  it("checks and loads every configuration and workload without an error", async () => {
    const out = join(dir, "smoke.json");
    const { code, output } = await runBench(["--smoke", "--out", out]);
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    const r = JSON.parse(readFileSync(out, "utf8")) as BenchResults;
    expect(r.ok).toBe(true);
    expect(r.mode).toBe("smoke");
    expect(r.errors).toEqual([]);
    // every configuration ran: nothing skipped for a missing plugin
    expect(r.configs.map((c) => [c.id, c.available])).toEqual(CONFIGS.map((c) => [c.id, true]));
    expect(r.workloads.map((w) => w.id)).toEqual([...STREAM_SHAPES, "json", "pg-1k", "pg-100k"]);
    for (const w of r.workloads) {
      for (const row of w.rows) {
        const cell = w.rounds[0][row.id];
        expect(cell.requests, `${w.id}/${row.id}`).toBeGreaterThan(0);
        expect(Object.values(cell.errors).every((e) => e === 0), `${w.id}/${row.id}`).toBe(true);
        // every row but the references has a ratio to each of them
        for (const b of w.bases) if (b.id !== row.id) expect(w.summary.find((s) => s.row === row.id)?.vs[b.id]?.rps, `${w.id}/${row.id} vs ${b.id}`).toBeGreaterThan(0);
      }
    }
    const openai = r.workloads.find((w) => w.id === "openai");
    expect(openai?.rows.map((x) => x.id)).toEqual(["bare", "gateway", "bytes", "trl-local", "trl-local-inject", "prompt-guard", "udl", "all3"]);
    expect(openai?.bases.map((b) => b.id)).toEqual(["gateway", "bytes"]);
    expect(r.workloads.find((w) => w.id === "json")?.rows.map((x) => x.id)).toEqual(CONFIGS.map((c) => c.id).filter((id) => id !== "bytes"));
    // what body_filter received was logged for every file
    expect(r.chunks.map((c) => c.file)).toEqual(r.streams.map((s) => s.file));
    for (const c of r.chunks) expect(c.bytes).toBe(r.streams.find((s) => s.file === c.file)?.bytes);
    // the plugins counted, exactly
    expect(r.counts.length).toBeGreaterThan(20);
    expect(r.counts.filter((c) => c.counted !== c.want)).toEqual([]);
    for (const id of ["gateway", "all3"]) {
      const m = r.memory[id];
      expect(m.streams).toBe(20);
      expect(m.during_kb).toBeGreaterThan(m.before_kb);
    }
    expect(r.reader.current?.status).toBe("ok");
    expect(r.reader.current?.rows.map((x) => `${x.name}/${x.chunks}`)).toEqual(STREAM_SHAPES.flatMap((s) => [`${s}/4096`, `${s}/event`]));
    expect(r.reader.current?.jit?.traces).toBeGreaterThan(0);
    expect(r.targets.map((t) => t.status).includes("not measured")).toBe(false);
    expect(r.machine.lua_nginx_module).toMatch(/^\d+\.\d+\.\d+$/);
    // the tables went to stdout
    expect(output).toContain("Saturated streams");
    expect(output).toContain("Targets");
  }, 240_000);

  it("fails, and writes no results, when a configuration answers errors under load", async () => {
    const out = join(dir, "fault.json");
    const { code, output } = await runBench([
      "--smoke",
      "--configs", "trl-redis",
      "--workloads", "json",
      "--skip-memory",
      "--skip-reader",
      "--fault", "stop-redis",
      "--out", out,
    ]);
    expect(code).toBe(1);
    expect(output).toMatch(/json \/ trl-redis, round 1: \d+ errors/);
    expect(output).toContain("FAILED");
    expect(existsSync(out)).toBe(false);
    const failed = JSON.parse(readFileSync(join(dir, "fault.failed.json"), "utf8")) as BenchResults;
    expect(failed.ok).toBe(false);
  }, 120_000);
});
