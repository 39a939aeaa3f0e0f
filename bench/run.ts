// make bench: what each plugin costs, as ratios to a bare nginx proxy_pass measured in the same
// run (issue 10). make bench-smoke: the same harness in seconds, failing on any error.
//
//   npx tsx bench/run.ts [--smoke] [--rounds N] [--duration S] [--partial] [--out FILE] [--no-docs] ...
//
// Starts on free ports: an upstream nginx, the bare proxy, redis-server, and one local gateway per
// configuration; checks each one proxies correctly with its plugins active; runs wrk rounds
// (every configuration once per round, order rotated); measures Lua memory per active stream;
// runs the SSE reader micro-benchmark; prints the table, writes bench/results/latest.json and
// docs/bench.md. Exits 1 on any error (non-2xx, worker error, failed check) or missing plugin.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startGateway, type Gateway } from "../spec/helpers/gateway.ts";
import { freePort } from "../spec/helpers/ports.ts";
import { CONFIGS, PLUGINS, gatewayConfig, missingPluginFiles, type ProxyConfig } from "./lib/configs.ts";
import { describeMachine, luaNginxModuleVersion } from "./lib/machine.ts";
import { measureLuaMemory, probe, type MemoryResult } from "./lib/memory.ts";
import { NGINX_BIN, bareProxyConf, startNginx, startUpstream, type NginxInstance } from "./lib/nginx.ts";
import { PROMPT_GUARD_PATTERNS, chatCompletionJson, chatRequest, promptText, sseStream } from "./lib/payloads.ts";
import { runToEnd, startListening, type Managed } from "./lib/procs.ts";
import { renderMarkdown, renderText, type BenchResults, type WorkloadResult } from "./lib/report.ts";
import { runSseReaderBench } from "./lib/sse-reader.ts";
import { evaluateTargets, summarise, type Round } from "./lib/stats.ts";
import { errorLogProblems, verifyTarget } from "./lib/verify.ts";
import { runWrk, wrkErrorCount, type WrkResult } from "./lib/wrk.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_LUA_PATH = join(ROOT, "bench", "fixtures", "lua");

const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    threads: { type: "string" },
    connections: { type: "string" },
    "sse-connections": { type: "string" },
    events: { type: "string" },
    "sse-batch": { type: "string" },
    streams: { type: "string" },
    "stream-events": { type: "string" },
    workloads: { type: "string" },
    configs: { type: "string" },
    out: { type: "string" },
    docs: { type: "string" },
    "no-docs": { type: "boolean", default: false },
    partial: { type: "boolean", default: false },
    "skip-memory": { type: "boolean", default: false },
    "skip-reader": { type: "boolean", default: false },
    fault: { type: "string" },
    note: { type: "string", multiple: true },
    render: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  console.log(`usage: npx tsx bench/run.ts [options]
  --smoke               seconds-long run (1 s cells, 1 round, 20 streams) that fails on any error
  --rounds N            rounds of every configuration (full: 5)
  --duration S          seconds per wrk cell (full: 3)
  --warmup S            seconds of discarded warm-up per cell before round 1 (full: 1)
  --threads N           wrk threads (default: cores - 1, at least 1)
  --connections N       wrk connections for JSON requests (full: 32)
  --sse-connections N   wrk connections for the SSE stream (default 1: time to last byte of one stream)
  --events N            SSE events per stream (1000)
  --sse-batch N         events per upstream write+flush (10)
  --streams N           concurrent long streams of the memory test (full: 200)
  --stream-events N     events of each long stream, one per 100 ms (full: 60)
  --workloads a,b       subset of json,sse,pg-1k,pg-100k
  --configs a,b         subset of ${CONFIGS.map((c) => c.id).join(",")} (bare and gateway are always kept)
  --partial             run what exists when plugins are missing (default: fail naming them)
  --out FILE            results JSON (full: bench/results/latest.json; smoke: bench/results/smoke.json.tmp)
  --docs FILE           Markdown table (full: docs/bench.md); --no-docs to skip
  --skip-memory, --skip-reader
  --note TEXT           a note printed with the results (repeatable), e.g. why a workload was left out
  --render FILE         no run: print the tables of a results JSON and rewrite the Markdown (--docs)
  --fault stop-redis    self-test of the failure path: stop redis-server after the checks, so the
                        redis configuration answers 503 under load and the run must fail`);
  process.exit(0);
}

if (args.render) {
  const r = JSON.parse(readFileSync(args.render, "utf8")) as BenchResults;
  console.log(renderText(r));
  if (!args["no-docs"]) {
    const docs = args.docs ?? join(ROOT, "docs", "bench.md");
    writeFileSync(docs, renderMarkdown(r));
    console.log(`table: ${docs}`);
  }
  process.exit(0);
}

const smoke = args.smoke;
function num(v: string | undefined, full: number, smokeValue: number): number {
  if (v === undefined) return smoke ? smokeValue : full;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new Error(`not a number: ${v}`);
  return x;
}

const P = {
  // many short rounds rather than a few long ones: the configurations compared within a round
  // are measured seconds apart, so the shared machine's load changes less between them
  rounds: num(args.rounds, 5, 1),
  duration_s: num(args.duration, 3, 1),
  warmup_s: num(args.warmup, 1, 0),
  threads: num(args.threads, Math.max(1, cpus().length - 1), 1),
  json_connections: num(args.connections, 32, 8),
  sse_connections: num(args["sse-connections"], 1, 1),
  sse_events: num(args.events, 1000, 1000),
  sse_batch: num(args["sse-batch"], 10, 10),
  prompt_sizes: [1024, 100 * 1024],
  prompt_guard_patterns: PROMPT_GUARD_PATTERNS.length,
  memory_streams: num(args.streams, 200, 20),
  memory_stream_events: num(args["stream-events"], 60, 15),
  slow_interval_ms: 100,
  memory_settle_ms: smoke ? 300 : 2000,
  nginx_workers: 1,
};

interface Workload {
  id: string;
  label: string;
  path: string;
  body: string;
  request: string;
  connections: number;
  configs: string[];
}

function workloads(available: ProxyConfig[]): Workload[] {
  const ids = available.map((c) => c.id);
  const json = chatRequest({ stream: false });
  const sse = chatRequest({ stream: true });
  const all: Workload[] = [
    { id: "json", label: "Small JSON", path: "/json", body: json, request: `POST /json (${json.length}-byte chat request, ${chatCompletionJson().length}-byte JSON answer with usage)`, connections: P.json_connections, configs: ids },
    { id: "sse", label: `SSE stream of ${P.sse_events} events`, path: "/sse", body: sse, request: `POST /sse (stream: true, include_usage; ${sseStream(P.sse_events).body.length}-byte stream, latency = time to last byte)`, connections: P.sse_connections, configs: ids },
    ...P.prompt_sizes.map((size) => {
      const body = chatRequest({ stream: false, promptBytes: size });
      const name = size >= 1024 ? `${Math.round(size / 1024)} KB` : `${size} B`;
      return {
        id: `pg-${size >= 1024 ? `${Math.round(size / 1024)}k` : size}`,
        label: `prompt-guard, ${name} prompt, ${PROMPT_GUARD_PATTERNS.length} patterns`,
        path: "/json",
        body,
        request: `POST /json (${body.length}-byte request whose user message is ${name}, checked against ${PROMPT_GUARD_PATTERNS.length} deny patterns)`,
        connections: P.json_connections,
        configs: ids.filter((id) => ["bare", "gateway", "prompt-guard"].includes(id)),
      };
    }),
  ];
  const only = args.workloads?.split(",");
  if (only) {
    const unknown = only.filter((o) => !all.some((w) => w.id === o));
    if (unknown.length > 0) throw new Error(`unknown workload(s) ${unknown.join(", ")}: choose from ${all.map((w) => w.id).join(", ")}`);
  }
  return all.filter((w) => !only || only.includes(w.id)).filter((w) => w.configs.length > 1);
}

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

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return null;
  }
}

function rotate<T>(xs: T[], k: number): T[] {
  const s = k % xs.length;
  return [...xs.slice(s), ...xs.slice(0, s)];
}

function describeErrors(r: WrkResult): string {
  const e = r.errors;
  return `${wrkErrorCount(r)} errors of ${r.requests} requests (non-2xx/3xx ${e.status}, connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout})`;
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const errors: string[] = [];
  const notes: string[] = [];
  const stops: (() => Promise<void>)[] = [];
  // everything stops at once (the error logs were read before); the work folder goes last
  const stopAll = async () => {
    const [removeWork, ...rest] = stops.splice(0);
    await Promise.all(rest.map((stop) => stop().catch(() => undefined)));
    await removeWork?.().catch(() => undefined);
  };
  const onSignal = () => {
    void stopAll().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const work = mkdtempSync(join(tmpdir(), "kong-bench-"));
  stops.push(async () => rmSync(work, { recursive: true, force: true }));
  // A snapshot of dist/, first on every gateway's Lua path: a `make lua` running elsewhere during
  // the benchmark (it empties dist/ first) cannot change or break the plugins half-way.
  const distSnapshot = join(work, "dist");
  try {
    // a `make lua` elsewhere empties dist/ for a few seconds: wait for it rather than fail
    for (let waited = 0; !existsSync(join(ROOT, "dist", "kong", "plugins")) && waited < 30; waited++) {
      if (waited === 0) console.error("bench: dist/kong/plugins is missing, waiting up to 30 s for a build to finish");
      await new Promise((r) => setTimeout(r, 1000));
    }
    cpSync(join(ROOT, "dist", "kong"), join(distSnapshot, "kong"), { recursive: true });
  } catch (err) {
    await stopAll();
    console.error(`bench: cannot copy dist/kong (run \`make lua\` first): ${(err as Error).message}`);
    return 1;
  }

  // What is missing decides what can run: each plugin's transpiled files, and the programs.
  const missingByPlugin = new Map(PLUGINS.map((p) => [p, missingPluginFiles(distSnapshot, p)] as const));
  const missingPlugins = PLUGINS.filter((p) => missingByPlugin.get(p)!.length > 0);
  const wanted = args.configs ? new Set(["bare", "gateway", ...args.configs.split(",")]) : null;
  const configInfo = CONFIGS.filter((c) => !wanted || wanted.has(c.id)).map((c) => {
    const missing = c.plugins.flatMap((p) => missingByPlugin.get(p)!);
    return { cfg: c, available: missing.length === 0, missing };
  });
  if (missingPlugins.length > 0) {
    const lines = missingPlugins.map((p) => `  ${p}: ${missingByPlugin.get(p)!.join(", ")} missing (plugins/${p}/ not written yet, or run \`make lua\`)`);
    if (!args.partial) {
      await stopAll();
      console.error(`bench: cannot measure every configuration, plugins are missing:\n${lines.join("\n")}\n(--partial runs what exists)`);
      return 1;
    }
    notes.push(`not available in this run (plugins missing): ${configInfo.filter((c) => !c.available).map((c) => c.cfg.id).join(", ")}`);
    console.error(`bench: --partial: skipping configurations whose plugins are missing:\n${lines.join("\n")}`);
  }
  for (const [cmd, pkg] of [["wrk", "wrk"], ["luajit", "luajit"], [NGINX_BIN, "nginx-light"]] as const) {
    const r = await runToEnd(cmd, ["-v"]).catch(() => null);
    if (!r) {
      await stopAll();
      console.error(`bench: ${cmd} is not installed (Debian package ${pkg})`);
      return 1;
    }
  }
  const available = configInfo.filter((c) => c.available).map((c) => c.cfg);
  const needRedis = available.some((c) => c.redis);

  const machine = await describeMachine();
  const stream = sseStream(P.sse_events);
  const slow = sseStream(P.memory_stream_events + 4);
  const expectedJson = chatCompletionJson();

  let results: BenchResults | undefined;
  try {
    // upstream, bare proxy, redis
    const upstreamPort = await freePort();
    const upstream = await startUpstream(join(work, "upstream"), upstreamPort, {
      json: expectedJson,
      sseEvents: stream.events,
      slowEvent: slow.events[1],
      slowTail: slow.events.slice(-3).join(""),
    }, { sseBatch: P.sse_batch, slowIntervalMs: P.slow_interval_ms });
    stops.push(() => upstream.stop());
    const barePort = await freePort();
    const bare = await startNginx("bare proxy", join(work, "bare"), barePort, bareProxyConf(join(work, "bare"), barePort, upstreamPort));
    stops.push(() => bare.stop());

    let redis: Managed | undefined;
    let redisPort: number | undefined;
    if (needRedis) {
      redisPort = await freePort();
      redis = await startListening("redis-server", "redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"], redisPort);
      stops.push(() => redis!.stop());
    }
    const closedPort = await freePort();

    // the upstream answers what the clients will be compared against
    const direct = await fetch(`http://127.0.0.1:${upstreamPort}/sse`, { method: "POST", body: chatRequest({ stream: true }) });
    const directSse = await direct.text();
    if (directSse !== stream.body) throw new Error("the upstream nginx does not serve the expected SSE stream");

    // one gateway per configuration, started together
    const gateways = new Map<string, Gateway>();
    const gatewayCfgs = available.filter((c) => !c.bare);
    console.error(`bench: starting ${gatewayCfgs.length} gateways (${gatewayCfgs.map((c) => c.id).join(", ")})`);
    const started = await Promise.allSettled(
      gatewayCfgs.map((c) =>
        startGateway({ config: gatewayConfig(c, { upstreamPort, closedPort, redisPort }), luaPath: [BENCH_LUA_PATH, distSnapshot], startTimeoutMs: 90_000 }).then((gw) => {
          gateways.set(c.id, gw);
          stops.push(() => gw.stop());
        }),
      ),
    );
    console.error(`bench: gateways up (${Math.round((Date.now() - t0) / 1000)} s)`);
    started.forEach((s, i) => {
      if (s.status === "rejected") errors.push(`${gatewayCfgs[i].id}: the gateway did not start: ${(s.reason as Error).message}`);
    });
    if (errors.length > 0) throw new Error("gateway start failed");

    const urlOf = (id: string) => (id === "bare" ? `http://127.0.0.1:${bare.port}` : gateways.get(id)!.url);
    const logOf = (id: string) => (id === "bare" ? bare.errorLog() : gateways.get(id)!.errorLog());

    // proof that each configuration proxies correctly with its plugins active
    const expected = { json: expectedJson, sse: stream.body, sseEvents: P.sse_events, promptSizes: P.prompt_sizes };
    for (const c of available) {
      const problems = await verifyTarget({ cfg: c, url: urlOf(c.id), errorLog: () => logOf(c.id) }, expected, redisPort ? () => redisDbsize(redisPort!) : undefined);
      errors.push(...problems);
    }
    if (errors.length > 0) throw new Error("configuration checks failed");
    if (args.fault === "stop-redis") {
      if (!redis) throw new Error("--fault stop-redis needs the trl-redis configuration");
      await redis.stop();
    } else if (args.fault !== undefined) throw new Error(`unknown --fault ${args.fault} (stop-redis)`);
    const probeInfo = await probe(gateways.get("gateway")!.url, false);
    machine.lua_nginx_module = luaNginxModuleVersion(probeInfo.ngx_lua_version);
    console.error(`bench: every configuration checked (${Math.round((Date.now() - t0) / 1000)} s); ${P.rounds} round(s) of ${P.duration_s} s cells`);

    // load
    const wls = workloads(available);
    const allWorkloads = ["json", "sse", "pg-1k", "pg-100k"];
    const leftOut = allWorkloads.filter((id) => !wls.some((w) => w.id === id));
    if (leftOut.length > 0) notes.push(`workloads not run in this run: ${leftOut.join(", ")}`);
    notes.push(...(args.note ?? []));
    const bodyFiles = new Map<string, string>();
    for (const w of wls) {
      const f = join(work, `body-${w.id}.json`);
      writeFileSync(f, w.body);
      bodyFiles.set(w.id, f);
    }
    const cell = (w: Workload, id: string, durationS: number) =>
      runWrk(
        { url: `${urlOf(id)}${w.path}`, method: "POST", bodyFile: bodyFiles.get(w.id), contentType: "application/json" },
        { threads: Math.min(P.threads, w.connections), connections: w.connections, durationS },
      );
    if (P.warmup_s > 0) {
      for (const w of wls) for (const id of w.configs) await cell(w, id, P.warmup_s);
    }
    const rounds = new Map<string, Round[]>(wls.map((w) => [w.id, []]));
    for (let r = 0; r < P.rounds; r++) {
      for (const w of wls) {
        const round: Round = {};
        for (const id of rotate(w.configs, r)) {
          const res = await cell(w, id, P.duration_s);
          if (wrkErrorCount(res) > 0) errors.push(`${w.id} / ${id}, round ${r + 1}: ${describeErrors(res)}`);
          round[id] = res;
        }
        rounds.get(w.id)!.push(round);
        console.error(`bench: round ${r + 1}/${P.rounds} ${w.id} done (${Math.round((Date.now() - t0) / 1000)} s)`);
      }
    }

    // Lua memory per active stream
    const memory: Record<string, MemoryResult> = {};
    if (!args["skip-memory"]) {
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
          errors.push(`memory test (${id}): ${(err as Error).message}`);
        }
      }
      if (!memory.all3) notes.push("Lua memory per stream with all three plugins: not measured (all3 not available)");
    }

    const reader = args["skip-reader"] ? { status: "not available" as const, message: "skipped (--skip-reader)" } : await runSseReaderBench(ROOT, smoke, distSnapshot);
    if (reader.status === "failed") errors.push(`SSE reader micro-benchmark failed: ${reader.message}`);

    // worker errors anywhere (plugin errors are logged, not always visible in the status)
    for (const c of available) {
      const bad = errorLogProblems(logOf(c.id));
      if (bad.length > 0) errors.push(`${c.id}: ${bad.length} error line(s) in the error log, first: ${bad[0].slice(0, 400)}`);
    }
    const upstreamBad = errorLogProblems(upstream.errorLog());
    if (upstreamBad.length > 0) errors.push(`upstream nginx: ${upstreamBad.length} error line(s), first: ${upstreamBad[0].slice(0, 300)}`);

    const workloadResults: WorkloadResult[] = wls.map((w) => {
      const rs = rounds.get(w.id)!;
      return {
        id: w.id,
        label: w.label,
        request: w.request,
        connections: w.connections,
        configs: w.configs,
        rounds: rs.map((r) => Object.fromEntries(Object.entries(r).filter((e): e is [string, WrkResult] => e[1] !== undefined))),
        summary: w.configs.map((id) => summarise(rs, id)),
      };
    });
    const find = (w: string, c: string) => workloadResults.find((x) => x.id === w)?.summary.find((s) => s.config === c);
    const targets = evaluateTargets({
      jsonRpsAllVsGateway: find("json", "all3")?.vs_gateway?.rps ?? null,
      sseAddedP50Ms: find("sse", "all3")?.added_p50_ms_vs_gateway ?? null,
      sseEvents: P.sse_events,
      luaKbPerStream: memory.all3?.per_stream_kb ?? null,
      sseReaderMbps16k: reader.mb_per_s?.["16384"] ?? null,
    });
    if (smoke) notes.push("smoke run: durations too short for meaningful numbers; it only proves the harness and every configuration work");
    notes.push(`machine shared with other work (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end); wrk, the proxies and the upstream share its ${machine.cores} cores`);
    machine.loadavg_end = loadavg().map((l) => Math.round(l * 100) / 100);

    results = {
      schema: "kong-ts-ai-bench/1",
      ok: errors.length === 0,
      mode: smoke ? "smoke" : "full",
      date: new Date().toISOString(),
      commit: gitCommit(),
      machine,
      parameters: { ...P, sse_upstream: `Lua, ${P.sse_batch} events per write + flush`, total_s: Math.round((Date.now() - t0) / 1000) },
      configs: configInfo.map((c) => ({ id: c.cfg.id, label: c.cfg.label, plugins: c.cfg.plugins, available: c.available, ...(c.missing.length > 0 ? { missing: c.missing } : {}) })),
      workloads: workloadResults,
      memory,
      sse_reader: reader,
      targets,
      errors,
      notes,
    };
  } catch (err) {
    if (errors.length === 0 || !(err instanceof Error && /failed$/.test(err.message))) errors.push((err as Error).message);
  } finally {
    await stopAll();
  }

  if (!results) {
    console.error(`bench: FAILED\n${errors.map((e) => `  ${e}`).join("\n")}`);
    return 1;
  }
  console.log(renderText(results));
  const defaultOut = smoke ? join(ROOT, "bench", "results", "smoke.json.tmp") : join(ROOT, "bench", "results", "latest.json");
  // a failed run never replaces the committed results
  const out = results.ok ? (args.out ?? defaultOut) : `${args.out ?? defaultOut}.failed.tmp`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nresults: ${out}`);
  if (results.ok && !smoke && !args["no-docs"]) {
    const docs = args.docs ?? join(ROOT, "docs", "bench.md");
    writeFileSync(docs, renderMarkdown(results));
    console.log(`table: ${docs}`);
  }
  if (!results.ok) {
    console.error(`bench: FAILED with ${errors.length} error(s)`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
