// make bench: the CPU cost of each plugin per streamed event and per small request, as ratios to
// the same gateway without plugins and to a plugin that only counts bytes, measured in one run;
// the usage reader alone, in process; Lua memory per active stream. make bench-smoke: the same
// harness in seconds, failing on any error.
//
//   npx tsx bench/run.ts [--smoke] [--rounds N] [--duration S] [--out FILE] ...   (--help for all)
//
// Starts on free ports: an upstream nginx serving static files, the bare proxy, redis-server and
// one local gateway per configuration; checks that each proxies correctly and that its plugins
// count exactly; runs wrk rounds (every row of a workload once per round, order rotated);
// measures Lua memory per active stream; runs the reader benchmark and its JIT check; prints the
// tables and writes the results under build/bench/ (ignored by git). docs/bench.md changes only
// through --render. Exits 1 on any error (non-2xx, short answer, worker error, failed check).
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startGateway, type Gateway } from "../spec/helpers/gateway.ts";
import { freePort } from "../spec/helpers/ports.ts";
import { CONFIGS, PLUGINS, gatewayConfig, missingPluginFiles, type ProxyConfig } from "./lib/configs.ts";
import { describeMachine, luaNginxModuleVersion, type Machine } from "./lib/machine.ts";
import { measureLuaMemory, probe, type MemoryResult } from "./lib/memory.ts";
import { NGINX_BIN, bareProxyConf, startNginx, startUpstream, type NginxInstance } from "./lib/nginx.ts";
import { PROMPT_GUARD_PATTERNS, PROMPT_TOKENS, chatCompletionJson, chatRequest, streamRequest } from "./lib/payloads.ts";
import { runToEnd, startListening, type Managed } from "./lib/procs.ts";
import { renderMarkdown, renderText, type BenchResults, type StreamInfo, type WorkloadResult } from "./lib/report.ts";
import { READER_CHUNKS, bestRows, prepareReaderStreams, runReaderBench, type ReaderRun } from "./lib/sse-reader.ts";
import { evaluateTargets, summarise, type Round } from "./lib/stats.ts";
import { streamFile, streamFiles, writeReaderStreams, STREAM_SHAPES, type StreamFile, type StreamShape } from "./lib/streams.ts";
import { errorLogProblems, observeChunks, verifyTarget, type ChunkSizes, type CountCheck, type Endpoint } from "./lib/verify.ts";
import { runWrk, wrkErrorCount, type WrkResult } from "./lib/wrk.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_LUA_PATH = join(ROOT, "bench", "fixtures", "lua");
/** Results go where git does not look: a run never dirties the checkout. */
const RESULTS_DIR = join(ROOT, "build", "bench");

// ---------------------------------------------------------------------------------------------
// Options and parameters

const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "reader-only": { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    threads: { type: "string" },
    connections: { type: "string" },
    "stream-threads": { type: "string" },
    "stream-connections": { type: "string" },
    tokens: { type: "string" },
    streams: { type: "string" },
    "stream-events": { type: "string" },
    workloads: { type: "string" },
    configs: { type: "string" },
    out: { type: "string" },
    partial: { type: "boolean", default: false },
    "skip-memory": { type: "boolean", default: false },
    "skip-reader": { type: "boolean", default: false },
    "baseline-dist": { type: "string" },
    "baseline-label": { type: "string" },
    fault: { type: "string" },
    note: { type: "string", multiple: true },
    render: { type: "string" },
    docs: { type: "string" },
    "write-streams": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

const WORKLOAD_IDS = [...STREAM_SHAPES, "json", "pg-1k", "pg-100k"];

const HELP = `usage: npx tsx bench/run.ts [options]
  --smoke                 seconds-long run (1 s cells run 4 at a time, 1 round, 20 streams) that fails on any error
  --reader-only           only the in-process reader benchmark and its JIT check (no nginx), in seconds
  --rounds N              rounds of every row (full: 5)
  --duration S            seconds per wrk cell (full: 3)
  --warmup S              seconds of discarded warm-up per cell before round 1 (full: 1)
  --stream-threads N      wrk threads for the streams (1)
  --stream-connections N  wrk connections for the streams (4)
  --threads N             wrk threads for small JSON and prompts (default: cores - 1, at least 1)
  --connections N         wrk connections for small JSON and prompts (16)
  --tokens N              tokens per streamed answer, one event each (998: with the role and finish
                          chunks, 1,000 OpenAI chunk events before the usage chunk and [DONE])
  --streams N             concurrent long streams of the memory test (full: 200)
  --stream-events N       events of each long stream, one per 100 ms (full: 60)
  --workloads a,b         subset of ${WORKLOAD_IDS.join(",")}
  --configs a,b           subset of ${CONFIGS.map((c) => c.id).join(",")} (bare, gateway and bytes are always kept)
  --partial               run what exists when plugins are missing (default: fail naming them)
  --out FILE              results JSON (full: build/bench/results.json, with results.md beside it;
                          smoke: build/bench/smoke.json; reader-only: build/bench/reader.json)
  --skip-memory, --skip-reader
  --baseline-dist DIR     also run the reader benchmark and JIT check on another tree of transpiled
                          modules (DIR/kong/plugins/...), e.g. an older commit's, shown side by side
  --baseline-label TEXT   what the baseline is (default: DIR)
  --note TEXT             a note printed with the results (repeatable)
  --render FILE           no run: print the tables of a results JSON; with --docs FILE, write its Markdown there
                          (how docs/bench.md is updated: on purpose, from a run you chose)
  --write-streams DIR     no run: write the streamed files and the reader's manifest.json into DIR
                          (for luajit bench/sse-reader/bench.lua and jit-check.lua by hand)
  --fault stop-redis      self-test of the failure path: stop redis-server after the checks, so the
                          redis configuration answers 503 under load and the run must fail`;

const smoke = args.smoke;

function num(v: string | undefined, full: number, smokeValue: number = full): number {
  if (v === undefined) return smoke ? smokeValue : full;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new Error(`not a number: ${v}`);
  return x;
}

const P = {
  // many short rounds rather than a few long ones: the rows compared within a round are
  // measured seconds apart, so the shared machine's load changes less between them
  rounds: num(args.rounds, 5, 1),
  duration_s: num(args.duration, 3, 1),
  warmup_s: num(args.warmup, 1, 0),
  // a smoke run's numbers mean nothing: its cells run side by side to stay under a minute
  parallel_cells: smoke ? 4 : 1,
  stream_threads: num(args["stream-threads"], 1),
  stream_connections: num(args["stream-connections"], 4),
  json_threads: num(args.threads, Math.max(1, cpus().length - 1), 1),
  json_connections: num(args.connections, 16),
  stream_tokens: num(args.tokens, 998),
  prompt_sizes: [1024, 100 * 1024],
  prompt_guard_patterns: PROMPT_GUARD_PATTERNS.length,
  memory_streams: num(args.streams, 200, 20),
  memory_stream_events: num(args["stream-events"], 60, 15),
  slow_interval_ms: 100,
  memory_settle_ms: smoke ? 300 : 2000,
  nginx_workers: 1,
};

// ---------------------------------------------------------------------------------------------
// The run's state: progress, errors, notes, and what to stop at the end

interface Harness {
  t0: number;
  work: string;
  errors: string[];
  notes: string[];
  stops: (() => Promise<void>)[];
  log(msg: string): void;
}

function openHarness(): Harness {
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), "kong-bench-"));
  const h: Harness = {
    t0,
    work,
    errors: [],
    notes: [...(args.note ?? [])],
    stops: [async () => rmSync(work, { recursive: true, force: true })],
    log: (msg) => console.error(`bench: ${msg} (${Math.round((Date.now() - t0) / 1000)} s)`),
  };
  const onSignal = () => void stopAll(h).then(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return h;
}

/** Everything stops at once (the error logs were read before); the work folder goes last. */
async function stopAll(h: Harness): Promise<void> {
  const [removeWork, ...rest] = h.stops.splice(0);
  await Promise.all(rest.map((stop) => stop().catch(() => undefined)));
  await removeWork?.().catch(() => undefined);
}

/** Thrown after the errors were recorded in the harness: the message adds nothing. */
class RecordedFailure extends Error {}

// ---------------------------------------------------------------------------------------------
// Before anything starts: the plugins to measure and the programs to measure them with

/**
 * A snapshot of dist/, first on every gateway's Lua path: a `make lua` running elsewhere during
 * the benchmark (it empties dist/ first) cannot change or break the plugins half-way.
 */
async function snapshotDist(h: Harness): Promise<string> {
  const snapshot = join(h.work, "dist");
  // a `make lua` elsewhere empties dist/ for a few seconds: wait for it rather than fail
  for (let waited = 0; !existsSync(join(ROOT, "dist", "kong", "plugins")) && waited < 30; waited++) {
    if (waited === 0) console.error("bench: dist/kong/plugins is missing, waiting up to 30 s for a build to finish");
    await new Promise((r) => setTimeout(r, 1000));
  }
  try {
    cpSync(join(ROOT, "dist", "kong"), join(snapshot, "kong"), { recursive: true, preserveTimestamps: true });
  } catch (err) {
    throw new Error(`cannot copy dist/kong (run \`make lua\` first): ${(err as Error).message}`);
  }
  // what was measured: the commit says little when dist/ was built from uncommitted changes
  const built = statSync(join(snapshot, "kong", "plugins", "ai-gateway-shared", "stream_usage.lua"), { throwIfNoEntry: false });
  if (built) h.notes.push(`dist/ measured as built at ${built.mtime.toISOString()} (its stream_usage.lua)`);
  return snapshot;
}

interface ConfigPlan {
  configInfo: { cfg: ProxyConfig; available: boolean; missing: string[] }[];
  available: ProxyConfig[];
}

/** Which configurations can run: each plugin's transpiled files must exist (or --partial). */
function planConfigs(h: Harness, dist: string): ConfigPlan {
  const missingByPlugin = new Map(PLUGINS.map((p) => [p, missingPluginFiles(dist, p)] as const));
  const missingPlugins = PLUGINS.filter((p) => (missingByPlugin.get(p) ?? []).length > 0);
  const wanted = args.configs ? new Set(["bare", "gateway", "bytes", ...args.configs.split(",")]) : null;
  const configInfo = CONFIGS.filter((c) => !wanted || wanted.has(c.id)).map((c) => {
    const missing = c.plugins.flatMap((p) => missingByPlugin.get(p) ?? []);
    return { cfg: c, available: missing.length === 0, missing };
  });
  if (missingPlugins.length > 0) {
    const lines = missingPlugins.map((p) => `  ${p}: ${(missingByPlugin.get(p) ?? []).join(", ")} missing (plugins/${p}/ not written yet, or run \`make lua\`)`);
    if (!args.partial) throw new Error(`cannot measure every configuration, plugins are missing:\n${lines.join("\n")}\n(--partial runs what exists)`);
    h.notes.push(`not available in this run (plugins missing): ${configInfo.filter((c) => !c.available).map((c) => c.cfg.id).join(", ")}`);
    console.error(`bench: --partial: skipping configurations whose plugins are missing:\n${lines.join("\n")}`);
  }
  return { configInfo, available: configInfo.filter((c) => c.available).map((c) => c.cfg) };
}

async function requirePrograms(programs: [string, string][]): Promise<void> {
  for (const [cmd, pkg] of programs) {
    const r = await runToEnd(cmd, ["-v"]).catch(() => null);
    if (!r) throw new Error(`${cmd} is not installed (Debian package ${pkg})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The processes: upstream, bare proxy, redis-server, gateways

interface Services {
  upstream: NginxInstance;
  bare: NginxInstance;
  redis?: Managed;
  redisPort?: number;
  closedPort: number;
}

async function startServices(h: Harness, plan: ConfigPlan, streams: StreamFile[]): Promise<Services> {
  const upstreamPort = await freePort();
  const slow = streamFile("openai", P.memory_stream_events);
  const upstream = await startUpstream(
    join(h.work, "upstream"),
    upstreamPort,
    {
      json: chatCompletionJson(),
      streams: streams.map((s) => ({ path: s.path, file: s.file, contentType: s.contentType, body: s.body })),
      slowEvent: slow.events[1],
      slowTail: slow.events.slice(-3).join(""),
    },
    { slowIntervalMs: P.slow_interval_ms },
  );
  h.stops.push(() => upstream.stop());
  const barePort = await freePort();
  const bare = await startNginx("bare proxy", join(h.work, "bare"), barePort, bareProxyConf(join(h.work, "bare"), barePort, upstreamPort));
  h.stops.push(() => bare.stop());

  let redis: Managed | undefined;
  let redisPort: number | undefined;
  if (plan.available.some((c) => c.redis)) {
    redisPort = await freePort();
    const r = await startListening("redis-server", "redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"], redisPort);
    redis = r;
    h.stops.push(() => r.stop());
  }
  await checkUpstream(upstream, streams);
  return { upstream, bare, redis, redisPort, closedPort: await freePort() };
}

/** The upstream serves every file byte for byte: what the clients will be compared against. */
async function checkUpstream(upstream: NginxInstance, streams: StreamFile[]): Promise<void> {
  for (const s of streams) {
    const res = await fetch(`http://127.0.0.1:${upstream.port}${s.path}`, { method: "POST", body: streamRequest(s.shape) });
    const text = await res.text();
    if (res.status !== 200 || text !== s.body) throw new Error(`the upstream nginx does not serve ${s.file} at ${s.path} (status ${res.status}, ${text.length} bytes)`);
  }
}

async function startGateways(h: Harness, plan: ConfigPlan, services: Services, dist: string, paths: string[]): Promise<Map<string, Gateway>> {
  const gateways = new Map<string, Gateway>();
  const cfgs = plan.available.filter((c) => !c.bare);
  h.log(`starting ${cfgs.length} gateways (${cfgs.map((c) => c.id).join(", ")})`);
  const env = { upstreamPort: services.upstream.port, closedPort: services.closedPort, redisPort: services.redisPort };
  const started = await Promise.allSettled(
    cfgs.map((c) =>
      startGateway({ config: gatewayConfig(c, env, paths), luaPath: [BENCH_LUA_PATH, dist], startTimeoutMs: 90_000 }).then((gw) => {
        gateways.set(c.id, gw);
        h.stops.push(() => gw.stop());
      }),
    ),
  );
  started.forEach((s, i) => {
    if (s.status === "rejected") h.errors.push(`${cfgs[i].id}: the gateway did not start: ${(s.reason as Error).message}`);
  });
  if (h.errors.length > 0) throw new RecordedFailure("gateway start failed");
  h.log("gateways up");
  return gateways;
}

/** Every proxy of the run as the checks and the load see it. */
function endpointsOf(plan: ConfigPlan, services: Services, gateways: Map<string, Gateway>): Map<string, Endpoint> {
  const out = new Map<string, Endpoint>();
  for (const cfg of plan.available) {
    const gw = gateways.get(cfg.id);
    if (cfg.bare) out.set(cfg.id, { cfg, url: `http://127.0.0.1:${services.bare.port}`, errorLog: () => services.bare.errorLog() });
    else if (gw) {
      out.set(cfg.id, {
        cfg,
        url: gw.url,
        errorLog: () => gw.errorLog(),
        byteCounter: async () => (await probe(gw.url, false)).byte_counter,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks before the load

function redisDbsize(port: number): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let data = "";
    socket.once("connect", () => socket.write("*1\r\n$6\r\nDBSIZE\r\n"));
    socket.on("data", (c) => {
      data += c.toString();
      const m = data.match(/^:(\d+)\r\n/);
      if (m) {
        socket.destroy();
        resolvePromise(Number(m[1]));
      }
    });
    socket.once("error", reject);
  });
}

/** Proof that each configuration proxies correctly with its plugins active; the exact counts it checked. */
async function checkConfigurations(h: Harness, endpoints: Map<string, Endpoint>, services: Services, streams: StreamFile[]): Promise<CountCheck[]> {
  const expected = { json: chatCompletionJson(), jsonTotal: PROMPT_TOKENS + 9, streams, promptSizes: P.prompt_sizes };
  const port = services.redisPort;
  const redisKeys = port === undefined ? undefined : () => redisDbsize(port);
  const counts: CountCheck[] = [];
  for (const t of endpoints.values()) {
    const checked = await verifyTarget(t, expected, redisKeys);
    h.errors.push(...checked.problems);
    counts.push(...checked.counts);
  }
  if (h.errors.length > 0) throw new RecordedFailure("configuration checks failed");
  const wrong = counts.filter((c) => c.counted !== c.want);
  h.log(`every configuration checked; ${counts.length - wrong.length} of ${counts.length} counts exact`);
  for (const c of wrong) console.error(`bench: inexact count: ${c.config}: ${c.what}: counted ${c.counted}, want ${c.want}`);
  return counts;
}

/** What nginx's default proxy buffers hand body_filter, logged once per run. */
async function logChunkSizes(h: Harness, endpoints: Map<string, Endpoint>, streams: StreamFile[]): Promise<ChunkSizes[]> {
  const t = endpoints.get("gateway");
  if (!t) return [];
  const chunks = await observeChunks(t, streams);
  for (const c of chunks) {
    console.error(`bench: body_filter chunks for ${c.file} (${c.bytes} bytes): ${c.calls} with data, ${c.min}–${c.max} bytes, median ${c.median}, most often ${c.mode.size} (${c.mode.count}×)`);
  }
  return chunks;
}

async function applyFault(services: Services): Promise<void> {
  if (args.fault === undefined) return;
  if (args.fault !== "stop-redis") throw new Error(`unknown --fault ${args.fault} (stop-redis)`);
  if (!services.redis) throw new Error("--fault stop-redis needs the trl-redis configuration");
  await services.redis.stop();
}

// ---------------------------------------------------------------------------------------------
// Workloads and the load

interface Row {
  id: string;
  config: string;
  label: string;
  body: string;
  /** Body bytes of each answer: wrk reading fewer per request means answers were cut short. */
  answerBytes: number;
}

interface Workload {
  id: string;
  kind: "stream" | "json";
  label: string;
  request: string;
  shape?: StreamShape;
  path: string;
  threads: number;
  connections: number;
  rows: Row[];
  bases: { id: string; label: string }[];
}

const STREAM_CONFIGS = ["bare", "gateway", "bytes", "trl-local", "prompt-guard", "udl", "all3"];
const PROMPT_GUARD_CONFIGS = ["bare", "gateway", "prompt-guard"];

function rowsFor(ids: string[], available: ProxyConfig[], body: string, answerBytes: number): Row[] {
  return available.filter((c) => ids.includes(c.id)).map((c) => ({ id: c.id, config: c.id, label: c.label, body, answerBytes }));
}

function basesOf(rows: Row[], wanted: [string, string][]): { id: string; label: string }[] {
  return wanted.filter(([id]) => rows.some((r) => r.id === id)).map(([id, label]) => ({ id, label }));
}

/**
 * One workload per stream shape: every stream configuration; for OpenAI one more row where the
 * client does not ask for usage, so token-rate-limiting injects include_usage and filters the
 * usage chunk and every "usage":null out of the client's stream.
 */
function streamWorkload(s: StreamFile, available: ProxyConfig[]): Workload {
  const bytes = Buffer.byteLength(s.body);
  const rows = rowsFor(STREAM_CONFIGS, available, streamRequest(s.shape), bytes);
  const trl = rows.findIndex((r) => r.id === "trl-local");
  if (s.unaskedBody !== undefined && trl >= 0) {
    rows.splice(trl + 1, 0, {
      id: "trl-local-inject",
      config: "trl-local",
      label: "token-rate-limiting (local), client asks no usage: injected, then filtered out",
      body: streamRequest(s.shape, { askUsage: false }),
      answerBytes: Buffer.byteLength(s.unaskedBody),
    });
  }
  return {
    id: s.shape,
    kind: "stream",
    label: `Saturated stream, ${s.shape} (${s.file})`,
    request: `POST ${s.path} (${s.shape === "openai" || s.shape === "vllm" ? "stream: true, include_usage" : "stream: true"}) → static ${s.file}, ${bytes} bytes, ${s.events.length} events, ${s.contentType}`,
    shape: s.shape,
    path: s.path,
    threads: P.stream_threads,
    connections: P.stream_connections,
    rows,
    bases: basesOf(rows, [["gateway", "no plugin"], ["bytes", "byte counter"]]),
  };
}

function jsonWorkloads(available: ProxyConfig[]): Workload[] {
  const json = chatRequest({ stream: false });
  const answer = Buffer.byteLength(chatCompletionJson());
  const threads = Math.min(P.json_threads, P.json_connections);
  const rows = rowsFor(available.map((c) => c.id).filter((id) => id !== "bytes"), available, json, answer);
  const small: Workload = {
    id: "json",
    kind: "json",
    label: "Small JSON",
    request: `POST /json (${json.length}-byte chat request, ${answer}-byte JSON answer with usage)`,
    path: "/json",
    threads,
    connections: P.json_connections,
    rows,
    bases: basesOf(rows, [["gateway", "no plugin"], ["bare", "bare proxy"]]),
  };
  const prompts = P.prompt_sizes.map((size): Workload => {
    const body = chatRequest({ stream: false, promptBytes: size });
    const name = `${Math.round(size / 1024)} KB`;
    const pgRows = rowsFor(PROMPT_GUARD_CONFIGS, available, body, answer);
    return {
      id: `pg-${Math.round(size / 1024)}k`,
      kind: "json",
      label: `prompt-guard, ${name} prompt, ${PROMPT_GUARD_PATTERNS.length} patterns`,
      request: `POST /json (${body.length}-byte request whose user message is ${name}, checked against ${PROMPT_GUARD_PATTERNS.length} deny patterns)`,
      path: "/json",
      threads,
      connections: P.json_connections,
      rows: pgRows,
      bases: basesOf(pgRows, [["gateway", "no plugin"], ["bare", "bare proxy"]]),
    };
  });
  return [small, ...prompts];
}

function buildWorkloads(h: Harness, available: ProxyConfig[], streams: StreamFile[]): Workload[] {
  const all = [...streams.map((s) => streamWorkload(s, available)), ...jsonWorkloads(available)];
  const only = args.workloads?.split(",");
  const unknown = (only ?? []).filter((o) => !all.some((w) => w.id === o));
  if (unknown.length > 0) throw new Error(`unknown workload(s) ${unknown.join(", ")}: choose from ${all.map((w) => w.id).join(", ")}`);
  const chosen = all.filter((w) => !only || only.includes(w.id)).filter((w) => w.rows.length > 1);
  const leftOut = WORKLOAD_IDS.filter((id) => !chosen.some((w) => w.id === id));
  if (leftOut.length > 0) h.notes.push(`workloads not run in this run: ${leftOut.join(", ")}`);
  return chosen;
}

function rotate<T>(xs: T[], k: number): T[] {
  const s = k % xs.length;
  return [...xs.slice(s), ...xs.slice(0, s)];
}

/** Runs `tasks` at most `parallel` at a time, results in order. */
async function inPool<T>(tasks: (() => Promise<T>)[], parallel: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, tasks.length) }, worker));
  return results;
}

function describeErrors(r: WrkResult): string {
  const e = r.errors;
  return `${wrkErrorCount(r)} errors of ${r.requests} requests (non-2xx/3xx ${e.status}, connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout})`;
}

/** The wrk rounds: a warm-up cell per row, then every row once per round, order rotated. */
async function runLoad(h: Harness, workloads: Workload[], endpoints: Map<string, Endpoint>): Promise<Map<string, Round[]>> {
  const bodyFiles = new Map<string, string>();
  for (const w of workloads) {
    for (const row of w.rows) {
      if (bodyFiles.has(row.body)) continue;
      const f = join(h.work, `body-${bodyFiles.size}.json`);
      writeFileSync(f, row.body);
      bodyFiles.set(row.body, f);
    }
  }
  const cell = (w: Workload, row: Row, durationS: number) =>
    runWrk(
      { url: `${endpoints.get(row.config)?.url}${w.path}`, method: "POST", bodyFile: bodyFiles.get(row.body), contentType: "application/json" },
      { threads: Math.min(w.threads, w.connections), connections: w.connections, durationS },
    );
  if (P.warmup_s > 0) for (const w of workloads) for (const row of w.rows) await cell(w, row, P.warmup_s);
  h.log(`${P.rounds} round(s) of ${P.duration_s} s cells`);
  const rounds = new Map<string, Round[]>(workloads.map((w) => [w.id, []]));
  for (let r = 0; r < P.rounds; r++) {
    for (const w of workloads) {
      const order = rotate(w.rows, r);
      const results = await inPool(order.map((row) => () => cell(w, row, P.duration_s)), P.parallel_cells);
      const round: Round = {};
      order.forEach((row, i) => {
        const res = results[i];
        const where = `${w.id} / ${row.id}, round ${r + 1}`;
        if (wrkErrorCount(res) > 0) h.errors.push(`${where}: ${describeErrors(res)}`);
        else if (res.bytes / res.requests < row.answerBytes) h.errors.push(`${where}: ${Math.round(res.bytes / res.requests)} bytes read per answer, want at least ${row.answerBytes}: answers were cut short`);
        round[row.id] = res;
      });
      rounds.get(w.id)?.push(round);
    }
    h.log(`round ${r + 1}/${P.rounds} done`);
  }
  return rounds;
}

// ---------------------------------------------------------------------------------------------
// Memory, the reader alone, error logs

async function measureMemory(h: Harness, gateways: Map<string, Gateway>): Promise<Record<string, MemoryResult>> {
  const memory: Record<string, MemoryResult> = {};
  if (args["skip-memory"]) return memory;
  for (const id of ["gateway", "all3"]) {
    const gw = gateways.get(id);
    if (!gw) continue;
    try {
      memory[id] = await measureLuaMemory(gw.url, {
        streams: P.memory_streams,
        events: P.memory_stream_events,
        intervalMs: P.slow_interval_ms,
        settleMs: P.memory_settle_ms,
      });
    } catch (err) {
      h.errors.push(`memory test (${id}): ${(err as Error).message}`);
    }
  }
  if (!memory.all3) h.notes.push("Lua memory per stream with all three plugins: not measured (all3 not available)");
  h.log("memory measured");
  return memory;
}

/**
 * The reader benchmark and JIT check on the snapshot of dist/ and, when asked, on a baseline:
 * the two alternate (three times each in a full run) and each row keeps its best, so a busy
 * moment of the shared machine cannot favour one side.
 */
async function measureReader(h: Harness, dist: string): Promise<{ current?: ReaderRun; baseline?: ReaderRun }> {
  if (args["skip-reader"]) return {};
  const manifest = await prepareReaderStreams(join(h.work, "reader"), P.stream_tokens, !smoke);
  const baseDist = args["baseline-dist"];
  const sides = [{ dist, label: "dist/ (this checkout)" }, ...(baseDist ? [{ dist: resolve(baseDist), label: args["baseline-label"] ?? baseDist }] : [])];
  const runs: ReaderRun[][] = sides.map(() => []);
  const repeats = baseDist && !smoke ? 3 : 1;
  for (let k = 0; k < repeats; k++) {
    for (const [i, side] of sides.entries()) runs[i].push(await runReaderBench(ROOT, { manifest, ...side, smoke }));
  }
  const [current, baseline] = runs.map(bestRows);
  if (current.status !== "ok") h.errors.push(`reader benchmark failed: ${current.message}`);
  for (const run of [current, baseline]) if (run?.jit_error) h.notes.push(`JIT check not measured for ${run.label}: ${run.jit_error}`);
  // an older reader may be wrong where the current one is right: shown, not an error of this run
  if (baseline && baseline.status !== "ok") h.notes.push(`baseline reader benchmark: ${baseline.message}`);
  h.log("reader measured");
  return { current, baseline };
}

/** Worker errors anywhere (plugin errors are logged, not always visible in the status). */
function scanErrorLogs(h: Harness, endpoints: Map<string, Endpoint>, services: Services): void {
  for (const t of endpoints.values()) {
    const bad = errorLogProblems(t.errorLog());
    if (bad.length > 0) h.errors.push(`${t.cfg.id}: ${bad.length} error line(s) in the error log, first: ${bad[0].slice(0, 400)}`);
  }
  const upstreamBad = errorLogProblems(services.upstream.errorLog());
  if (upstreamBad.length > 0) h.errors.push(`upstream nginx: ${upstreamBad.length} error line(s), first: ${upstreamBad[0].slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// Results

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return null;
  }
}

function workloadResults(workloads: Workload[], rounds: Map<string, Round[]>): WorkloadResult[] {
  return workloads.map((w) => {
    const rs = rounds.get(w.id) ?? [];
    const bases = w.bases.map((b) => b.id);
    return {
      id: w.id,
      kind: w.kind,
      label: w.label,
      request: w.request,
      ...(w.shape ? { shape: w.shape } : {}),
      answer_bytes: w.rows[0]?.answerBytes ?? 0,
      threads: Math.min(w.threads, w.connections),
      connections: w.connections,
      rows: w.rows.map((r) => ({ id: r.id, config: r.config, label: r.label })),
      bases: w.bases,
      rounds: rs.map((r) => Object.fromEntries(Object.entries(r).filter((e): e is [string, WrkResult] => e[1] !== undefined))),
      summary: w.rows.map((row) => summarise(rs, row.id, bases)),
    };
  });
}

function streamInfo(s: StreamFile): StreamInfo {
  return {
    shape: s.shape,
    file: s.file,
    path: s.path,
    content_type: s.contentType,
    bytes: Buffer.byteLength(s.body),
    events: s.events.length,
    token_event_bytes: s.tokenEventBytes,
    completion_tokens: s.expected.completion_tokens,
  };
}

interface Measured {
  machine: Machine;
  plan?: ConfigPlan;
  streams: StreamFile[];
  chunks: ChunkSizes[];
  workloads: WorkloadResult[];
  memory: Record<string, MemoryResult>;
  reader: { current?: ReaderRun; baseline?: ReaderRun };
  counts: CountCheck[];
}

function judgeTargets(m: Measured) {
  const ratio = (w: string, row: string, base: string) => m.workloads.find((x) => x.id === w)?.summary.find((s) => s.row === row)?.vs[base]?.rps;
  const us: Record<string, Record<string, number>> = {};
  for (const row of m.reader.current?.rows ?? []) (us[row.name] ??= {})[row.chunks] = row.us_per_event;
  return evaluateTargets({
    streamTrlVsBytes: ratio("openai", "trl-local", "bytes"),
    streamUdlVsBytes: ratio("openai", "udl", "bytes"),
    streamAllVsBytes: ratio("openai", "all3", "bytes"),
    jsonTrlVsGateway: ratio("json", "trl-local", "gateway"),
    jsonAllVsGateway: ratio("json", "all3", "gateway"),
    readerUsPerEvent: us,
    luaKbPerStream: m.memory.all3?.per_stream_kb,
    exactChecks: { made: m.counts.length, failed: m.counts.filter((c) => c.counted !== c.want).length },
    jit: m.reader.current?.jit,
  });
}

function assemble(h: Harness, m: Measured): BenchResults {
  if (smoke) h.notes.push("smoke run: cells too short and run side by side; it only proves the harness and every configuration work");
  m.machine.loadavg_end = loadavg().map((l) => Math.round(l * 100) / 100);
  h.notes.push(`machine shared with other work (load average ${m.machine.loadavg_end.join(" ")} at the end); wrk, the proxies and the upstream share its ${m.machine.cores} cores`);
  const bad = m.counts.filter((c) => c.counted !== c.want);
  if (bad.length > 0) h.notes.push(`${bad.length} inexact count(s): see the exact-counts target`);
  return {
    schema: "kong-ts-ai-bench/2",
    ok: h.errors.length === 0,
    mode: args["reader-only"] ? "reader" : smoke ? "smoke" : "full",
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: m.machine,
    parameters: { ...P, total_s: Math.round((Date.now() - h.t0) / 1000) },
    configs: (m.plan?.configInfo ?? []).map((c) => ({ id: c.cfg.id, label: c.cfg.label, plugins: c.cfg.plugins, available: c.available, ...(c.missing.length > 0 ? { missing: c.missing } : {}) })),
    streams: m.streams.map(streamInfo),
    chunks: m.chunks,
    workloads: m.workloads,
    memory: m.memory,
    reader: m.reader,
    counts: m.counts,
    targets: judgeTargets(m),
    errors: h.errors,
    notes: h.notes,
  };
}

/** Prints the tables and writes the results; a failed run never replaces a good results file. */
function writeResults(results: BenchResults): number {
  console.log(renderText(results));
  const name = results.mode === "full" ? "results.json" : `${results.mode}.json`;
  const wanted = args.out ?? join(RESULTS_DIR, name);
  const out = results.ok ? wanted : wanted.replace(/(\.json)?$/, ".failed.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nresults: ${out}`);
  if (results.ok && results.mode === "full") {
    const md = out.replace(/(\.json)?$/, ".md");
    writeFileSync(md, renderMarkdown(results));
    console.log(`Markdown: ${md} (to publish it: npx tsx bench/run.ts --render ${out} --docs docs/bench.md)`);
  }
  if (!results.ok) {
    console.error(`bench: FAILED with ${results.errors.length} error(s)`);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The three kinds of run

/** Everything: checks, load, memory, the reader. */
async function runFull(h: Harness): Promise<Measured> {
  const dist = await snapshotDist(h);
  const plan = planConfigs(h, dist);
  await requirePrograms([["wrk", "wrk"], ["luajit", "luajit"], [NGINX_BIN, "nginx-light"]]);
  const machine = await describeMachine();
  const streams = streamFiles(P.stream_tokens);
  const services = await startServices(h, plan, streams);
  const gateways = await startGateways(h, plan, services, dist, ["/json", "/slow", ...streams.map((s) => s.path)]);
  const endpoints = endpointsOf(plan, services, gateways);
  const counts = await checkConfigurations(h, endpoints, services, streams);
  const chunks = await logChunkSizes(h, endpoints, streams);
  await applyFault(services);
  const anyGateway = gateways.get("gateway") ?? [...gateways.values()][0];
  if (anyGateway) machine.lua_nginx_module = luaNginxModuleVersion((await probe(anyGateway.url, false)).ngx_lua_version);

  const workloads = buildWorkloads(h, plan.available, streams);
  const rounds = await runLoad(h, workloads, endpoints);
  const memory = await measureMemory(h, gateways);
  const reader = await measureReader(h, dist);
  scanErrorLogs(h, endpoints, services);
  return { machine, plan, streams, chunks, workloads: workloadResults(workloads, rounds), memory, reader, counts };
}

/** Only the reader benchmark and its JIT check: seconds, no nginx. */
async function runReaderOnly(h: Harness): Promise<Measured> {
  const dist = await snapshotDist(h);
  await requirePrograms([["luajit", "luajit"]]);
  h.notes.push("reader-only run: no load, no memory test");
  return { machine: await describeMachine(), streams: streamFiles(P.stream_tokens), chunks: [], workloads: [], memory: {}, reader: await measureReader(h, dist), counts: [] };
}

async function measure(): Promise<number> {
  const h = openHarness();
  let measured: Measured | undefined;
  try {
    measured = args["reader-only"] ? await runReaderOnly(h) : await runFull(h);
  } catch (err) {
    if (!(err instanceof RecordedFailure)) h.errors.push((err as Error).message);
  } finally {
    await stopAll(h);
  }
  if (!measured) {
    console.error(`bench: FAILED\n${h.errors.map((e) => `  ${e}`).join("\n")}`);
    return 1;
  }
  return writeResults(assemble(h, measured));
}

function render(file: string): number {
  const r = JSON.parse(readFileSync(file, "utf8")) as BenchResults;
  console.log(renderText(r));
  if (args.docs) {
    writeFileSync(args.docs, renderMarkdown(r));
    console.log(`Markdown: ${args.docs}`);
  }
  return 0;
}

function writeStreams(dir: string): number {
  const manifest = writeReaderStreams(resolve(dir), streamFiles(P.stream_tokens), READER_CHUNKS);
  console.log(`streams and ${manifest} written; now: luajit bench/sse-reader/bench.lua --manifest ${manifest}`);
  return 0;
}

async function main(): Promise<number> {
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  if (args.render) return render(args.render);
  if (args["write-streams"]) return writeStreams(args["write-streams"]);
  return measure();
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
