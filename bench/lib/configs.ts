// The proxies compared in one run, and the Kong declarative config of each gateway. Limits are
// high enough never to reject: a benchmark measures the cost of passing traffic, not of refusing it.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PROMPT_GUARD_PATTERNS } from "./payloads.ts";

export const PLUGINS = ["token-rate-limiting", "prompt-guard", "upstream-disconnect-log"] as const;
export type PluginName = (typeof PLUGINS)[number];

export interface ProxyConfig {
  id: string;
  label: string;
  /** Plugins the gateway runs (none: bare proxy or gateway without plugins). */
  plugins: PluginName[];
  /** Needs the harness's redis-server. */
  redis: boolean;
  bare: boolean;
  /** Benchmark-only Lua plugins from bench/fixtures/lua (not built from plugins/). */
  fixtures?: string[];
}

export const CONFIGS: ProxyConfig[] = [
  { id: "bare", label: "bare nginx proxy_pass", plugins: [], redis: false, bare: true },
  { id: "gateway", label: "gateway, no plugins", plugins: [], redis: false, bare: false },
  // what the runner itself costs for one plugin: the scale for the rows below
  { id: "trivial", label: "trivial Lua plugin (1 header read, 1 set)", plugins: [], fixtures: ["bench-trivial"], redis: false, bare: false },
  // the floor of any plugin that reads a stream: a body_filter that only counts bytes
  { id: "bytes", label: "byte counter (body_filter adds #chunk)", plugins: [], fixtures: ["bench-byte-counter"], redis: false, bare: false },
  { id: "trl-local", label: "token-rate-limiting (local)", plugins: ["token-rate-limiting"], redis: false, bare: false },
  { id: "trl-redis", label: "token-rate-limiting (redis)", plugins: ["token-rate-limiting"], redis: true, bare: false },
  { id: "prompt-guard", label: "prompt-guard (20 patterns)", plugins: ["prompt-guard"], redis: false, bare: false },
  { id: "udl", label: "upstream-disconnect-log", plugins: ["upstream-disconnect-log"], redis: false, bare: false },
  {
    id: "all3",
    label: "all three plugins",
    plugins: ["token-rate-limiting", "prompt-guard", "upstream-disconnect-log"],
    redis: false,
    bare: false,
  },
];

/**
 * Which transpiled plugin files are missing (run `make lua`; plugin not written yet), named as
 * under the repository's dist/. `distDir` holds kong/plugins/...
 */
export function missingPluginFiles(distDir: string, plugin: PluginName): string[] {
  return ["handler", "schema"]
    .map((m) => join("kong", "plugins", plugin, `${m}.lua`))
    .filter((p) => !existsSync(join(distDir, p)))
    .map((p) => join("dist", p));
}

export const MEMORY_PROBE_PATH = "/_bench/lua-memory";
export const REFUSED_PATH = "/_bench/refused";
/** Prefix of the route that logs body_filter's chunk sizes (bench-chunk-log): /_bench/chunks/<upstream path>. */
export const CHUNK_LOG_PATH = "/_bench/chunks";

export interface GatewayEnv {
  upstreamPort: number;
  /** A port nothing listens on: the route that proves upstream-disconnect-log records. */
  closedPort: number;
  redisPort?: number;
}

function pluginConfig(plugin: PluginName, cfg: ProxyConfig, env: GatewayEnv): { name: string; config: Record<string, unknown> } {
  switch (plugin) {
    case "token-rate-limiting":
      return {
        name: plugin,
        config: {
          minute: 1e13,
          hour: 1e14,
          limit_by: "ip",
          ...(cfg.redis
            ? {
                policy: "redis",
                redis: { host: "127.0.0.1", port: env.redisPort },
                // a Redis failure must show as errors, never as uncounted (fast) traffic
                fault_tolerant: false,
              }
            : { policy: "local" }),
        },
      };
    case "prompt-guard":
      return {
        name: plugin,
        config: {
          deny_patterns: PROMPT_GUARD_PATTERNS,
          // the 100 KB prompt must be checked, not refused for its size
          max_body_size: 1048576,
        },
      };
    case "upstream-disconnect-log":
      return { name: plugin, config: {} };
  }
}

/** The declarative config of a gateway configuration (not for the bare proxy); `paths`: the measured routes. */
export function gatewayConfig(cfg: ProxyConfig, env: GatewayEnv, paths: string[]): object {
  const plugins = [
    ...cfg.plugins.map((p) => pluginConfig(p, cfg, env)),
    ...(cfg.fixtures ?? []).map((name) => ({ name, config: {} })),
  ];
  return {
    _format_version: "3.0",
    services: [
      {
        name: "llm",
        url: `http://127.0.0.1:${env.upstreamPort}`,
        // Kong's defaults otherwise (response_buffering on): body_filter sees nginx's proxy buffers
        routes: [{ name: "bench", paths, strip_path: false }],
        plugins,
      },
      {
        name: "refused",
        url: `http://127.0.0.1:${env.closedPort}`,
        connect_timeout: 2000,
        retries: 0,
        routes: [{ name: "refused", paths: [REFUSED_PATH], strip_path: true }],
        plugins,
      },
      {
        name: "chunk-log",
        url: `http://127.0.0.1:${env.upstreamPort}`,
        routes: [{ name: "chunk-log", paths: [CHUNK_LOG_PATH], strip_path: true }],
        plugins: [{ name: "bench-chunk-log", config: {} }],
      },
      {
        name: "bench-probe",
        url: `http://127.0.0.1:${env.upstreamPort}`,
        routes: [{ name: "bench-probe", paths: [MEMORY_PROBE_PATH] }],
        plugins: [{ name: "bench-probe", config: {} }],
      },
    ],
  };
}
