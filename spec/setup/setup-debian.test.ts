// tools/setup-debian.sh, the first step of `make test`, on machines this one is not: the script
// runs with a PATH of stand-ins (dpkg-query, apt-cache, apt-get, sudo, id) that keep the installed set
// in a state folder and log every call, so each decision (install or not, update or not, sudo or
// not, stop with which message) is checked without touching this machine's packages.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCRIPT = path.join(projectRoot, "tools", "setup-debian.sh");

/** Bash stand-ins. STATE/installed lists installed packages; LOG gets one line a call. */
const FAKES: Record<string, string> = {
  "dpkg-query": `
for a in "$@"; do
  case $a in -*) continue;; esac
  if grep -qx "$a" "$STATE/installed"; then echo "$a install ok installed"; else echo "dpkg-query: no packages found matching $a" >&2; fi
done`,
  "apt-cache": `
echo "apt-cache $*" >> "$LOG"
p=$2
if [ -n "\${NO_CANDIDATE:-}" ] && [ ! -e "$STATE/updated" ] && [[ " $NO_CANDIDATE " == *" $p "* ]]; then exit 0; fi
printf '%s:\\n  Installed: (none)\\n  Candidate: 1.0\\n' "$p"`,
  "apt-get": `
echo "apt-get $* [DEBIAN_FRONTEND=\${DEBIAN_FRONTEND:-}]" >> "$LOG"
case " $* " in
  *" update "*) [ -z "\${UPDATE_FAILS:-}" ] || exit 100; touch "$STATE/updated"; exit 0;;
esac
if [ "\${INSTALL_FAILS:-}" = always ] || { [ "\${INSTALL_FAILS:-}" = until-update ] && [ ! -e "$STATE/updated" ]; }; then
  echo "E: Failed to fetch" >&2; exit 100
fi
seen=0
for a in "$@"; do
  [ "$a" = install ] && { seen=1; continue; }
  [ $seen = 1 ] || continue
  case $a in -*) continue;; esac
  [[ " \${STAYS_MISSING:-} " == *" $a "* ]] || echo "$a" >> "$STATE/installed"
done`,
  sudo: `
echo "sudo $*" >> "$LOG"
[ "$1" = -n ] || { echo "sudo: called without -n" >&2; exit 1; }
shift
if [ "\${SUDO:-}" = password ]; then echo "sudo: a password is required" >&2; exit 1; fi
exec "$@"`,
  id: `[ "$1" = -u ] && echo "\${FAKE_UID:-0}"`,
};

/** What the stand-ins need from this machine (the script itself uses bash builtins and these only). */
const REAL_TOOLS = ["env", "grep", "touch", "true"];

/** Every package the script knows, from its own --list. */
function allPackages(): string[] {
  const r = spawnSync("bash", [SCRIPT, "--list"], { encoding: "utf8" });
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

interface Machine {
  installed?: string[];
  uid?: number;
  without?: string[];
  env?: Record<string, string>;
}

interface Outcome {
  status: number | null;
  out: string;
  calls: string[];
  installed: string[];
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function runOn(machine: Machine): Outcome {
  const dir = mkdtempSync(path.join(tmpdir(), "setup-debian-"));
  dirs.push(dir);
  const bin = path.join(dir, "bin");
  const state = path.join(dir, "state");
  mkdirSync(bin);
  mkdirSync(state);
  writeFileSync(path.join(state, "installed"), (machine.installed ?? []).map((p) => `${p}\n`).join(""));
  for (const [name, body] of Object.entries(FAKES)) {
    if (machine.without?.includes(name)) continue;
    writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  }
  for (const tool of REAL_TOOLS) {
    const real = ["/usr/bin", "/bin"].map((d) => path.join(d, tool)).find((p) => existsSync(p));
    if (!real) throw new Error(`${tool} not found in /usr/bin or /bin`);
    symlinkSync(real, path.join(bin, tool));
  }
  const log = path.join(dir, "log");
  writeFileSync(log, "");
  const env = { PATH: bin, STATE: state, LOG: log, FAKE_UID: String(machine.uid ?? 0), ...machine.env };
  const r = spawnSync("/bin/bash", [SCRIPT], { env, encoding: "utf8", timeout: 20_000 });
  return {
    status: r.status,
    out: `${r.stdout}${r.stderr}`,
    calls: readFileSync(log, "utf8").split("\n").filter(Boolean),
    installed: readFileSync(path.join(state, "installed"), "utf8").split("\n").filter(Boolean),
  };
}

const installs = (o: Outcome) => o.calls.filter((c) => / install /.test(c) && c.includes("apt-get"));
const updates = (o: Outcome) => o.calls.filter((c) => /apt-get update/.test(c));

describe("tools/setup-debian.sh", () => {
  const all = allPackages();
  const some = all.filter((p) => p !== "redis-server" && p !== "prometheus");

  it("lists each package with why, prometheus among them", () => {
    const r = spawnSync("bash", [SCRIPT, "--list"], { encoding: "utf8" });
    const lines = r.stdout.split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(13);
    for (const l of lines) expect(l.trim().split(/\s+/).length, `no reason given: ${l}`).toBeGreaterThan(2);
    expect(all).toEqual(expect.arrayContaining(["nginx-light", "libnginx-mod-http-lua", "redis-server", "lua-busted", "prometheus"]));
  });

  it("does nothing when every package is installed", () => {
    const o = runOn({ installed: all });
    expect(o.status, o.out).toBe(0);
    expect(o.out).toContain(`the ${all.length} Debian packages the tests need are installed`);
    expect(o.calls.filter((c) => c.startsWith("apt-"))).toEqual([]);
  });

  it("as root, installs only the missing ones, says why, without apt-get update when the lists know them", () => {
    const o = runOn({ installed: some });
    expect(o.status, o.out).toBe(0);
    expect(o.out).toMatch(/installing 2 Debian packages/);
    expect(o.out).toMatch(/redis-server\s+the redis policy/);
    expect(o.out).toMatch(/prometheus\s+\S/);
    expect(updates(o)).toEqual([]);
    expect(installs(o)).toEqual(["apt-get install -y -q --no-install-recommends redis-server prometheus [DEBIAN_FRONTEND=noninteractive]"]);
    expect(o.calls.some((c) => c.startsWith("sudo"))).toBe(false);
    expect(o.installed.sort()).toEqual([...all].sort());
  });

  it("runs apt-get update first when a missing package has no candidate (a fresh image has no lists)", () => {
    const o = runOn({ installed: some, env: { NO_CANDIDATE: "prometheus" } });
    expect(o.status, o.out).toBe(0);
    const order = o.calls.filter((c) => c.startsWith("apt-get")).map((c) => c.split(" ")[1]);
    expect(order).toEqual(["update", "install"]);
  });

  it("retries once after apt-get update when install fails on stale lists", () => {
    const o = runOn({ installed: some, env: { INSTALL_FAILS: "until-update" } });
    expect(o.status, o.out).toBe(0);
    const order = o.calls.filter((c) => c.startsWith("apt-get")).map((c) => c.split(" ")[1]);
    expect(order).toEqual(["install", "update", "install"]);
  });

  it("stops with the command to run when apt-get cannot install", () => {
    const o = runOn({ installed: some, env: { INSTALL_FAILS: "always" } });
    expect(o.status).toBe(1);
    expect(o.out).toContain("could not install the packages: run apt-get install -y --no-install-recommends redis-server prometheus");
    expect(updates(o)).toHaveLength(1);
  });

  it("stops when apt-get reports success but a package is still not installed", () => {
    const o = runOn({ installed: some, env: { STAYS_MISSING: "prometheus" } });
    expect(o.status).toBe(1);
    expect(o.out).toContain("still not installed: prometheus");
  });

  it("not root, with password-less sudo: installs through sudo -n", () => {
    const o = runOn({ installed: some, uid: 1000 });
    expect(o.status, o.out).toBe(0);
    expect(o.out).toContain("(through sudo)");
    expect(o.calls).toContain("sudo -n true");
    expect(o.calls).toContain("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server prometheus");
    expect(o.installed).toContain("prometheus");
  });

  it("not root, sudo wants a password: one message with the packages and the command, nothing installed", () => {
    const o = runOn({ installed: some, uid: 1000, env: { SUDO: "password" } });
    expect(o.status).toBe(1);
    expect(o.out).toContain("sudo asks for a password");
    expect(o.out).toMatch(/redis-server\s+the redis policy/);
    expect(o.out).toContain("run: sudo apt-get install -y --no-install-recommends redis-server prometheus");
    expect(installs(o)).toEqual([]);
  });

  it("not root and no sudo: one message with the packages and the command", () => {
    const o = runOn({ installed: some, uid: 1000, without: ["sudo"] });
    expect(o.status).toBe(1);
    expect(o.out).toContain("not root and has no sudo");
    expect(o.out).toContain("as root, run: apt-get install -y --no-install-recommends redis-server prometheus");
    expect(installs(o)).toEqual([]);
  });

  it("not Debian: names every package and how to go on without the check", () => {
    const o = runOn({ without: ["dpkg-query", "apt-get", "apt-cache"] });
    expect(o.status).toBe(1);
    expect(o.out).toContain("this is not a Debian system");
    for (const p of all) expect(o.out).toContain(p);
    expect(o.out).toContain("SKIP_DEBIAN_PACKAGES=1 make test");
  });

  it("SKIP_DEBIAN_PACKAGES=1 checks nothing, even where nothing is installed", () => {
    const o = runOn({ without: ["dpkg-query", "apt-get", "apt-cache"], env: { SKIP_DEBIAN_PACKAGES: "1" } });
    expect(o.status, o.out).toBe(0);
    expect(o.out).toContain("not checking");
    expect(o.calls).toEqual([]);
  });
});
