// Starts a real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) for a test:
// a free port, a throw-away TSDB, a scrape config for the given targets (1 s interval by default),
// and PromQL through its HTTP API.
//
//   const prom = await startPrometheus({ targets: [`127.0.0.1:${statusPort}`] });
//   await prom.waitForTargetsUp();
//   ... workload ...
//   await prom.waitForScrapeAfter(Date.now() + 200);
//   const rows = await prom.query('sum by (consumer) (kong_ai_gateway_tokens_total)');
//   await prom.stop();
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? "/usr/bin/prometheus";

export interface StartPrometheusOptions {
  /** host:port of each target. */
  targets: string[];
  /** Scrape (and evaluation) interval in seconds; default 1. */
  scrapeIntervalS?: number;
  /** Default /metrics. */
  metricsPath?: string;
  /** Default "kong". */
  jobName?: string;
  /** How long to wait for /-/ready; default 20 s. */
  startTimeoutMs?: number;
}

/** One element of an instant vector. */
export interface Sample {
  metric: Record<string, string>;
  /** The value as Prometheus writes it ("12", "NaN", "+Inf"). */
  value: string;
}

export interface PrometheusServer {
  url: string;
  port: number;
  /** The scrape config it runs with. */
  config: string;
  /** An instant query (at `time`, default now); rejects on a PromQL error. */
  query(promql: string, time?: Date): Promise<Sample[]>;
  /** One number: the value of a query that must return exactly one sample. */
  scalar(promql: string): Promise<number>;
  /** Values of a label, optionally among the series matching `match` (Grafana's label_values). */
  labelValues(label: string, match?: string): Promise<string[]>;
  /** Waits until every target was scraped successfully once. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  /** Waits until every target's last scrape started after `at` (ms since the epoch). */
  waitForScrapeAfter(at: number, timeoutMs?: number): Promise<void>;
  /** Prometheus's own log so far. */
  output(): string;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: "success" | "error";
  data: T;
  errorType?: string;
  error?: string;
}

interface TargetsData {
  activeTargets: { scrapeUrl: string; health: string; lastError: string; lastScrape: string }[];
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

function scrapeConfig(o: StartPrometheusOptions): string {
  const interval = `${o.scrapeIntervalS ?? 1}s`;
  return [
    "global:",
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    "scrape_configs:",
    `  - job_name: ${JSON.stringify(o.jobName ?? "kong")}`,
    `    metrics_path: ${JSON.stringify(o.metricsPath ?? "/metrics")}`,
    `    scrape_timeout: ${interval}`,
    "    static_configs:",
    `      - targets: [${o.targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as ApiResponse<T>;
  if (body.status !== "success") throw new Error(`Prometheus ${url}: ${body.errorType ?? res.status}: ${body.error ?? "error"}`);
  return body.data;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Prometheus: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  if (!existsSync(PROMETHEUS_BIN)) {
    throw new Error(
      `${PROMETHEUS_BIN} is missing: the observability tests scrape the gateway with a real Prometheus server. ` +
        "Install Debian's prometheus package (sudo apt-get install prometheus), or set PROMETHEUS_BIN.",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "prometheus-test-"));
  const config = scrapeConfig(opts);
  writeFileSync(join(dir, "prometheus.yml"), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1h",
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("exit", () => running.delete(child));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await until("/-/ready", opts.startTimeoutMs ?? 20_000, async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with code ${child.exitCode}:\n${output}`);
      return (await fetch(`${url}/-/ready`)).ok;
    });
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output}`);
  }

  const targets = () => api<TargetsData>(`${url}/api/v1/targets?state=active`).then((d) => d.activeTargets);
  const server: PrometheusServer = {
    url,
    port,
    config,
    async query(promql, time) {
      const params = new URLSearchParams({ query: promql });
      if (time) params.set("time", String(time.getTime() / 1000));
      const data = await api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(
        `${url}/api/v1/query?${params}`,
      );
      if (data.resultType !== "vector") throw new Error(`Prometheus: ${promql} gave a ${data.resultType}, not a vector`);
      return data.result.map((r) => ({ metric: r.metric, value: r.value[1] }));
    },
    async scalar(promql) {
      const rows = await server.query(promql);
      if (rows.length !== 1) throw new Error(`Prometheus: ${promql} gave ${rows.length} samples, not 1: ${JSON.stringify(rows)}`);
      return Number(rows[0].value);
    },
    async labelValues(label, match) {
      const params = new URLSearchParams();
      if (match) params.set("match[]", match);
      return api<string[]>(`${url}/api/v1/label/${encodeURIComponent(label)}/values?${params}`);
    },
    async waitForTargetsUp(timeoutMs = 15_000) {
      await until("every target up", timeoutMs, async () => {
        const t = await targets();
        return t.length === opts.targets.length && t.every((x) => x.health === "up");
      }).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await targets().catch(() => []))}`);
      });
    },
    async waitForScrapeAfter(at, timeoutMs = 15_000) {
      await until(`a scrape after ${new Date(at).toISOString()}`, timeoutMs, async () => {
        const t = await targets();
        return t.length > 0 && t.every((x) => x.health === "up" && Date.parse(x.lastScrape) > at);
      });
    },
    output: () => output,
    stop,
  };
  return server;
}
