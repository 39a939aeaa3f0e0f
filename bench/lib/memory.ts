// Lua memory per active stream: the gateway worker's collectgarbage("count") after a full GC,
// idle and then with N long-lived streams in flight, read through the bench-probe plugin.
import { Agent, request } from "node:http";
import { MEMORY_PROBE_PATH } from "./configs.ts";
import { chatRequest } from "./payloads.ts";

export interface ProbeReading {
  lua_kb: number;
  full_gc: boolean;
  worker_pid: number;
  worker_count: number;
  ngx_lua_version: number;
  nginx_version: number;
  jit_version?: string;
  /** bench-byte-counter's requests logged and bytes of the last one, when it runs in the worker. */
  byte_counter?: { requests: number; last_bytes: number };
}

export async function probe(gatewayUrl: string, fullGc: boolean): Promise<ProbeReading> {
  const res = await fetch(`${gatewayUrl}${MEMORY_PROBE_PATH}?gc=${fullGc ? 1 : 0}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`bench-probe answered ${res.status}: ${text}`);
  return JSON.parse(text) as ProbeReading;
}

export interface MemoryResult {
  streams: number;
  events_per_stream: number;
  before_kb: number;
  during_kb: number;
  during_without_gc_kb: number;
  after_kb: number;
  per_stream_kb: number;
  /** Memory still held after every stream ended, per stream (a leak shows here). */
  retained_per_stream_kb: number;
}

interface OpenStream {
  firstByte: Promise<void>;
  done: Promise<{ status: number; body: string }>;
  ended(): boolean;
  abort(): void;
}

function openStream(agent: Agent, url: string, body: string): OpenStream {
  let ended = false;
  let resolveFirst!: () => void;
  let rejectFirst!: (e: Error) => void;
  const firstByte = new Promise<void>((res, rej) => {
    resolveFirst = res;
    rejectFirst = rej;
  });
  firstByte.catch(() => undefined);
  const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        if (text === "") resolveFirst();
        text += c;
      });
      res.on("end", () => {
        ended = true;
        resolve({ status: res.statusCode ?? 0, body: text });
      });
      res.on("error", reject);
    });
    req.on("error", (e) => {
      ended = true;
      rejectFirst(e);
      reject(e);
    });
  });
  done.catch(() => undefined);
  req.end(body);
  return { firstByte, done, ended: () => ended, abort: () => req.destroy() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens `streams` concurrent /slow streams of `events` events through the gateway, measures the
 * worker's Lua memory (full GC) once all are mid-stream, and again after they all ended.
 */
export async function measureLuaMemory(
  gatewayUrl: string,
  opts: { streams: number; events: number; intervalMs: number; settleMs: number },
): Promise<MemoryResult> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const before = await probe(gatewayUrl, true);
  if (before.worker_count !== 1) throw new Error(`the memory test needs one nginx worker, the gateway has ${before.worker_count}`);
  const body = chatRequest({ stream: true });
  const open: OpenStream[] = [];
  try {
    for (let i = 0; i < opts.streams; i++) open.push(openStream(agent, `${gatewayUrl}/slow?n=${opts.events}`, body));
    const allStarted = Promise.all(open.map((s) => s.firstByte));
    const timeout = sleep(20_000).then(() => {
      throw new Error(`not all ${opts.streams} streams started within 20 s`);
    });
    await Promise.race([allStarted, timeout]);
    await sleep(opts.settleMs);
    const stillOpen = open.filter((s) => !s.ended()).length;
    if (stillOpen !== opts.streams) {
      throw new Error(`only ${stillOpen} of ${opts.streams} streams were still active when measured: make them longer`);
    }
    const duringNoGc = await probe(gatewayUrl, false);
    const during = await probe(gatewayUrl, true);
    if (open.some((s) => s.ended())) throw new Error("a stream ended while memory was measured: make them longer");

    const results = await Promise.all(open.map((s) => s.done));
    const bad = results.filter((r) => r.status !== 200 || !r.body.endsWith("data: [DONE]\n\n"));
    if (bad.length > 0) {
      throw new Error(`${bad.length} of ${opts.streams} long streams failed (first: status ${bad[0].status}, ${bad[0].body.slice(-200)})`);
    }
    // let the log phases of the last streams run before the final reading
    await sleep(200);
    const after = await probe(gatewayUrl, true);
    return {
      streams: opts.streams,
      events_per_stream: opts.events,
      before_kb: before.lua_kb,
      during_kb: during.lua_kb,
      during_without_gc_kb: duringNoGc.lua_kb,
      after_kb: after.lua_kb,
      per_stream_kb: (during.lua_kb - before.lua_kb) / opts.streams,
      retained_per_stream_kb: (after.lua_kb - before.lua_kb) / opts.streams,
    };
  } finally {
    for (const s of open) if (!s.ended()) s.abort();
    agent.destroy();
  }
}
