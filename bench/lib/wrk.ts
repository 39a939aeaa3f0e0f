// One wrk run (a cell of the benchmark): fixed threads and connections for a duration, the
// request from bench/wrk/report.lua, the numbers from the JSON line its done() prints.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runToEnd } from "./procs.ts";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "wrk", "report.lua");

export interface WrkResult {
  requests: number;
  duration_s: number;
  bytes: number;
  rps: number;
  latency_us: { p50: number; p90: number; p99: number; mean: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
}

export interface WrkRequest {
  url: string;
  method: "GET" | "POST";
  /** File holding the request body (POST). */
  bodyFile?: string;
  contentType?: string;
}

export function parseWrkOutput(stdout: string): WrkResult {
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (!line) throw new Error(`wrk printed no BENCH_JSON line:\n${stdout}`);
  return JSON.parse(line.slice("BENCH_JSON ".length)) as WrkResult;
}

/** Errors wrk counted: non-2xx/3xx statuses, socket errors and timeouts. */
export function wrkErrorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}

export async function runWrk(
  req: WrkRequest,
  load: { threads: number; connections: number; durationS: number; timeoutS?: number },
): Promise<WrkResult> {
  const args = [
    `-t${load.threads}`,
    `-c${load.connections}`,
    `-d${load.durationS}s`,
    `--timeout`,
    `${load.timeoutS ?? 10}s`,
    "-s",
    SCRIPT,
    req.url,
  ];
  const env = {
    ...process.env,
    BENCH_METHOD: req.method,
    BENCH_BODY_FILE: req.bodyFile ?? "",
    BENCH_CONTENT_TYPE: req.contentType ?? "application/json",
  };
  const { code, stdout, stderr } = await runToEnd("wrk", args, { env, timeoutMs: (load.durationS + 30) * 1000 });
  if (code !== 0) throw new Error(`wrk ${args.join(" ")} exited with ${code}:\n${stdout}\n${stderr}`);
  const result = parseWrkOutput(stdout);
  if (result.requests === 0) throw new Error(`wrk completed no request against ${req.url}:\n${stdout}\n${stderr}`);
  return result;
}
