// The benchmark harness in smoke mode (seconds-long cells), so `make bench` cannot rot: every
// configuration must start, pass its checks and carry load without a single error; and a
// configuration that fails under load must fail the run instead of producing a number.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../spec/helpers/gateway.ts";
import { CONFIGS } from "./lib/configs.ts";
import type { BenchResults } from "./lib/report.ts";

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
  it("measures every configuration and workload without an error", async () => {
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
    expect(r.workloads.map((w) => w.id)).toEqual(["json", "sse", "pg-1k", "pg-100k"]);
    for (const w of r.workloads) {
      for (const id of w.configs) {
        const cell = w.rounds[0][id];
        expect(cell.requests, `${w.id}/${id}`).toBeGreaterThan(0);
        expect(cell.rps, `${w.id}/${id}`).toBeGreaterThan(0);
        expect(Object.values(cell.errors).every((e) => e === 0), `${w.id}/${id}`).toBe(true);
      }
      const bare = w.summary.find((s) => s.config === "bare")!;
      expect(bare.vs_bare).toBeNull();
      for (const s of w.summary.filter((x) => x.config !== "bare")) expect(s.vs_bare!.rps).toBeGreaterThan(0);
    }
    expect(r.workloads.find((w) => w.id === "json")!.configs).toEqual(CONFIGS.map((c) => c.id));
    for (const id of ["gateway", "all3"]) {
      const m = r.memory[id];
      expect(m.streams).toBe(20);
      expect(m.during_kb).toBeGreaterThan(m.before_kb);
    }
    expect(["ok", "not available"]).toContain(r.sse_reader.status);
    expect(r.targets.map((t) => t.id)).toEqual(["json_rps_all_plugins", "sse_added_p50", "lua_memory_per_stream", "sse_reader_16k"]);
    expect(r.machine.lua_nginx_module).toMatch(/^\d+\.\d+\.\d+$/);
    // the table went to stdout
    expect(output).toContain("bare nginx proxy_pass");
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
    const failed = JSON.parse(readFileSync(`${out}.failed.tmp`, "utf8")) as BenchResults;
    expect(failed.ok).toBe(false);
  }, 120_000);
});
