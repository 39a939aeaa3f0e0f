// Where the stack suites send their requests: real Kong when KONG_PROXY_URL is set (tools/e2e.sh sets
// it to the compose stack's proxy), otherwise the local gateway started from kong/kong.yml with the
// upstreams it names replaced by local processes on free ports.
//
//   KONG_PROXY_URL   Kong's proxy, e.g. http://127.0.0.1:8000. Unset: local gateway.
//   MOCK_LLM_URL     the mock LLM as the suites reach it directly, for its request log
//                    (default http://127.0.0.1:9000, docker-compose.yml publishes it there).
//   E2E_GPU=1        vLLM and SGLang are up behind Kong (docker compose --profile gpu); without it the
//                    suites skip, by name, what needs them when running against Kong.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { WebSocketServer } from "ws";
import { startGateway } from "../helpers/gateway.ts";
import { startMockLlm } from "../helpers/mock-llm.ts";
import { freePort } from "../helpers/ports.ts";
import { KONG_YML, consumerKey, readKongYml, type Obj } from "./kong-config.ts";

export const PROXY_URL_ENV = "KONG_PROXY_URL";
export const MOCK_URL_ENV = "MOCK_LLM_URL";
export const GPU_ENV = "E2E_GPU";

export type Backend = "mock-llm" | "vllm" | "sglang" | "video-service" | "admin-api" | "redis";

/** One request as the mock LLM recorded it (GET /_mock/requests). */
export interface MockRecord {
  id: string | number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  outcome?: "completed" | "client_disconnected" | "aborted_by_fault" | "error" | string;
  tokens_sent?: number;
  usage?: unknown;
}

/** What the echo upstream (local stand-in for the video service and the Admin API) saw. */
export interface EchoRecord {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  websocket: boolean;
}

export interface StackTarget {
  mode: "kong" | "local";
  proxyUrl: string;
  /** The mock LLM behind the mock-llm services, reached directly. */
  mockUrl: string;
  keys: { llm: string; video: string; admin: string };
  /** vLLM/SGLang routes lead somewhere: local mocks with those flavors, or Kong with E2E_GPU=1. */
  gpuBackends: boolean;
  /** The local gateway's error.log (kong.log output); undefined against Kong. */
  errorLog(): string | undefined;
  /** Requests the local echo upstreams saw (video service, Admin API); [] against Kong. */
  echoRecords(): EchoRecord[];
  stop(): Promise<void>;
}

export const againstKong = (): boolean => Boolean(process.env[PROXY_URL_ENV]);

export async function mockRecords(mockUrl: string): Promise<MockRecord[]> {
  const res = await fetch(`${mockUrl}/_mock/requests`);
  if (!res.ok) throw new Error(`GET ${mockUrl}/_mock/requests: ${res.status}`);
  const body = (await res.json()) as unknown;
  const list = Array.isArray(body) ? body : (body as { requests?: unknown }).requests;
  if (!Array.isArray(list)) throw new Error(`GET ${mockUrl}/_mock/requests: expected an array of records`);
  return list as MockRecord[];
}

export function headerOf(rec: { headers: Record<string, string | string[] | undefined> }, name: string): string | undefined {
  const v = Object.entries(rec.headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/** Polls the mock's request log until the record carrying `x-e2e-id: <id>` satisfies `done`. */
export async function waitForMockRecord(
  mockUrl: string,
  id: string,
  done: (r: MockRecord) => boolean,
  timeoutMs = 10_000,
): Promise<MockRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: MockRecord | undefined;
  for (;;) {
    last = (await mockRecords(mockUrl)).find((r) => headerOf(r, "x-e2e-id") === id);
    if (last && done(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`mock LLM: no finished record for x-e2e-id ${id} within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `[upstream-disconnect] {json}` records in a log text. */
export function disconnectRecords(log: string): Obj[] {
  const out: Obj[] = [];
  for (const line of log.split("\n")) {
    const i = line.indexOf("[upstream-disconnect]");
    if (i < 0) continue;
    // nginx appends its own context (" while logging request, client: ..."): keep the JSON object only.
    const start = line.indexOf("{", i);
    const end = line.lastIndexOf("}");
    if (start < 0 || end < start) continue;
    try {
      out.push(JSON.parse(line.slice(start, end + 1)) as Obj);
    } catch {
      // a line cut by nginx's log-line limit: not a record the suites can check
    }
  }
  return out;
}

// ---------------------------------------------------------------- local stand-ins

/** An HTTP + WebSocket upstream that answers every request with what it received. */
async function startEcho(): Promise<{ port: number; records: EchoRecord[]; close(): Promise<void> }> {
  const records: EchoRecord[] = [];
  const server: Server = createServer((req, res) => {
    records.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, websocket: false });
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ echo: true, method: req.method, url: req.url }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws, req) => {
    records.push({ method: req.method ?? "GET", url: req.url ?? "", headers: req.headers, websocket: true });
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    records,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function startRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!/Ready to accept connections/.test(out)) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** A port nothing listens on: upstreams the suites do not start answer "connection refused" (502). */
async function closedPort(): Promise<number> {
  return freePort();
}

/**
 * kong/kong.yml with its upstream hosts replaced, as DNS would for compose names: only the host and
 * port of each service URL (and the token-rate-limiting redis host) change; routes and plugins are the
 * file's own.
 */
export function withLocalUpstreams(doc: Obj, hosts: Record<string, string>): Obj {
  const copy = structuredClone(doc);
  for (const s of (copy.services as Obj[] | undefined) ?? []) {
    if (typeof s.url !== "string") continue;
    const url = new URL(s.url);
    const key = url.hostname === "127.0.0.1" && url.port === "8001" ? "admin-api" : url.hostname;
    const to = hosts[key];
    if (!to) throw new Error(`kong/kong.yml service ${String(s.name)}: no local stand-in for host ${url.host}`);
    url.host = to;
    // URL keeps a bare origin's "/" path; kong.yml's "http://mock-llm:9000" has none (Kong: path null).
    s.url = url.pathname === "/" && !/\/\/[^/]+\/$/.test(String(s.url)) ? url.origin : url.toString();
  }
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== "object" || v === null) return;
    const o = v as Obj;
    if (o.name === "token-rate-limiting" && typeof o.config === "object" && o.config !== null) {
      const conf = o.config as Obj;
      if (conf.policy === "redis" && typeof conf.redis === "object" && conf.redis !== null) {
        const [h, p] = (hosts.redis ?? "").split(":");
        (conf.redis as Obj).host = h;
        (conf.redis as Obj).port = Number(p);
      }
    }
    Object.values(o).forEach(walk);
  };
  walk(copy);
  return copy;
}

export interface StartOptions {
  /** Local only: which backends to run; the others get a closed port. Default: the mock LLM only. */
  backends?: Backend[];
}

export async function startStackTarget(opts: StartOptions = {}): Promise<StackTarget> {
  const doc = readKongYml();
  const keys = { llm: consumerKey(doc, "llm-client"), video: consumerKey(doc, "video-client"), admin: consumerKey(doc, "admin") };

  if (againstKong()) {
    const proxyUrl = String(process.env[PROXY_URL_ENV]).replace(/\/$/, "");
    const mockUrl = (process.env[MOCK_URL_ENV] ?? "http://127.0.0.1:9000").replace(/\/$/, "");
    return {
      mode: "kong",
      proxyUrl,
      mockUrl,
      keys,
      gpuBackends: process.env[GPU_ENV] === "1",
      errorLog: () => undefined,
      echoRecords: () => [],
      stop: async () => {},
    };
  }

  const wanted = new Set<Backend>(opts.backends ?? ["mock-llm"]);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const hosts: Record<string, string> = {};
    const mock = await startMockLlm({ flavor: "openai" });
    stops.push(() => mock.stop());
    hosts["mock-llm"] = `127.0.0.1:${mock.port}`;
    for (const [backend, flavor] of [["vllm", "vllm"], ["sglang", "sglang"]] as const) {
      if (wanted.has(backend)) {
        const m = await startMockLlm({ flavor });
        stops.push(() => m.stop());
        hosts[backend] = `127.0.0.1:${m.port}`;
      } else {
        hosts[backend] = `127.0.0.1:${await closedPort()}`;
      }
    }
    let echo: Awaited<ReturnType<typeof startEcho>> | undefined;
    if (wanted.has("video-service") || wanted.has("admin-api")) {
      echo = await startEcho();
      const e = echo;
      stops.push(() => e.close());
    }
    hosts["video-service"] = `127.0.0.1:${wanted.has("video-service") && echo ? echo.port : await closedPort()}`;
    hosts["admin-api"] = `127.0.0.1:${wanted.has("admin-api") && echo ? echo.port : await closedPort()}`;
    if (wanted.has("redis")) {
      const redis = await startRedis();
      stops.push(() => redis.stop());
      hosts.redis = `127.0.0.1:${redis.port}`;
    } else {
      hosts.redis = `127.0.0.1:${await closedPort()}`;
    }

    const gw = await startGateway({ config: withLocalUpstreams(doc, hosts) });
    stops.push(() => gw.stop());
    const echoRecords = echo ? echo.records : [];
    return {
      mode: "local",
      proxyUrl: gw.url.replace(/\/$/, ""),
      mockUrl: mock.url.replace(/\/$/, ""),
      keys,
      gpuBackends: wanted.has("vllm") && wanted.has("sglang"),
      errorLog: () => gw.errorLog(),
      echoRecords: () => echoRecords,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** kong/kong.yml's text, for the suite that starts the gateway from the file unchanged. */
export const kongYmlText = (): string => readFileSync(KONG_YML, "utf8");
