// Helpers for the upstream-disconnect-log integration tests: a raw HTTP client that can hang up
// on purpose, the plugin's records read back from the gateway's error log, and small upstreams.
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createParser } from "eventsource-parser";
import { WebSocketServer, type WebSocket } from "ws";
import type { Gateway } from "../helpers/gateway.ts";

export const LINE_PREFIX = "[upstream-disconnect] ";
export const SERIALIZED_PREFIX = "[udl-serialized] ";

/** The record as the plugin writes it (README.md, schema_version 1). */
export interface DisconnectRecord {
  schema_version: number;
  outcome: string;
  reason: string;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  ttfb_ms?: number;
  time_to_first_data_ms?: number;
  idle_before_end_ms?: number;
  status: number;
  upstream_status?: number;
  upstream_addr?: string;
  upstream_tries?: number;
  kind: string;
  content_type?: string;
  bytes_to_client: number;
  bytes_from_upstream: number;
  sse_events: number;
  last_finish_reason?: string;
  tokens: { prompt: number; completion: number; total: number; estimated: boolean; source: string };
  route?: { id: string; name?: string };
  service?: { id: string; name?: string };
  consumer_id?: string;
  request_id?: string;
  method: string;
  path: string;
  websocket?: { closed_by: string; client_to_upstream_bytes: number; upstream_to_client_bytes: number };
}

/** The JSON object that starts at `start` (nginx appends ", client: ..." after the message). */
export function jsonObjectAt(text: string, start: number): string {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  throw new Error(`unterminated JSON object in log line: ${text.slice(start, start + 200)}`);
}

export interface LoggedRecord {
  record: DisconnectRecord;
  /** The whole error-log line. */
  line: string;
}

/** Every record line in the error log, oldest first. */
export function loggedRecords(gw: Gateway, prefix = LINE_PREFIX): LoggedRecord[] {
  const out: LoggedRecord[] = [];
  for (const line of gw.errorLog().split("\n")) {
    const i = line.indexOf(prefix);
    if (i < 0 || line[i + prefix.length] !== "{") continue;
    out.push({ record: JSON.parse(jsonObjectAt(line, i + prefix.length)) as DisconnectRecord, line });
  }
  return out;
}

export function recordsFor(gw: Gateway, path: string): LoggedRecord[] {
  return loggedRecords(gw).filter((r) => r.record.path === path);
}

/** Waits for the one record of `path` (the log phase runs after the client saw the end). */
export async function waitRecord(gw: Gateway, path: string, timeoutMs = 10_000): Promise<LoggedRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = recordsFor(gw, path);
    if (found.length > 1) throw new Error(`${found.length} records for ${path}: ${found.map((f) => f.line).join("\n")}`);
    if (found.length === 1) return found[0];
    if (Date.now() > until) {
      throw new Error(`no [upstream-disconnect] record for ${path} within ${timeoutMs} ms; error.log tail:\n${gw.errorLog().slice(-3000)}`);
    }
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | object;
  /** Hang up this many ms after sending the request. */
  abortAfterMs?: number;
  /** Hang up once this many SSE events arrived. */
  abortAfterEvents?: number;
}

export interface CallResult {
  status?: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** SSE events parsed by an independent parser (eventsource-parser). */
  events: number;
  /** How the exchange ended from the client's side: "end", "aborted-by-client", or the error. */
  ending: string;
  /** ms from sending the request to the end. */
  elapsedMs: number;
}

/** One request through node:http, so the test decides when the socket goes away. */
export function call(url: string, opts: CallOptions = {}): Promise<CallResult> {
  return new Promise((resolve) => {
    const payload = opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (payload !== undefined) {
      headers["content-type"] ??= "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const started = Date.now();
    const chunks: Buffer[] = [];
    let events = 0;
    let status: number | undefined;
    let resHeaders: IncomingHttpHeaders = {};
    let settled = false;
    let abortedByClient = false;
    const parser = createParser({ onEvent: () => void events++ });
    const finish = (ending: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), events, ending: abortedByClient ? "aborted-by-client" : ending, elapsedMs: Date.now() - started });
    };
    const req = request(url, { method: opts.method ?? (payload === undefined ? "GET" : "POST"), headers, agent: false }, (res) => {
      status = res.statusCode;
      resHeaders = res.headers;
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        parser.feed(c.toString("utf8"));
        if (opts.abortAfterEvents !== undefined && events >= opts.abortAfterEvents && !abortedByClient) {
          abortedByClient = true;
          req.destroy();
        }
      });
      res.on("end", () => finish("end"));
      res.on("error", (e) => finish(`error: ${e.message}`));
      res.on("close", () => finish("close"));
    });
    req.on("error", (e) => finish(`error: ${e.message}`));
    const timer = setTimeout(() => {
      if (opts.abortAfterMs !== undefined) {
        abortedByClient = true;
        req.destroy();
      }
    }, opts.abortAfterMs ?? 2 ** 30);
    req.end(payload);
  });
}

export interface SmallServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return sockets;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server, sockets: Set<Socket>, extra?: () => void): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      extra?.();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/**
 * Plain HTTP bodies: /chunked (complete), /chunked-cut (socket destroyed mid-body), /short
 * (Content-Length not reached), /sse-no-done (an OpenAI-style stream that ends without [DONE]).
 */
export async function startPlainUpstream(): Promise<SmallServer> {
  const server = createServer((req, res) => {
    const path = req.url ?? "";
    const piece = (i: number): string => `line ${i} of a plain chunked body\n`;
    if (path.endsWith("/chunked") || path.endsWith("/chunked-cut")) {
      res.writeHead(200, { "content-type": "text/plain" });
      const cut = path.endsWith("/chunked-cut");
      let i = 0;
      const tick = (): void => {
        if (cut && i === 3) {
          res.socket?.destroy();
          return;
        }
        if (i === 6) {
          res.end();
          return;
        }
        res.write(piece(i++));
        setTimeout(tick, 15);
      };
      tick();
      return;
    }
    if (path.endsWith("/sse-no-done")) {
      // OpenAI-style chunks, then a clean end of the body without [DONE]
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const word of ["Hello", " there", " friend"]) {
        res.write(`data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${word}"},"finish_reason":null}]}\n\n`);
      }
      res.end();
      return;
    }
    if (path.endsWith("/short")) {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "100" });
      res.write("x".repeat(50));
      setTimeout(() => res.socket?.destroy(), 30);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  const sockets = track(server);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, close: closer(server, sockets) };
}

/**
 * A WebSocket upstream. Query `mode`: "echo" answers each message with "echo:" + message;
 * "server-close" also closes (1000, "bye") 200 ms after the upgrade; "idle" sends nothing.
 */
export async function startWsUpstream(): Promise<SmallServer> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" });
    res.end("upgrade required\n");
  });
  const sockets = track(server);
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws: WebSocket, req) => {
    const mode = new URL(req.url ?? "/", "http://x").searchParams.get("mode");
    if (mode === "idle") return;
    ws.on("message", (m) => ws.send("echo:" + m.toString()));
    if (mode === "server-close") setTimeout(() => ws.close(1000, "bye"), 200);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: closer(server, sockets, () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    }),
  };
}
