/**
 * The mock LLM's HTTP server (node:http only): its life (listen, close) and the first routing step.
 * A request to an LLM API is handled by llm-request.ts (checks, errors) and respond.ts (answers),
 * each as an Exchange (exchange.ts) that ends in a record; request schemas live in api.ts, response
 * shapes in flavors/, wire faults in wire.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { sendPlain } from "./exchange.ts";
import type { FlavorName } from "./flavors/index.ts";
import { isFlavorName } from "./flavors/index.ts";
import type { LlmEndpoints } from "./llm-request.ts";
import { handleLlmRequest } from "./llm-request.ts";
import { RecordStore } from "./records.ts";
import { serveRecords } from "./records-endpoint.ts";

export const DEFAULT_MODELS: readonly string[] = [
  "mock-model",
  "gpt-4o-mini",
  "meta-llama/Llama-3.1-8B-Instruct",
  "Qwen/Qwen2.5-7B-Instruct",
  "claude-3-5-haiku-latest",
  "llama3.2",
];

export interface MockLlmServerOptions {
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  host?: string;
  /** Response flavor when a request names none (x-mock-flavor). Default "openai". */
  flavor?: FlavorName | string;
  /** What GET /v1/models lists. */
  models?: readonly string[];
  /** Request bodies above this get 413. Default 8 MiB. */
  maxBodyBytes?: number;
}

export interface MockLlmServer {
  port: number;
  host: string;
  url: string;
  records: RecordStore;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Longer than nginx's upstream keepalive_timeout (60 s), so the gateway never reuses a connection the mock is closing. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;

export async function startMockLlmServer(opts: MockLlmServerOptions = {}): Promise<MockLlmServer> {
  const defaultFlavor = opts.flavor ?? "openai";
  if (!isFlavorName(defaultFlavor)) throw new Error(`unknown flavor "${defaultFlavor}"`);
  const endpoints: LlmEndpoints = {
    defaultFlavor,
    models: opts.models ?? DEFAULT_MODELS,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    store: new RecordStore(),
  };

  const server = createServer((req, res) => {
    handle(endpoints, req, res).catch((err: unknown) => answerMockBug(res, err));
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 5_000;

  const host = opts.host ?? "127.0.0.1";
  const port = await listen(server, opts.port ?? 0, host);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const store = endpoints.store;
  let closing: Promise<void> | null = null;
  return {
    port,
    host,
    url: `http://${urlHost}:${port}`,
    records: store,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        store.releaseWaiters();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The mock's own endpoints first (health, records), then the LLM APIs. */
async function handle(endpoints: LlmEndpoints, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://mock.invalid");
  const path = url.pathname;
  const method = req.method ?? "GET";

  if (path === "/healthz") {
    sendPlain(res, method === "GET" || method === "HEAD" ? 200 : 405, { status: method === "GET" || method === "HEAD" ? "ok" : "method not allowed" });
    return;
  }
  if (path === "/_mock/requests") {
    await serveRecords(endpoints.store, req, res, url, method);
    return;
  }
  await handleLlmRequest(endpoints, req, res, path, method);
}

/** A bug in the mock must not hang the client: answer 500 if nothing was sent yet, else cut. */
function answerMockBug(res: ServerResponse, err: unknown): void {
  process.stderr.write(`mock-llm: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  if (!res.headersSent) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "mock-llm internal error", type: "server_error", param: null, code: null } }));
  } else {
    res.destroy();
  }
}

/** Resolves with the port once the server accepts connections. */
function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
