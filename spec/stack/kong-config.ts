// Readers of the stack's files (kong/kong.yml, kong/Dockerfile, docker-compose.yml, .env.example) for the
// static checks and the stack suites. Pure functions over the files' text: no Docker needed.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { bundledPlugins } from "../../tools/kong-reference.ts";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const KONG_YML = join(ROOT, "kong", "kong.yml");
export const DOCKERFILE = join(ROOT, "kong", "Dockerfile");
export const COMPOSE_FILE = join(ROOT, "docker-compose.yml");
export const ENV_EXAMPLE = join(ROOT, ".env.example");

/** Kong 3.9's bundled plugins (kong/constants.lua BUNDLED_PLUGINS), from types/reference/bundled-plugins.tsv. */
export const KONG_BUNDLED_PLUGINS: readonly string[] = bundledPlugins().map((p) => p.name);

/** Shared dicts every Kong 3.9 node declares (kong/templates/nginx_kong.lua, constants.DICTS). */
export const KONG_STANDARD_DICTS: readonly string[] = [
  "kong", "kong_locks", "kong_healthchecks", "kong_cluster_events", "kong_rate_limiting_counters",
  "kong_core_db_cache", "kong_core_db_cache_miss", "kong_db_cache", "kong_db_cache_miss", "kong_secrets",
  "kong_dns_cache", "prometheus_metrics",
];

/** Our plugins: the folders under plugins/ that have a handler.ts (ai-gateway-shared has none). */
export function ourPlugins(root = ROOT): string[] {
  const dir = join(root, "plugins");
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "handler.ts")))
    .map((d) => d.name)
    .sort();
}

// ---------------------------------------------------------------- kong.yml

export type Obj = Record<string, unknown>;

export interface DeclaredPlugin {
  name: string;
  config: Obj;
  /** "global", "service mock-llm", "route mock-llm-inference", "consumer admin" */
  scope: string;
}

export interface DeclaredService {
  name: string;
  url: URL;
  read_timeout?: number;
  write_timeout?: number;
  connect_timeout?: number;
  routes: Obj[];
  raw: Obj;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

export function readKongYml(path = KONG_YML): Obj {
  const doc: unknown = parseYaml(readFileSync(path, "utf8"));
  if (!isObj(doc)) throw new Error(`${path}: expected a YAML mapping at the top level`);
  return doc;
}

/** Every plugin entry of a declarative config, wherever it is nested. */
export function declaredPlugins(doc: Obj): DeclaredPlugin[] {
  const out: DeclaredPlugin[] = [];
  const take = (owner: Obj, scope: string) => {
    for (const p of list(owner.plugins)) {
      out.push({ name: String(p.name), config: isObj(p.config) ? p.config : {}, scope });
    }
  };
  take(doc, "global");
  for (const s of list(doc.services)) {
    take(s, `service ${String(s.name)}`);
    for (const r of list(s.routes)) take(r, `route ${String(r.name)}`);
  }
  for (const r of list(doc.routes)) take(r, `route ${String(r.name)}`);
  for (const c of list(doc.consumers)) take(c, `consumer ${String(c.username)}`);
  return out;
}

export function declaredServices(doc: Obj): DeclaredService[] {
  return list(doc.services).map((s) => {
    const url = typeof s.url === "string"
      ? new URL(s.url)
      : new URL(`${String(s.protocol ?? "http")}://${String(s.host)}:${String(s.port ?? 80)}${String(s.path ?? "")}`);
    return {
      name: String(s.name),
      url,
      read_timeout: typeof s.read_timeout === "number" ? s.read_timeout : undefined,
      write_timeout: typeof s.write_timeout === "number" ? s.write_timeout : undefined,
      connect_timeout: typeof s.connect_timeout === "number" ? s.connect_timeout : undefined,
      routes: list(s.routes),
      raw: s,
    };
  });
}

/** The first keyauth key of a consumer, as kong.yml declares it. */
export function consumerKey(doc: Obj, username: string): string {
  const consumer = list(doc.consumers).find((c) => c.username === username);
  const key = consumer ? list(consumer.keyauth_credentials)[0]?.key : undefined;
  if (typeof key !== "string") throw new Error(`kong/kong.yml has no keyauth credential for consumer '${username}'`);
  return key;
}

// ---------------------------------------------------------------- kong/Dockerfile

export interface DockerfileFacts {
  args: Record<string, string>;
  /** FROM image with ARG defaults substituted. */
  from: string;
  env: Record<string, string>;
  users: string[];
  healthcheck: string | null;
  copies: string[];
}

export function readDockerfile(path = DOCKERFILE): DockerfileFacts {
  // Join continuation lines, drop comments.
  const logical = readFileSync(path, "utf8")
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const facts: DockerfileFacts = { args: {}, from: "", env: {}, users: [], healthcheck: null, copies: [] };
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, instr, rest] = m;
    switch (instr.toUpperCase()) {
      case "ARG": {
        const [k, v = ""] = rest.split("=");
        facts.args[k.trim()] = v.trim();
        break;
      }
      case "FROM":
        facts.from = rest.split(/\s+/)[0].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => facts.args[a ?? b] ?? "");
        break;
      case "ENV":
        for (const kv of rest.match(/\w+=("[^"]*"|\S+)/g) ?? []) {
          const i = kv.indexOf("=");
          facts.env[kv.slice(0, i)] = kv.slice(i + 1).replace(/^"|"$/g, "");
        }
        break;
      case "USER":
        facts.users.push(rest.trim());
        break;
      case "HEALTHCHECK":
        facts.healthcheck = rest;
        break;
      case "COPY":
        facts.copies.push(rest);
        break;
    }
  }
  return facts;
}

// ---------------------------------------------------------------- docker-compose.yml / .env.example

/** Variables the compose file interpolates (${VAR}, ${VAR:-x}, $VAR; `$$` is a literal dollar). */
export function composeVariables(text: string): string[] {
  const vars = new Set<string>();
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    const unescaped = line.replace(/\$\$/g, "");
    for (const m of unescaped.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)/g)) vars.add(m[1] ?? m[2]);
  }
  return [...vars].sort();
}

/** VAR=value lines of an env file (comments and blank lines skipped). */
export function envFileEntries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out.set(m[1], m[2].trim());
  }
  return out;
}
