/**
 * The mock LLM's HTTP server (node:http only). Routing, the life of one exchange, and its record;
 * request schemas live in api.ts, response shapes in flavors/, wire faults in wire.ts.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { LlmRequest } from "./api.ts";
import { parseRequest, ValidationError } from "./api.ts";
import { anthropicErrorBody } from "./flavors/anthropic.ts";
import type { Api, Flavor, FlavorName, ResponseContext } from "./flavors/index.ts";
import { effectiveFlavor, isFlavorName } from "./flavors/index.ts";
import { openAiError } from "./flavors/openai.ts";
import type { ErrorResponse } from "./flavors/types.ts";
import type { MockOptions } from "./faults.ts";
import { describeOptions, MockOptionError, parseMockOptions } from "./faults.ts";
import { planCompletion } from "./generate.ts";
import type { MockRequestRecord, Outcome, UsageRecord } from "./records.ts";
import { RecordStore, redactHeaders, redactPath } from "./records.ts";
import { sleep, Wire } from "./wire.ts";

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
const DEFAULT_WAIT_TIMEOUT_MS = 5_000;
const MAX_WAIT_TIMEOUT_MS = 120_000;
/** Longer than nginx's upstream keepalive_timeout (60 s), so the gateway never reuses a connection the mock is closing. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;

type Family = "openai" | "anthropic" | "ollama";

function familyOf(api: Api | null): Family {
  if (api === "messages") return "anthropic";
  if (api === "ollama_chat") return "ollama";
  return "openai";
}

/** Paths match by suffix, so a gateway that keeps a route prefix (/llm/v1/chat/completions) still lands. */
function apiOf(path: string): Api | "models" | null {
  if (path.endsWith("/chat/completions")) return "chat";
  if (path.endsWith("/completions")) return "completions";
  if (path.endsWith("/messages")) return "messages";
  if (path.endsWith("/api/chat")) return "ollama_chat";
  if (path.endsWith("/models")) return "models";
  return null;
}

/** A validation failure in the format of the API the path speaks. */
function validationError(family: Family, message: string, param: string | null, code: string | null): ErrorResponse {
  if (family === "anthropic") return { contentType: "application/json", body: anthropicErrorBody("invalid_request_error", message) };
  if (family === "ollama") return { contentType: "application/json; charset=utf-8", body: { error: message } };
  return openAiError(message, "invalid_request_error", param, code);
}

function jsonParseMessage(family: Family, detail: string): string {
  if (family === "anthropic") return "There was an error parsing the body of your request as JSON";
  if (family === "ollama") return `invalid JSON body: ${detail}`;
  return (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
    "The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
  );
}

/**
 * What a response id is derived from: the request's JSON without `stream_options` (a gateway may
 * add `include_usage` there and remove the usage chunk again; its client must get the bytes a
 * direct request gets, id included). Re-serialised, so key order is kept and whitespace is not.
 */
function idSeedBody(text: string, body: unknown): string {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return text;
  const rest: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  delete rest.stream_options;
  return JSON.stringify(rest);
}

function responseId(flavor: Flavor, api: Api, seed: string): string {
  const hex = createHash("sha256").update(seed).digest("hex");
  if (flavor.name === "anthropic") return "msg_01" + hex.slice(0, 22);
  const prefix = api === "completions" ? "cmpl-" : "chatcmpl-";
  return prefix + (flavor.name === "openai" ? hex.slice(0, 29) : hex.slice(0, 32));
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("close", () => reject(new Error("request closed before its body was complete")));
  });
}

/** One request/response and its record. */
class Exchange {
  readonly id: number;
  readonly started = performance.now();
  readonly receivedAt = new Date().toISOString();
  readonly controller = new AbortController();
  api: Api | "models" | null = null;
  flavor: string | null = null;
  model: string | null = null;
  stream = false;
  status = 0;
  faults: Record<string, unknown> = {};
  tokensSent = 0;
  usage: UsageRecord | null = null;
  usageSent = false;
  finishReason: string | null = null;
  body: unknown = null;
  error: string | null = null;
  wire: Wire | null = null;
  private recorded = false;

  constructor(
    private readonly store: RecordStore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.id = store.allocateId();
    res.on("close", () => {
      this.controller.abort();
      if (this.recorded) return;
      if (this.status === 0) this.status = res.headersSent ? res.statusCode : 0;
      if (!res.writableFinished) this.record("client_disconnected");
      else this.record(res.statusCode >= 400 ? "error" : "completed");
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.signal.aborted || this.res.destroyed;
  }

  record(outcome: Outcome): void {
    if (this.recorded) return;
    this.recorded = true;
    const record: MockRequestRecord = {
      id: this.id,
      received_at: this.receivedAt,
      method: this.req.method ?? "",
      path: redactPath(this.req.url ?? ""),
      headers: redactHeaders(this.req.headers),
      body: this.body,
      api: this.api,
      flavor: this.flavor,
      model: this.model,
      stream: this.stream,
      status: this.status,
      outcome,
      faults: this.faults,
      tokens_sent: this.tokensSent,
      usage: this.usage,
      usage_sent: outcome === "completed" && this.usageSent,
      finish_reason: this.finishReason,
      bytes_sent: this.wire?.bytesSent ?? 0,
      error: this.error,
      duration_ms: Math.round((performance.now() - this.started) * 1000) / 1000,
    };
    this.store.add(record);
  }

  writeHead(status: number, headers: OutgoingHttpHeaders): void {
    this.status = status;
    this.res.writeHead(status, { ...headers, "x-mock-record-id": String(this.id), "x-request-id": `mock-${this.id}` });
  }
}

export async function startMockLlmServer(opts: MockLlmServerOptions = {}): Promise<MockLlmServer> {
  const defaultFlavor = opts.flavor ?? "openai";
  if (!isFlavorName(defaultFlavor)) throw new Error(`unknown flavor "${defaultFlavor}"`);
  const models = opts.models ?? DEFAULT_MODELS;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const store = new RecordStore();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the mock must not hang the client: answer 500 if nothing was sent yet, else cut.
      process.stderr.write(`mock-llm: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "mock-llm internal error", type: "server_error", param: null, code: null } }));
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 5_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://mock.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";

    if (path === "/healthz") {
      sendPlain(res, method === "GET" || method === "HEAD" ? 200 : 405, { status: method === "GET" || method === "HEAD" ? "ok" : "method not allowed" });
      return;
    }
    if (path === "/_mock/requests") {
      await serveRecords(req, res, url, method);
      return;
    }

    const ex = new Exchange(store, req, res);
    const api = apiOf(path);
    ex.api = api;
    const family = familyOf(api === "models" ? null : api);

    let raw: Buffer;
    try {
      raw = await readBody(req, maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader("connection", "close");
        await sendError(ex, 413, validationError(family, `Request body exceeds ${maxBodyBytes} bytes.`, null, "request_too_large"), undefined, "body too large");
      }
      return;
    }
    const text = raw.toString("utf8");
    let body: unknown = raw.length === 0 ? null : text;
    let jsonError: string | null = null;
    if (raw.length > 0) {
      try {
        body = JSON.parse(text);
      } catch (err) {
        jsonError = err instanceof Error ? err.message : String(err);
      }
    } else if (method === "POST") {
      jsonError = "empty body";
    }
    ex.body = body;

    if (api === null) {
      await sendError(ex, 404, openAiError(`Invalid URL (${method} ${path})`, "invalid_request_error", null, "unknown_url"), undefined, "unknown path");
      return;
    }
    if (api === "models") {
      if (method !== "GET") {
        await sendError(ex, 405, openAiError(`Invalid method for URL (${method} ${path})`, "invalid_request_error", null, "method_not_allowed"), undefined, "method not allowed");
        return;
      }
      ex.status = 200;
      const list = { object: "list", data: models.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "mock-llm" })) };
      await sendJson(ex, 200, list, { "content-type": "application/json" }, undefined);
      return;
    }
    if (method !== "POST") {
      res.setHeader("allow", "POST");
      await sendError(ex, 405, validationError(family, `Invalid method for URL (${method} ${path}): use POST.`, null, "method_not_allowed"), undefined, "method not allowed");
      return;
    }

    let options: MockOptions;
    try {
      options = parseMockOptions(req.headers, body);
    } catch (err) {
      if (!(err instanceof MockOptionError)) throw err;
      await sendError(ex, 400, validationError(family, `Invalid mock option: ${err.message}`, err.source, "invalid_mock_option"), undefined, err.message);
      return;
    }
    ex.faults = describeOptions(options);
    const chosen = options.flavor ?? defaultFlavor;
    const flavor = effectiveFlavor(api, chosen as FlavorName);
    ex.flavor = flavor.name;

    if (options.failStatus !== undefined) {
      await sleep(options.headerDelayMs, ex.signal);
      if (ex.closed) return;
      const status = options.failStatus;
      const headers: OutgoingHttpHeaders = status === 429 || status === 503 || status === 529 ? { "retry-after": "1" } : {};
      await sendError(ex, status, flavor.error(status, `Mock failure: status ${status} requested by fail_status.`), options, "fail_status", headers);
      return;
    }

    // The Content-Type only matters when the body is not JSON: `curl -d` labels JSON as a form.
    const contentType = req.headers["content-type"];
    if (jsonError !== null && family !== "ollama" && contentType !== undefined && !/json/i.test(contentType)) {
      await sendError(ex, 400, validationError(family, `Invalid Content-Type header (${contentType}), expected application/json.`, null, "invalid_content_type"), options, "bad content type");
      return;
    }
    if (jsonError !== null) {
      await sendError(ex, 400, validationError(family, jsonParseMessage(family, jsonError), null, null), options, `bad JSON: ${jsonError}`);
      return;
    }

    let request: LlmRequest;
    try {
      request = parseRequest(api, body);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      await sendError(ex, 400, validationError(family, err.message, err.param, err.code), options, err.message);
      return;
    }

    const plan = planCompletion({
      promptKey: request.promptKey,
      maxTokens: request.maxTokens,
      maxTokensMode: request.maxTokensMode,
      stop: request.stop,
      forcedText: options.text,
    });
    const ctx: ResponseContext = {
      api,
      id: responseId(flavor, api, `${path}\n${JSON.stringify(ex.faults)}\n${options.text ?? ""}\n${idSeedBody(text, body)}`),
      created: options.created ?? Math.floor(Date.now() / 1000),
      model: request.model,
      plan,
      promptTokens: request.promptTokens,
      includeUsage: request.includeUsage,
      continuousUsage: request.continuousUsage,
      cacheReadInputTokens: flavor.name === "anthropic" ? options.cacheReadInputTokens : undefined,
      cacheCreationInputTokens: flavor.name === "anthropic" ? options.cacheCreationInputTokens : undefined,
    };
    const promptTotal = request.promptTokens + (ctx.cacheReadInputTokens ?? 0) + (ctx.cacheCreationInputTokens ?? 0);
    ex.model = request.model;
    ex.stream = request.stream;
    ex.usage = { prompt_tokens: promptTotal, completion_tokens: plan.completionTokens, total_tokens: promptTotal + plan.completionTokens };
    ex.finishReason = plan.finish;

    if (request.stream) await streamResponse(ex, flavor, ctx, options);
    else await bodyResponse(ex, flavor, ctx, options);
  }

  async function streamResponse(ex: Exchange, flavor: Flavor, ctx: ResponseContext, options: MockOptions): Promise<void> {
    const framing = flavor.stream(ctx);
    await sleep(options.headerDelayMs, ex.signal);
    if (ex.closed) return;
    const headers: OutgoingHttpHeaders = { "content-type": framing.contentType, "cache-control": "no-cache" };
    if (options.gzip) {
      headers["content-encoding"] = "gzip";
      headers.vary = "Accept-Encoding";
    }
    ex.writeHead(200, headers);
    ex.res.flushHeaders();
    const wire = new Wire(ex.res, options, ex.signal, framing.sse);
    ex.wire = wire;

    await sleep(options.ttftMs, ex.signal);
    const total = ctx.plan.completionTokens;
    const abortAt = options.abortAfterTokens === undefined ? undefined : Math.min(options.abortAfterTokens, total);
    const stallAt = options.stallAfterTokens === undefined ? undefined : Math.min(options.stallAfterTokens, total);

    // Returns true when a fault ended the response at this point.
    const checkpoint = async (): Promise<boolean> => {
      if (ex.closed) return true;
      if (abortAt !== undefined && ex.tokensSent >= abortAt) {
        ex.record("aborted_by_fault");
        await wire.cut();
        return true;
      }
      if (stallAt !== undefined && ex.tokensSent >= stallAt) {
        // Nothing more is sent; the close handler records the client's departure.
        await new Promise<void>((resolve) => {
          if (ex.signal.aborted) resolve();
          else ex.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        return true;
      }
      return false;
    };

    for (const event of framing.open()) await wire.send(event);
    if (await checkpoint()) return;
    const pieces = ctx.plan.pieces;
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) await sleep(options.tokenDelayMs, ex.signal);
      if (ex.closed) return;
      const tokensAfter = ex.tokensSent + countPieceTokens(pieces[i]);
      for (const event of framing.token(i, pieces[i], tokensAfter)) await wire.send(event);
      ex.tokensSent = tokensAfter;
      if (await checkpoint()) return;
    }
    for (const event of framing.close()) await wire.send(event);
    if (ex.closed) return;
    ex.usageSent = framing.closeCarriesUsage;
    ex.record("completed");
    await wire.end();
  }

  async function bodyResponse(ex: Exchange, flavor: Flavor, ctx: ResponseContext, options: MockOptions): Promise<void> {
    const generation = options.ttftMs + options.tokenDelayMs * Math.max(0, ctx.plan.pieces.length - 1);
    await sleep(options.headerDelayMs + generation, ex.signal);
    if (ex.closed) return;
    if (options.abortAfterTokens !== undefined) {
      // A non-streamed answer has nothing to cut mid-way: the connection drops before the headers.
      ex.record("aborted_by_fault");
      ex.res.socket?.destroy();
      ex.res.destroy();
      return;
    }
    if (options.stallAfterTokens !== undefined) {
      await new Promise<void>((resolve) => {
        if (ex.signal.aborted) resolve();
        else ex.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return;
    }
    ex.usageSent = true;
    await sendJson(ex, 200, flavor.body(ctx), { "content-type": "application/json" }, options, () => {
      ex.tokensSent = ctx.plan.completionTokens;
    });
  }

  /** Sends a JSON body through the wire (gzip/split honoured), recording "completed" before it ends. */
  async function sendJson(
    ex: Exchange,
    status: number,
    payload: unknown,
    headers: OutgoingHttpHeaders,
    options: MockOptions | undefined,
    beforeRecord?: () => void,
    outcome: Outcome = "completed",
  ): Promise<void> {
    if (ex.closed) return;
    const text = JSON.stringify(payload);
    const gzip = options?.gzip ?? false;
    const allHeaders: OutgoingHttpHeaders = { ...headers };
    if (gzip) {
      allHeaders["content-encoding"] = "gzip";
      allHeaders.vary = "Accept-Encoding";
    } else {
      allHeaders["content-length"] = Buffer.byteLength(text);
    }
    ex.writeHead(status, allHeaders);
    const wire = new Wire(ex.res, { gzip, crlf: false, keepaliveComments: false, split: options?.split ?? false }, ex.signal, false);
    ex.wire = wire;
    await wire.send(text);
    if (ex.closed) return;
    beforeRecord?.();
    ex.record(outcome);
    await wire.end();
  }

  async function sendError(
    ex: Exchange,
    status: number,
    error: ErrorResponse,
    options: MockOptions | undefined,
    reason: string,
    headers: OutgoingHttpHeaders = {},
  ): Promise<void> {
    ex.error = reason;
    await sendJson(ex, status, error.body, { ...headers, "content-type": error.contentType }, options, undefined, "error");
  }

  async function serveRecords(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    req.resume();
    if (method === "DELETE") {
      const cleared = store.list().length;
      store.clear();
      sendPlain(res, 200, { cleared });
      return;
    }
    if (method !== "GET") {
      sendPlain(res, 405, { error: "use GET or DELETE" });
      return;
    }
    const waitFor = url.searchParams.get("wait_for");
    if (waitFor === null) {
      sendPlain(res, 200, store.list());
      return;
    }
    const count = Number(waitFor);
    const timeoutParam = url.searchParams.get("timeout_ms");
    const timeout = timeoutParam === null ? DEFAULT_WAIT_TIMEOUT_MS : Number(timeoutParam);
    if (!Number.isInteger(count) || count < 0 || !Number.isInteger(timeout) || timeout < 0 || timeout > MAX_WAIT_TIMEOUT_MS) {
      sendPlain(res, 400, { error: `wait_for must be an integer >= 0 and timeout_ms an integer from 0 to ${MAX_WAIT_TIMEOUT_MS}` });
      return;
    }
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const records = await store.waitFor(count, timeout, gone.signal);
    if (gone.signal.aborted && res.destroyed) return;
    sendPlain(res, 200, records, { "x-mock-wait-satisfied": String(records.length >= count) });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = opts.host ?? "127.0.0.1";
  const urlHost = host.includes(":") ? `[${host}]` : host;

  let closing: Promise<void> | null = null;
  return {
    port: address.port,
    host,
    url: `http://${urlHost}:${address.port}`,
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

function countPieceTokens(piece: string): number {
  // A piece is one token unless it is whitespace only (see tokenPieces).
  return piece.trim().length === 0 ? 0 : 1;
}

function sendPlain(res: ServerResponse, status: number, payload: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
