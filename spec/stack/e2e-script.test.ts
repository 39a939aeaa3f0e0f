// tools/e2e.sh (make e2e) without a Docker engine: a fake `docker` CLI answers its compose, ps and
// inspect calls and a fake `npx` stands in for vitest, so the script's own logic is tested here: it
// refuses clearly without Docker, waits for health (one-shot jobs by exit code), hands the suites the
// proxy URL, covers the gpu and db profiles, and always brings the stack down.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./kong-config.ts";

const SCRIPT = join(ROOT, "tools", "e2e.sh");
let dir: string;
let calls: string;

const FAKE_DOCKER = `#!/usr/bin/env bash
echo "docker $*" >>"$FAKE_CALLS"
case "$1" in
  info) exit 0 ;;
  inspect)
    svc=\${@: -1}; svc=\${svc#cid-}
    case " $FAKE_ONESHOT " in *" $svc "*) echo "exited none 0"; exit 0 ;; esac
    if [ "$svc" = "\${FAKE_UNHEALTHY:-}" ]; then echo "running unhealthy 0"; else echo "running healthy 0"; fi
    exit 0 ;;
  compose)
    shift
    args=" $* "
    case "$args" in
      *" version "*) exit 0 ;;
      *" ps -a -q "*) echo "cid-\${@: -1}" ;;
      *" logs --no-color kong "*)
        [ -n "\${FAKE_NO_RECORDS:-}" ] || echo 'kong-1 | 2026/01/01 [warn] [upstream-disconnect] {"outcome":"client_abort","path":"/v1/chat/completions"}' ;;
      *" logs "*) echo "fake logs" ;;
    esac
    exit 0 ;;
esac
exit 0
`;

const FAKE_NPX = `#!/usr/bin/env bash
echo "npx KONG_PROXY_URL=$KONG_PROXY_URL MOCK_LLM_URL=$MOCK_LLM_URL E2E_GPU=$E2E_GPU $*" >>"$FAKE_CALLS"
exit \${FAKE_NPX_RC:-0}
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "e2e-script-"));
  writeFileSync(join(dir, "docker"), FAKE_DOCKER);
  writeFileSync(join(dir, "npx"), FAKE_NPX);
  chmodSync(join(dir, "docker"), 0o755);
  chmodSync(join(dir, "npx"), 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(env: Record<string, string>): { status: number | null; out: string; calls: string[] } {
  calls = join(dir, `calls-${Math.random().toString(36).slice(2)}`);
  writeFileSync(calls, "");
  const r = spawnSync("bash", [SCRIPT], {
    encoding: "utf8",
    env: {
      PATH: `${dir}:${process.env.PATH}`,
      HOME: process.env.HOME ?? "/tmp",
      DOCKER: join(dir, "docker"),
      E2E_ENV_FILE: "/dev/null",
      FAKE_CALLS: calls,
      FAKE_ONESHOT: "kong-migrations kong-import",
      ...env,
    },
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, calls: readFileSync(calls, "utf8").split("\n").filter(Boolean) };
}

describe("tools/e2e.sh", () => {
  it("is valid bash", () => {
    expect(spawnSync("bash", ["-n", SCRIPT]).status).toBe(0);
  });

  it("says in one line that no Docker engine answers, and fails", () => {
    const r = spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { PATH: process.env.PATH, DOCKER: join(dir, "no-such-docker") } });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/no Docker engine answers/);
  });

  it("brings the default stack up, runs the suites against Kong on 8000, checks the disconnect records, brings it down", () => {
    const r = run({});
    expect(r.status, r.out).toBe(0);
    const up = r.calls.findIndex((c) => / compose up -d --build$/.test(c));
    const suites = r.calls.filter((c) => c.startsWith("npx "));
    const down = r.calls.findIndex((c) => / compose down -v/.test(c));
    expect(up).toBeGreaterThanOrEqual(0);
    expect(suites).toHaveLength(1);
    expect(suites[0]).toContain("KONG_PROXY_URL=http://127.0.0.1:8000 MOCK_LLM_URL=http://127.0.0.1:9000 E2E_GPU=0 --no-install vitest run");
    expect(suites[0]).toContain("spec/stack/stream-abort.test.ts");
    expect(down).toBeGreaterThan(r.calls.indexOf(suites[0]));
    // Waited on the default services only, not on the profile ones.
    const inspected = r.calls.filter((c) => c.startsWith("docker inspect")).map((c) => c.split("cid-")[1]);
    expect(inspected.sort()).toEqual(["kong", "mediamtx", "mock-llm", "redis", "video-service"]);
    expect(r.out).toMatch(/\[upstream-disconnect\] records in Kong's log: 1/);
  });

  it("with E2E_PROFILES=gpu,db: runs the GPU tests, re-runs the import, and runs the suites against both Kongs", () => {
    const r = run({ E2E_PROFILES: "gpu,db" });
    expect(r.status, r.out).toBe(0);
    expect(r.calls.find((c) => / up -d --build$/.test(c))).toBe("docker compose --profile gpu --profile db up -d --build");
    const suites = r.calls.filter((c) => c.startsWith("npx "));
    expect(suites.map((c) => /KONG_PROXY_URL=(\S+)/.exec(c)?.[1])).toEqual(["http://127.0.0.1:8000", "http://127.0.0.1:8010"]);
    for (const s of suites) expect(s).toContain("E2E_GPU=1");
    expect(r.calls.some((c) => / compose --profile gpu --profile db run --rm kong-import$/.test(c))).toBe(true);
    const inspected = r.calls.filter((c) => c.startsWith("docker inspect")).map((c) => c.split("cid-")[1]);
    expect(new Set(inspected)).toEqual(new Set(["kong", "mock-llm", "redis", "video-service", "mediamtx", "vllm", "sglang", "postgres", "kong-migrations", "kong-import", "kong-db"]));
  });

  it("fails without running the suites when a service turns unhealthy, and still brings the stack down", () => {
    const r = run({ FAKE_UNHEALTHY: "mock-llm" });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/failed: mock-llm\(unhealthy\)/);
    expect(r.calls.some((c) => c.startsWith("npx "))).toBe(false);
    expect(r.calls.some((c) => / compose down -v/.test(c))).toBe(true);
  });

  it("fails when the suites fail, or when Kong logged no client_abort record", () => {
    const failing = run({ FAKE_NPX_RC: "1" });
    expect(failing.status).not.toBe(0);
    expect(failing.calls.some((c) => / compose down -v/.test(c))).toBe(true);
    const silent = run({ FAKE_NO_RECORDS: "1" });
    expect(silent.status).not.toBe(0);
    expect(silent.out).toMatch(/no client_abort record/);
  });

  it("leaves the stack running with E2E_KEEP=1", () => {
    const r = run({ E2E_KEEP: "1" });
    expect(r.status, r.out).toBe(0);
    expect(r.calls.some((c) => / compose down/.test(c))).toBe(false);
  });
});
