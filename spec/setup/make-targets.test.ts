// What `make build` and `make test` run before their work, read from `make -n` (which prints the
// commands without running them): the package setup comes first in make test, and the npm ci of
// make build runs onnxruntime-node's install script with its CUDA download off unless asked for.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function dryRun(...args: string[]): string[] {
  const r = spawnSync("make", ["-n", "--no-print-directory", ...args], { cwd: projectRoot, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").filter(Boolean);
}

describe("make test", () => {
  it("runs the package setup before anything else", () => {
    const commands = dryRun("test");
    expect(commands[0]).toBe("bash tools/setup-debian.sh");
    expect(commands.at(-1)).toBe("bash tools/run-tests.sh");
  });
});

describe("make build's npm ci", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "npm-ci-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in npm that prints what onnxruntime-node's install script would read.
  writeFileSync(path.join(dir, "npm"), `#!/bin/sh\necho "ONNXRUNTIME_NODE_INSTALL=$ONNXRUNTIME_NODE_INSTALL args=$*"\n`);
  chmodSync(path.join(dir, "npm"), 0o755);

  /** The recipe make would run when package-lock.json is newer than node_modules, run against the stand-in. */
  function npmCi(env: Record<string, string>): string {
    const recipe = dryRun("-W", "package-lock.json", "node_modules/.package-lock.json");
    expect(recipe).toHaveLength(1);
    const r = spawnSync("/bin/sh", ["-c", recipe[0]], { env: { PATH: `${dir}:/usr/bin:/bin`, ...env }, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  it("skips the CUDA download by default", () => {
    expect(npmCi({})).toBe("ONNXRUNTIME_NODE_INSTALL=skip args=ci --no-audit --no-fund");
  });

  it("fetches it when ONNXRUNTIME_NODE_INSTALL asks for it", () => {
    expect(npmCi({ ONNXRUNTIME_NODE_INSTALL: "cuda12" })).toBe("ONNXRUNTIME_NODE_INSTALL=cuda12 args=ci --no-audit --no-fund");
  });
});
