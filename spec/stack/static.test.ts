// Static checks of the stack: docker-compose.yml, .env.example, kong/Dockerfile and
// kong/kong.yml, read as files. No Docker engine needed; `docker-compose config` (Debian's
// docker-compose 1.29, or `docker compose` v2) validates the compose file.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  COMPOSE_FILE, ENV_EXAMPLE, KONG_BUNDLED_PLUGINS, KONG_STANDARD_DICTS, ROOT,
  composeVariables, consumerKey, declaredPlugins, declaredServices, envFileEntries, ourPlugins,
  readDockerfile, readKongYml, type Obj,
} from "./kong-config.ts";

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const composeText = readFileSync(COMPOSE_FILE, "utf8");
const compose = parseYaml(composeText, { merge: true }) as { services: Record<string, Obj>; volumes?: Obj };
const services = compose.services;
const kongYml = readKongYml();
const dockerfile = readDockerfile();

/** The compose CLI this machine has: Debian's docker-compose 1.29, else the docker compose v2 plugin. */
function composeCli(): string[] | null {
  if (spawnSync("docker-compose", ["version"], { encoding: "utf8" }).status === 0) return ["docker-compose"];
  if (spawnSync("docker", ["compose", "version"], { encoding: "utf8" }).status === 0) return ["docker", "compose"];
  return null;
}

function profilesOf(name: string): string[] {
  const p = services[name]?.profiles;
  return Array.isArray(p) ? p.map(String) : [];
}

function dependsOn(name: string): Record<string, string> {
  const d = services[name]?.depends_on;
  if (Array.isArray(d)) return Object.fromEntries(d.map((s) => [String(s), "service_started"]));
  if (!isObj(d)) return {};
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, isObj(v) ? String(v.condition ?? "service_started") : "service_started"]));
}

/** Container ports a service publishes on the host (short "a:b", "ip:a:b", "b" and long syntax). */
function publishedContainerPorts(name: string): number[] {
  const ports = services[name]?.ports;
  if (!Array.isArray(ports)) return [];
  return ports.map((p) => {
    if (isObj(p)) return Number(p.target);
    const spec = String(p).split("/")[0];
    return Number(spec.split(":").pop());
  });
}

const oneShot = (name: string) => services[name]?.restart === "no";

describe("docker-compose.yml", () => {
  it("passes `docker-compose config` without profiles and with gpu + db + observability (.env.example as the env file)", () => {
    const cli = composeCli();
    if (!cli) {
      throw new Error("neither docker-compose nor `docker compose` is installed: install Debian's docker-compose (apt-get install docker-compose) to validate docker-compose.yml");
    }
    for (const profiles of [[], ["gpu", "db", "observability"]]) {
      const args = [...cli.slice(1), "--env-file", ENV_EXAMPLE, "-f", COMPOSE_FILE, ...profiles.flatMap((p) => ["--profile", p]), "config", "-q"];
      const r = spawnSync(cli[0], args, { cwd: ROOT, encoding: "utf8" });
      expect(r.status, `${cli.join(" ")} ${args.slice(cli.length - 1).join(" ")}\n${r.stderr}`).toBe(0);
    }
  });

  it("has the stack's services, vLLM and SGLang in profile gpu, PostgreSQL mode in profile db, Prometheus and Grafana in profile observability", () => {
    expect(Object.keys(services).sort()).toEqual(
      ["kong", "mock-llm", "redis", "video-service", "mediamtx", "vllm", "sglang", "postgres", "kong-migrations", "kong-import", "kong-db",
        "prometheus", "grafana"].sort(),
    );
    for (const s of ["prometheus", "grafana"]) expect(profilesOf(s), s).toEqual(["observability"]);
    for (const s of ["kong", "mock-llm", "redis", "video-service", "mediamtx"]) expect(profilesOf(s), s).toEqual([]);
    for (const s of ["vllm", "sglang"]) expect(profilesOf(s), s).toEqual(["gpu"]);
    for (const s of ["postgres", "kong-migrations", "kong-import", "kong-db"]) expect(profilesOf(s), s).toEqual(["db"]);
  });

  it("gives every long-running service a healthcheck; one-shot jobs are awaited with service_completed_successfully", () => {
    for (const [name, svc] of Object.entries(services)) {
      if (oneShot(name)) {
        expect(svc.healthcheck, `${name} is a one-shot job`).toBeUndefined();
        const waiters = Object.keys(services).filter((s) => dependsOn(s)[name]);
        expect(waiters.length, `someone waits for one-shot ${name}`).toBeGreaterThan(0);
        for (const w of waiters) expect(dependsOn(w)[name], `${w} -> ${name}`).toBe("service_completed_successfully");
        continue;
      }
      const hc = svc.healthcheck;
      expect(isObj(hc) && Array.isArray(hc.test) && hc.test.length > 1, `${name} has a healthcheck test`).toBe(true);
    }
  });

  it("waits only on healthy or completed services, and never from the default stack on a profile service", () => {
    for (const name of Object.keys(services)) {
      for (const [dep, condition] of Object.entries(dependsOn(name))) {
        expect(services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(["service_healthy", "service_completed_successfully"], `${name} -> ${dep}`).toContain(condition);
        if (condition === "service_healthy") expect(services[dep].healthcheck, `${dep} needs a healthcheck`).toBeDefined();
        if (profilesOf(name).length === 0) expect(profilesOf(dep), `${name} (default stack) must not need ${dep}`).toEqual([]);
      }
    }
    expect(Object.keys(dependsOn("kong")).some((d) => ["vllm", "sglang"].includes(d))).toBe(false);
  });

  it("publishes Kong's proxy but never the Admin API (8001/8444) of either Kong", () => {
    expect(publishedContainerPorts("kong")).toEqual(expect.arrayContaining([8000, 8443]));
    expect(publishedContainerPorts("kong-db")).toContain(8000);
    for (const k of ["kong", "kong-db"]) {
      for (const port of [8001, 8444]) expect(publishedContainerPorts(k), `${k} publishes ${port}`).not.toContain(port);
      const env = services[k].environment as Obj;
      expect(String(env.KONG_ADMIN_LISTEN), `${k} admin listens on loopback only`).toMatch(/^127\.0\.0\.1:8001$/);
    }
  });

  it("runs every Kong service from the image built by kong/Dockerfile, DB-less Kong from kong/kong.yml", () => {
    for (const k of ["kong", "kong-db", "kong-migrations", "kong-import"]) {
      expect(String(services[k].image), k).toMatch(/^\$\{KONG_IMAGE:-[^}]+\}$/);
      expect((services[k].build as Obj).dockerfile, k).toBe("kong/Dockerfile");
    }
    const env = services.kong.environment as Obj;
    expect(env.KONG_DATABASE).toBe("off");
    expect(env.KONG_DECLARATIVE_CONFIG).toBe("/kong/kong.yml");
    expect(services.kong.volumes).toContain("./kong/kong.yml:/kong/kong.yml:ro");
    expect((services["kong-db"].environment as Obj).KONG_DATABASE).toBe("postgres");
    expect(String((services["kong-import"].command as string[]).join(" "))).toBe("kong config db_import /kong/kong.yml");
    expect(String((services["kong-migrations"].command as string[]).join(" "))).toMatch(/kong migrations bootstrap && kong migrations up && kong migrations finish/);
  });

  it("reserves an NVIDIA GPU for vLLM and SGLang and caches models in a volume", () => {
    for (const s of ["vllm", "sglang"]) {
      const devices = (((services[s].deploy as Obj).resources as Obj).reservations as Obj).devices as Obj[];
      expect(devices.some((d) => d.driver === "nvidia" && (d.capabilities as string[]).includes("gpu")), s).toBe(true);
      expect((services[s].volumes as string[]).some((v) => v.startsWith("hf-cache:")), s).toBe(true);
      expect(JSON.stringify(services[s].command), s).toMatch(/\$\{(VLLM|SGLANG)_MODEL:-Qwen\/Qwen2\.5-0\.5B-Instruct\}/);
    }
    expect(compose.volumes).toHaveProperty("hf-cache");
  });

  it("observability: Prometheus scrapes Kong's status listener, Grafana gets it as datasource and the dashboard provisioned", () => {
    const statusPort = String((services.kong.environment as Obj).KONG_STATUS_LISTEN).split(":").pop();
    const mounts = (name: string) => (services[name].volumes as string[]).map((v) => v.split(":"));
    const mountOf = (name: string, target: string) => mounts(name).find((m) => m[1] === target)?.[0];
    const promFile = mountOf("prometheus", "/etc/prometheus/prometheus.yml");
    expect(promFile).toBe("./observability/prometheus/prometheus.yml");
    const promConfig = parseYaml(readFileSync(join(ROOT, promFile!), "utf8")) as { scrape_configs: Obj[] };
    const kongJob = promConfig.scrape_configs.find((j) => j.job_name === "kong");
    expect(kongJob?.metrics_path).toBe("/metrics");
    expect((kongJob?.static_configs as Obj[])[0].targets).toEqual([`kong:${statusPort}`]);
    const provisioning = mountOf("grafana", "/etc/grafana/provisioning");
    const dashboards = mountOf("grafana", "/var/lib/grafana/dashboards");
    const ds = parseYaml(readFileSync(join(ROOT, provisioning!, "datasources", "prometheus.yml"), "utf8")) as { datasources: Obj[] };
    expect(ds.datasources[0]).toMatchObject({ type: "prometheus", uid: "prometheus", url: "http://prometheus:9090" });
    const providers = parseYaml(readFileSync(join(ROOT, provisioning!, "dashboards", "kong.yml"), "utf8")) as { providers: Obj[] };
    expect((providers.providers[0].options as Obj).path).toBe("/var/lib/grafana/dashboards");
    expect(existsSync(join(ROOT, dashboards!, "ai-gateway.json"))).toBe(true);
    expect(String((services.grafana.environment as Obj).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH)).toBe("/var/lib/grafana/dashboards/ai-gateway.json");
    for (const [name, port] of [["prometheus", 9090], ["grafana", 3000]] as const) {
      expect(publishedContainerPorts(name), name).toEqual([port]);
      expect((services[name].ports as string[])[0], `${name} on the host's loopback only`).toMatch(/^127\.0\.0\.1:/);
      expect(String(services[name].image), name).toMatch(/^\$\{[A-Z_]+_IMAGE:-[^}:]+:v?\d+\.\d+\.\d+\}$/);
    }
    const promtool = spawnSync("promtool", ["check", "config", join(ROOT, promFile!)], { encoding: "utf8" });
    if (promtool.error) console.log("[stack] promtool not installed (Debian's prometheus package): observability/prometheus/prometheus.yml checked as YAML only");
    else expect(promtool.status, promtool.stdout + promtool.stderr).toBe(0);
  });

  it("points kong.yml's upstream hosts at compose services, on the ports their healthchecks probe", () => {
    for (const svc of declaredServices(kongYml)) {
      const host = svc.url.hostname;
      if (host === "127.0.0.1") {
        expect(svc.url.port, `${svc.name}: only the Admin API is on Kong's loopback`).toBe("8001");
        continue;
      }
      expect(services[host], `${svc.name}: host ${host} is a compose service`).toBeDefined();
      const probe = JSON.stringify(services[host].healthcheck);
      expect(probe, `${svc.name}: ${host}'s healthcheck probes port ${svc.url.port}`).toContain(`:${svc.url.port}/`);
    }
    for (const p of declaredPlugins(kongYml).filter((x) => x.name === "token-rate-limiting" && x.config.policy === "redis")) {
      const redis = p.config.redis as Obj;
      expect(services[String(redis.host)], `${p.scope}: redis host`).toBeDefined();
    }
  });
});

describe(".env.example", () => {
  const env = envFileEntries(readFileSync(ENV_EXAMPLE, "utf8"));
  const e2e = existsSync(join(ROOT, "tools", "e2e.sh")) ? readFileSync(join(ROOT, "tools", "e2e.sh"), "utf8") : "";

  it("documents every variable docker-compose.yml uses, and nothing it does not", () => {
    const used = composeVariables(composeText);
    expect(used.length).toBeGreaterThan(10);
    const missing = used.filter((v) => !env.has(v));
    expect(missing, "variables used by docker-compose.yml but absent from .env.example").toEqual([]);
    const unused = [...env.keys()].filter((v) => !used.includes(v) && !e2e.includes(v));
    expect(unused, "variables in .env.example that nothing reads").toEqual([]);
  });

  it("commits no secret: secret-like values are empty or marked dev-only, and .env is git-ignored", () => {
    for (const [k, v] of env) {
      if (/PASSWORD|TOKEN|SECRET|_KEY$/.test(k)) expect(v === "" || /dev/.test(v), `${k}=${v}`).toBe(true);
    }
    const ignored = readFileSync(join(ROOT, ".gitignore"), "utf8").split("\n").map((l) => l.trim());
    expect(ignored).toContain(".env");
  });
});

describe("kong/Dockerfile", () => {
  it("builds FROM the official kong:3.9.1 image, the tag an ARG", () => {
    expect(dockerfile.from).toBe("kong:3.9.1");
    expect(dockerfile.args.KONG_VERSION).toBe("3.9.1");
  });

  it("copies the built plugin tree into Kong's module directory", () => {
    expect(dockerfile.copies).toContainEqual(expect.stringMatching(/^dist\/kong\/plugins\/?\s+\/usr\/local\/share\/lua\/5\.1\/kong\/plugins\/?$/));
  });

  it("enables exactly our plugins (plugins/*/handler.ts) besides the bundled ones", () => {
    const ours = ourPlugins();
    expect(ours.length, "no plugins/*/handler.ts found").toBeGreaterThan(0);
    const listed = String(dockerfile.env.KONG_PLUGINS ?? "").split(",");
    expect(listed[0]).toBe("bundled");
    expect(new Set(listed).size, "duplicates in KONG_PLUGINS").toBe(listed.length);
    expect(listed.slice(1).sort()).toEqual(ours);
  });

  it("declares every shared dict our plugins use that Kong does not declare itself", () => {
    const declared = String(dockerfile.env.KONG_NGINX_HTTP_LUA_SHARED_DICT ?? "")
      .split(";").map((d) => d.trim().split(/\s+/)[0]).filter(Boolean);
    const used = new Set<string>();
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    for (const f of walk(join(ROOT, "plugins")).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/ngx\.shared(?:\.([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])/g)) used.add(m[1] ?? m[2]);
      for (const m of text.matchAll(/\b(?:DICT|dict)\w*\s*=\s*["']([a-z_][a-z0-9_]*)["']/g)) used.add(m[1]);
    }
    const missing = [...used].filter((d) => !KONG_STANDARD_DICTS.includes(d) && !declared.includes(d));
    expect(missing, "shared dicts used by plugins/ but neither standard in Kong nor in KONG_NGINX_HTTP_LUA_SHARED_DICT").toEqual([]);
  });

  it("runs DB-less from /kong/kong.yml as the kong user, with a `kong health` HEALTHCHECK", () => {
    expect(dockerfile.env.KONG_DATABASE).toBe("off");
    expect(dockerfile.env.KONG_DECLARATIVE_CONFIG).toBe("/kong/kong.yml");
    expect(dockerfile.users.at(-1)).toBe("kong");
    expect(dockerfile.healthcheck).toMatch(/CMD\s+\[?"?kong"?,?\s*"?health"?/);
  });
});

describe("kong/kong.yml", () => {
  const plugins = declaredPlugins(kongYml);
  const ours = ourPlugins();

  it("is declarative format 3.0", () => {
    expect(kongYml._format_version).toBe("3.0");
  });

  it("names only plugins that are bundled with Kong 3.9 or ours, and ours clash with none", () => {
    // Kong 3.9 bundles 45 plugins; fewer means types/reference/bundled-plugins.tsv lost rows.
    expect(KONG_BUNDLED_PLUGINS).toHaveLength(45);
    expect(KONG_BUNDLED_PLUGINS).toEqual(expect.arrayContaining(["key-auth", "rate-limiting", "ai-prompt-guard", "redirect"]));
    for (const p of ours) expect(KONG_BUNDLED_PLUGINS, `our plugin ${p} reuses a bundled name`).not.toContain(p);
    const unknown = plugins.filter((p) => !KONG_BUNDLED_PLUGINS.includes(p.name) && !ours.includes(p.name));
    expect(unknown.map((p) => `${p.name} (${p.scope})`), "plugins neither bundled nor in plugins/*/handler.ts").toEqual([]);
  });

  it("uses exactly the custom plugins the Dockerfile enables", () => {
    const custom = [...new Set(plugins.filter((p) => !KONG_BUNDLED_PLUGINS.includes(p.name)).map((p) => p.name))].sort();
    const enabled = String(dockerfile.env.KONG_PLUGINS ?? "").split(",").slice(1).sort();
    expect(custom).toEqual(enabled);
  });

  const serviceOfPath = (path: string) => {
    for (const s of declaredServices(kongYml)) {
      const route = s.routes.find((r) => Array.isArray(r.paths) && (r.paths as string[]).includes(path));
      if (route) return { service: s, route };
    }
    throw new Error(`no route in kong/kong.yml has path ${path}`);
  };
  const routePlugins = (route: Obj) => (Array.isArray(route.plugins) ? (route.plugins as Obj[]).map((p) => String(p.name)) : []);

  it("routes the seeds' paths to the right backends", () => {
    const expectations: [string, string, boolean | undefined][] = [
      ["/v1/chat/completions", "mock-llm", false],
      ["/v1/completions", "mock-llm", false],
      ["/v1/messages", "mock-llm", false],
      ["/api/chat", "mock-llm", false],
      ["/v2/chat/completions", "vllm", true],
      ["/v1/vllm", "vllm", true],
      ["/v1/sglang", "sglang", true],
      ["/api/v1/video", "video-service", false],
      ["/ws", "video-service", false],
      ["/", "video-service", false],
      ["/admin-api", "127.0.0.1", true],
    ];
    for (const [path, host, strip] of expectations) {
      const { service, route } = serviceOfPath(path);
      expect(service.url.hostname, path).toBe(host);
      expect(route.strip_path, `${path} strip_path`).toBe(strip);
    }
    expect(serviceOfPath("/v2/chat/completions").service.url.pathname).toBe("/v1/chat/completions");
    expect(serviceOfPath("/v1/vllm").service.url.pathname).toBe("/v1");
    expect(serviceOfPath("/v1/sglang").service.url.pathname).toBe("/v1");
  });

  it("has no route that a route with more match fields and a shorter path captures", () => {
    // Kong's router tries routes with more match fields (paths + methods + hosts + headers) first and
    // only then compares path lengths: a GET-only "/" beats a path-only "/api/v1/video" for GETs.
    const routes = declaredServices(kongYml).flatMap((s) => s.routes);
    const fields = (r: Obj) => ["paths", "methods", "hosts", "headers"].filter((f) => r[f] !== undefined && r[f] !== null).length;
    const shadowed: string[] = [];
    for (const a of routes) {
      for (const b of routes) {
        if (a === b || fields(a) <= fields(b)) continue;
        const aMethods = (a.methods as string[] | undefined) ?? null;
        const bMethods = (b.methods as string[] | undefined) ?? null;
        const methodsOverlap = !aMethods || !bMethods || aMethods.some((m) => bMethods.includes(m));
        const aPaths = (a.paths as string[] | undefined) ?? ["/"];
        const bPaths = (b.paths as string[] | undefined) ?? ["/"];
        for (const bp of bPaths) {
          const captor = aPaths.find((ap) => bp.startsWith(ap) && ap.length < bp.length);
          if (captor && methodsOverlap) shadowed.push(`${String(b.name)} ${bp} is captured by ${String(a.name)} ${captor} (${aMethods?.join(",") ?? "any method"})`);
        }
      }
    }
    expect(shadowed).toEqual([]);
  });

  it("gives the LLM services 120 s read and write timeouts", () => {
    const llm = declaredServices(kongYml).filter((s) => ["mock-llm", "vllm", "sglang"].includes(s.url.hostname) && s.name !== "mock-llm-short-timeout");
    expect(llm.length).toBeGreaterThanOrEqual(5);
    for (const s of llm) {
      expect(s.read_timeout, s.name).toBe(120000);
      expect(s.write_timeout, s.name).toBe(120000);
    }
  });

  it("puts our three plugins on every LLM inference route and disconnect logging on /ws", () => {
    for (const path of ["/v1/chat/completions", "/v2/chat/completions", "/v1/vllm", "/v1/sglang", "/v1/redis"]) {
      const names = routePlugins(serviceOfPath(path).route);
      for (const p of ["token-rate-limiting", "prompt-guard", "upstream-disconnect-log", "request-size-limiting"]) expect(names, path).toContain(p);
    }
    expect(routePlugins(serviceOfPath("/ws").route)).toContain("upstream-disconnect-log");
    expect(plugins.filter((p) => p.scope === "global").map((p) => p.name)).toContain("prometheus");
    for (const p of plugins.filter((x) => x.name === "token-rate-limiting")) {
      expect(p.config.limit_by, p.scope).toBe("consumer");
      expect(typeof p.config.minute === "number" || typeof p.config.hour === "number", p.scope).toBe(true);
    }
  });

  it("protects every non-page route with key-auth (apikey) and the Admin API route with an ACL", () => {
    for (const s of declaredServices(kongYml)) {
      const servicePlugins = Array.isArray(s.raw.plugins) ? (s.raw.plugins as Obj[]) : [];
      for (const r of s.routes) {
        if (r.name === "video-page") continue;
        const all = [...servicePlugins, ...((r.plugins as Obj[] | undefined) ?? [])];
        const keyAuth = all.find((p) => p.name === "key-auth");
        expect(keyAuth, `route ${String(r.name)} has key-auth`).toBeDefined();
        expect((keyAuth!.config as Obj).key_names).toEqual(["apikey"]);
      }
    }
    const admin = serviceOfPath("/admin-api").route;
    const acl = (admin.plugins as Obj[]).find((p) => p.name === "acl");
    expect((acl?.config as Obj | undefined)?.allow).toEqual(["admins"]);
  });

  it("has dev-only keys for the LLM, video and admin clients, with fixed credential ids (idempotent db_import)", () => {
    expect(consumerKey(kongYml, "llm-client")).toMatch(/^dev-/);
    expect(consumerKey(kongYml, "video-client")).toMatch(/^dev-/);
    expect(consumerKey(kongYml, "admin")).toMatch(/^dev-/);
    for (const c of kongYml.consumers as Obj[]) {
      for (const k of (c.keyauth_credentials as Obj[] | undefined) ?? []) expect(String(k.id), String(c.username)).toMatch(/^[0-9a-f-]{36}$/);
      for (const a of (c.acls as Obj[] | undefined) ?? []) expect(String(a.id), String(c.username)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
