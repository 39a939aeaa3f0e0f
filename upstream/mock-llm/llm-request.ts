/**
 * A request to one of the LLM APIs (chat, completions, messages, ollama chat, models): its body,
 * method, mock options and fields are checked in the order the real servers check them, each
 * failure answered in the format of the API the path speaks; a valid completion is answered by
 * respond.ts.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { LlmRequest } from "./api.ts";
import { parseRequest, ValidationError } from "./api.ts";
import { Exchange } from "./exchange.ts";
import { anthropicErrorBody } from "./flavors/anthropic.ts";
import type { Api, Flavor, FlavorName, ResponseContext } from "./flavors/index.ts";
import { effectiveFlavor } from "./flavors/index.ts";
import { openAiError } from "./flavors/openai.ts";
import type { ErrorResponse } from "./flavors/types.ts";
import type { MockOptions } from "./faults.ts";
import { describeOptions, MockOptionError, parseMockOptions } from "./faults.ts";
import { planCompletion } from "./generate.ts";
import type { RecordStore } from "./records.ts";
import { bodyResponse, streamResponse } from "./respond.ts";
import { sleep } from "./wire.ts";

export interface LlmEndpoints {
  /** The flavor of requests that name none. */
  defaultFlavor: FlavorName;
  /** What GET /v1/models lists. */
  models: readonly string[];
  /** Request bodies above this get 413. */
  maxBodyBytes: number;
  store: RecordStore;
}

type Family = "openai" | "anthropic" | "ollama";

/** The request body as text and as parsed JSON (jsonError says why it is not JSON). */
interface ReceivedBody {
  text: string;
  body: unknown;
  jsonError: string | null;
}

export async function handleLlmRequest(endpoints: LlmEndpoints, req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
  const ex = new Exchange(endpoints.store, req, res);
  const api = apiOf(path);
  ex.api = api;
  const family = familyOf(api === "models" ? null : api);

  const received = await receiveBody(ex, family, method, endpoints.maxBodyBytes);
  if (received === null) return;

  if (api === null) {
    await ex.sendError(404, openAiError(`Invalid URL (${method} ${path})`, "invalid_request_error", null, "unknown_url"), undefined, "unknown path");
    return;
  }
  if (api === "models") {
    await serveModels(ex, method, path, endpoints.models);
    return;
  }
  if (method !== "POST") {
    res.setHeader("allow", "POST");
    await ex.sendError(405, validationError(family, `Invalid method for URL (${method} ${path}): use POST.`, null, "method_not_allowed"), undefined, "method not allowed");
    return;
  }

  const options = await mockOptions(ex, family, received.body);
  if (options === null) return;
  ex.faults = describeOptions(options);
  const flavor = effectiveFlavor(api, options.flavor ?? endpoints.defaultFlavor);
  ex.flavor = flavor.name;

  if (options.failStatus !== undefined) {
    await failAsAsked(ex, flavor, options, options.failStatus);
    return;
  }
  const request = await validRequest(ex, api, family, received, options);
  if (request === null) return;

  const ctx = responseContext(ex, api, path, flavor, request, options, received);
  if (request.stream) await streamResponse(ex, flavor, ctx, options);
  else await bodyResponse(ex, flavor, ctx, options);
}

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

/** Reads and parses the body (kept for the record); null when it was answered (413) or the client left. */
async function receiveBody(ex: Exchange, family: Family, method: string, maxBodyBytes: number): Promise<ReceivedBody | null> {
  let raw: Buffer;
  try {
    raw = await readBody(ex.req, maxBodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      ex.res.setHeader("connection", "close");
      await ex.sendError(413, validationError(family, `Request body exceeds ${maxBodyBytes} bytes.`, null, "request_too_large"), undefined, "body too large");
    }
    return null;
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
  return { text, body, jsonError };
}

async function serveModels(ex: Exchange, method: string, path: string, models: readonly string[]): Promise<void> {
  if (method !== "GET") {
    await ex.sendError(405, openAiError(`Invalid method for URL (${method} ${path})`, "invalid_request_error", null, "method_not_allowed"), undefined, "method not allowed");
    return;
  }
  ex.status = 200;
  const list = { object: "list", data: models.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "mock-llm" })) };
  await ex.sendJson(200, list, { "content-type": "application/json" }, undefined);
}

/** The mock options of the headers and body; null when they are invalid (answered with 400). */
async function mockOptions(ex: Exchange, family: Family, body: unknown): Promise<MockOptions | null> {
  try {
    return parseMockOptions(ex.req.headers, body);
  } catch (err) {
    if (!(err instanceof MockOptionError)) throw err;
    await ex.sendError(400, validationError(family, `Invalid mock option: ${err.message}`, err.source, "invalid_mock_option"), undefined, err.message);
    return null;
  }
}

/** fail_status: the error the flavor's server answers with for that status, before any validation. */
async function failAsAsked(ex: Exchange, flavor: Flavor, options: MockOptions, status: number): Promise<void> {
  await sleep(options.headerDelayMs, ex.signal);
  if (ex.closed) return;
  const headers: OutgoingHttpHeaders = status === 429 || status === 503 || status === 529 ? { "retry-after": "1" } : {};
  await ex.sendError(status, flavor.error(status, `Mock failure: status ${status} requested by fail_status.`), options, "fail_status", headers);
}

/** The request's fields once Content-Type, JSON and schema pass; null when one failed (answered with 400). */
async function validRequest(ex: Exchange, api: Api, family: Family, received: ReceivedBody, options: MockOptions): Promise<LlmRequest | null> {
  const { jsonError } = received;
  // The Content-Type only matters when the body is not JSON: `curl -d` labels JSON as a form.
  const contentType = ex.req.headers["content-type"];
  if (jsonError !== null && family !== "ollama" && contentType !== undefined && !/json/i.test(contentType)) {
    await ex.sendError(400, validationError(family, `Invalid Content-Type header (${contentType}), expected application/json.`, null, "invalid_content_type"), options, "bad content type");
    return null;
  }
  if (jsonError !== null) {
    await ex.sendError(400, validationError(family, jsonParseMessage(family, jsonError), null, null), options, `bad JSON: ${jsonError}`);
    return null;
  }
  try {
    return parseRequest(api, received.body);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    await ex.sendError(400, validationError(family, err.message, err.param, err.code), options, err.message);
    return null;
  }
}

/** Plans the completion and notes in the record what the answer will hold. */
function responseContext(ex: Exchange, api: Api, path: string, flavor: Flavor, request: LlmRequest, options: MockOptions, received: ReceivedBody): ResponseContext {
  const plan = planCompletion({
    promptKey: request.promptKey,
    maxTokens: request.maxTokens,
    maxTokensMode: request.maxTokensMode,
    stop: request.stop,
    forcedText: options.text,
  });
  const ctx: ResponseContext = {
    api,
    id: responseId(flavor, api, `${path}\n${JSON.stringify(ex.faults)}\n${options.text ?? ""}\n${idSeedBody(received.text, received.body)}`),
    created: options.created ?? Math.floor(Date.now() / 1000),
    model: request.model,
    plan,
    promptTokens: request.promptTokens + (options.templateTokens ?? 0),
    includeUsage: request.includeUsage,
    continuousUsage: request.continuousUsage,
    cacheReadInputTokens: flavor.name === "anthropic" ? options.cacheReadInputTokens : undefined,
    cacheCreationInputTokens: flavor.name === "anthropic" ? options.cacheCreationInputTokens : undefined,
  };
  const promptTotal = ctx.promptTokens + (ctx.cacheReadInputTokens ?? 0) + (ctx.cacheCreationInputTokens ?? 0);
  ex.model = request.model;
  ex.stream = request.stream;
  ex.usage = { prompt_tokens: promptTotal, completion_tokens: plan.completionTokens, total_tokens: promptTotal + plan.completionTokens };
  ex.finishReason = plan.finish;
  return ctx;
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
