// The gateway CLI: refusing to start (bad plugin config, unknown plugins, bad handlers, missing
// nginx), the warning for bundled plugins it does not run, shared dict injection and stopping.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayStartError, PROJECT_ROOT, startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { request } from "./http.ts";
import { startUpstream, type Upstream } from "./upstreams.ts";

let slow: Upstream;

beforeAll(async () => {
  // answers after 1.5 s: an in-flight request while the gateway is asked to stop
  slow = await startUpstream((_req, res) => {
    setTimeout(() => res.end("late answer"), 1500);
  });
});

afterAll(async () => {
  await slow?.close();
});

function yamlWith(plugins: string, upstream = "http://127.0.0.1:9"): string {
  return `
_format_version: "3.0"
services:
  - name: svc
    url: ${upstream}
    routes:
      - { name: r, paths: ["/"] }
plugins:
${plugins}
`;
}

async function startError(yaml: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const gw = await startProbeGateway(yaml, env);
    await gw.stop();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayStartError);
    return (err as GatewayStartError).message;
  }
  throw new Error("the gateway started although it should have refused to");
}

describe("refusing to start", () => {
  it("names the plugin, the field and the rule of an invalid plugin config", async () => {
    const message = await startError(yamlWith(`  - { name: probe-a, config: { exit_status: 700 } }`));
    expect(message).toContain("probe-a");
    expect(message).toContain("exit_status");
    expect(message).toMatch(/value should be between 100 and 599/);
  });

  it("reports a wrong type", async () => {
    const message = await startError(yamlWith(`  - { name: probe-b, config: { tag: [1, 2] } }`));
    expect(message).toContain("probe-b");
    expect(message).toMatch(/tag.*expected a string/);
  });

  it("refuses a plugin that is not on the Lua path, with Kong's message", async () => {
    const message = await startError(yamlWith(`  - name: no-such-plugin`));
    expect(message).toContain("plugin 'no-such-plugin' not enabled; add it to the 'plugins' configuration property");
  });

  it("refuses a plugin left out of KONG_PLUGINS", async () => {
    const message = await startError(yamlWith(`  - name: probe-a`), { KONG_PLUGINS: "bundled,probe-b" });
    expect(message).toContain("plugin 'probe-a' not enabled");
  });

  it("refuses a handler whose PRIORITY is not an integer", async () => {
    const message = await startError(yamlWith(`  - name: probe-badprio`));
    expect(message).toContain('Plugin "probe-badprio" cannot be loaded because its PRIORITY field is not a valid integer number');
  });

  it("refuses a handler implementing both response and header_filter", async () => {
    const message = await startError(yamlWith(`  - name: probe-badresponse`));
    expect(message).toContain("implements both `response` and `header_filter` or `body_filter` methods");
  });

  it("refuses an invalid declarative entity before starting nginx", async () => {
    const message = await startError(`
_format_version: "3.0"
services:
  - name: svc
    url: http://127.0.0.1:9
    routes:
      - { name: r, strip_path: true }
`);
    expect(message).toContain("in 'services[0].routes[0]': must set one of 'methods', 'hosts', 'headers', 'paths'");
  });

  it("names the Debian packages when nginx is missing", async () => {
    const message = await startError(yamlWith(`  - name: probe-a`), { KONG_LOCAL_NGINX: "/nonexistent/nginx" });
    expect(message).toContain("apt-get install nginx-light libnginx-mod-http-lua lua-resty-core luajit2 lua-cjson");
  });
});

describe("starting", () => {
  let gw: Gateway;

  beforeAll(async () => {
    gw = await startProbeGateway(yamlWith(
        `  - name: probe-a
  - name: cors
  - name: rate-limiting
    config: { minute: 5 }`,
        slow.url,
      ), { KONG_NGINX_HTTP_LUA_SHARED_DICT: "probe_dict 1m; other_dict 2m" });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it("lists the bundled plugins it does not run in one warning", () => {
    const warnings = gw.output().split("\n").filter((l) => l.includes("warning"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("cors, rate-limiting");
  });

  it("declares Kong's shared dicts and the injected ones", () => {
    const conf = readFileSync(join(gw.prefix, "nginx.conf"), "utf8");
    for (const dict of ["kong 5m", "kong_locks 8m", "kong_rate_limiting_counters 12m", "kong_db_cache 128m", "probe_dict 1m", "other_dict 2m"]) {
      expect(conf).toContain(`lua_shared_dict ${dict};`);
    }
  });

  it("applies Kong's nginx settings", () => {
    const conf = readFileSync(join(gw.prefix, "nginx.conf"), "utf8");
    for (const line of ["lua_regex_match_limit 100000;", "lua_regex_cache_max_entries 8192;", "client_max_body_size 0;", "client_body_buffer_size 8k;", "lua_socket_log_errors off;", "proxy_http_version 1.1;"]) {
      expect(conf).toContain(line);
    }
  });
});

describe("stopping", () => {
  it("finishes in-flight requests on SIGTERM, then exits", async () => {
    const gw = await startProbeGateway(yamlWith("  - name: probe-a", slow.url));
    const pending = request(`${gw.url}/`);
    await new Promise((r) => setTimeout(r, 300));
    const nginxPid = Number(readFileSync(join(gw.prefix, "logs", "nginx.pid"), "utf8"));
    const stopped = gw.stop();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body).toBe("late answer");
    await stopped;
    expect(() => process.kill(nginxPid, 0)).toThrow();
    await expect(request(`${gw.url}/`, { timeoutMs: 1000 })).rejects.toThrow();
  });

  it("prints the temp prefix it uses when none is given, and exits 0 on SIGINT", async () => {
    const file = join(PROJECT_ROOT, "spec", "fixtures", "gateway", "minimal.yml");
    const { freePort } = await import("../helpers/ports.ts");
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "gateway", "cli.ts"), "--config", file, "--proxy-port", String(port)], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
      child.stdout.on("data", () => {
        if (out.includes("gateway listening")) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    expect(out).toMatch(/gateway prefix: \/.*kong-local-/);
    const res = await request(`http://127.0.0.1:${port}/nothing`);
    expect(res.status).toBe(404);
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(0);
  });
});

describe("workers", () => {
  it("runs KONG_NGINX_WORKER_PROCESSES workers sharing Kong's dicts", async () => {
    const gw = await startProbeGateway(yamlWith("  - name: probe-a", slow.url), { KONG_NGINX_WORKER_PROCESSES: "2" });
    try {
      expect(readFileSync(join(gw.prefix, "nginx.conf"), "utf8")).toContain("worker_processes 2;");
      // init_worker ran once per worker
      const inits = gw.errorLog().match(/probe-init-worker probe-a/g) ?? [];
      expect(inits.length).toBe(2);
    } finally {
      await gw.stop();
    }
  });
});
