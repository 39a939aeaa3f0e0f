/**
 * Per-request mock options: timing, faults and forced content.
 *
 * Each option has one name (OPTION_SPECS) and is given either
 *   - as a header: `x-mock-` + the name with `_` written as `-` (`x-mock-ttft-ms: 500`), or
 *   - as a JSON body field: `mock_` + the name (`"mock_ttft_ms": 500`); the bare name (`"ttft_ms"`) is
 *     accepted as an alias.
 * A header wins over the body. Headers are what tests set through the gateway.
 */
import type { FlavorName } from "./flavors/types.ts";
import { FLAVOR_NAMES, isFlavorName } from "./flavors/types.ts";

export interface MockOptions {
  flavor?: FlavorName;
  /** Delay before the response status line and headers (lets a gateway's read timeout fire before headers). */
  headerDelayMs: number;
  /** Delay between the headers and the first token (time to first token). */
  ttftMs: number;
  /** Delay between two tokens. */
  tokenDelayMs: number;
  /** Answer with this status and an error body in the flavor's format instead of a completion. */
  failStatus?: number;
  /** Destroy the connection once this many tokens were sent: no terminator, no final chunk. */
  abortAfterTokens?: number;
  /** Stop sending once this many tokens were sent and keep the connection open until the client leaves. */
  stallAfterTokens?: number;
  gzip: boolean;
  keepaliveComments: boolean;
  crlf: boolean;
  split: boolean;
  /** Forced completion text. */
  text?: string;
  /** Fixed `created` timestamp (unix seconds), for reproducible recordings. */
  created?: number;
  cacheReadInputTokens?: number;
  /** Tokens a chat template adds to every prompt (a real server reports them in usage; a gateway's estimate cannot see them). */
  templateTokens?: number;
  cacheCreationInputTokens?: number;
}

type Kind = "ms" | "count" | "status" | "bool" | "text" | "text_b64" | "flavor" | "unix";

export const OPTION_SPECS: Readonly<Record<string, Kind>> = {
  flavor: "flavor",
  header_delay_ms: "ms",
  ttft_ms: "ms",
  token_delay_ms: "ms",
  fail_status: "status",
  abort_after_tokens: "count",
  stall_after_tokens: "count",
  gzip: "bool",
  keepalive_comments: "bool",
  crlf: "bool",
  split: "bool",
  text: "text",
  text_b64: "text_b64",
  created: "unix",
  cache_read_input_tokens: "count",
  template_tokens: "count",
  cache_creation_input_tokens: "count",
};

const MAX_DELAY_MS = 600_000;

export class MockOptionError extends Error {
  constructor(readonly source: string, message: string) {
    super(`${source}: ${message}`);
  }
}

export function headerName(option: string): string {
  return "x-mock-" + option.replace(/_/g, "-");
}

function parseInteger(source: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "number" ? value : typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new MockOptionError(source, `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseBoolean(source: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "number" && (value === 0 || value === 1)) return value === 1;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off", ""].includes(v)) return false;
  }
  throw new MockOptionError(source, `expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * Header values reach Node as latin1 strings; a client that sent raw UTF-8 bytes gets them back by
 * re-reading the bytes as UTF-8. For text that a client library refuses to put in a header, use
 * `x-mock-text-b64`.
 */
function headerText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, "latin1").toString("utf8") : value;
}

type RawOptions = Map<string, { source: string; value: unknown }>;

function collect(headers: Record<string, string | string[] | undefined>, body: unknown): RawOptions {
  const raw: RawOptions = new Map();
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const fields = body as Record<string, unknown>;
    for (const name of Object.keys(OPTION_SPECS)) {
      if (fields[name] !== undefined) raw.set(name, { source: `body field "${name}"`, value: fields[name] });
    }
    for (const name of Object.keys(OPTION_SPECS)) {
      const key = "mock_" + name;
      if (fields[key] !== undefined) raw.set(name, { source: `body field "${key}"`, value: fields[key] });
    }
  }
  for (const name of Object.keys(OPTION_SPECS)) {
    const header = headerName(name);
    const value = headers[header];
    if (value === undefined) continue;
    const single = Array.isArray(value) ? value[value.length - 1] : value;
    raw.set(name, { source: `header ${header}`, value: OPTION_SPECS[name] === "text" ? headerText(single) : single });
  }
  return raw;
}

/** Reads the options; throws MockOptionError naming the header or field that is wrong. */
export function parseMockOptions(headers: Record<string, string | string[] | undefined>, body: unknown): MockOptions {
  const options: MockOptions = { headerDelayMs: 0, ttftMs: 0, tokenDelayMs: 0, gzip: false, keepaliveComments: false, crlf: false, split: false };
  for (const [name, { source, value }] of collect(headers, body)) {
    switch (name) {
      case "flavor": {
        const flavor = String(value).trim().toLowerCase();
        if (!isFlavorName(flavor)) throw new MockOptionError(source, `expected one of ${FLAVOR_NAMES.join(", ")}, got ${JSON.stringify(value)}`);
        options.flavor = flavor;
        break;
      }
      case "header_delay_ms": options.headerDelayMs = parseInteger(source, value, 0, MAX_DELAY_MS); break;
      case "ttft_ms": options.ttftMs = parseInteger(source, value, 0, MAX_DELAY_MS); break;
      case "token_delay_ms": options.tokenDelayMs = parseInteger(source, value, 0, MAX_DELAY_MS); break;
      case "fail_status": options.failStatus = parseInteger(source, value, 400, 599); break;
      case "abort_after_tokens": options.abortAfterTokens = parseInteger(source, value, 0, Number.MAX_SAFE_INTEGER); break;
      case "stall_after_tokens": options.stallAfterTokens = parseInteger(source, value, 0, Number.MAX_SAFE_INTEGER); break;
      case "gzip": options.gzip = parseBoolean(source, value); break;
      case "keepalive_comments": options.keepaliveComments = parseBoolean(source, value); break;
      case "crlf": options.crlf = parseBoolean(source, value); break;
      case "split": options.split = parseBoolean(source, value); break;
      case "text":
        if (typeof value !== "string") throw new MockOptionError(source, "expected a string");
        options.text = value;
        break;
      case "text_b64": {
        if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value.trim())) throw new MockOptionError(source, "expected base64 text");
        options.text = Buffer.from(value.trim(), "base64").toString("utf8");
        break;
      }
      case "created": options.created = parseInteger(source, value, 0, 4_102_444_800); break;
      case "cache_read_input_tokens": options.cacheReadInputTokens = parseInteger(source, value, 0, 100_000_000); break;
      case "template_tokens": options.templateTokens = parseInteger(source, value, 0, 100_000_000); break;
      case "cache_creation_input_tokens": options.cacheCreationInputTokens = parseInteger(source, value, 0, 100_000_000); break;
    }
  }
  return options;
}

/** The options a record shows: only what the request set, by canonical name. */
export function describeOptions(options: MockOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (options.flavor !== undefined) out.flavor = options.flavor;
  if (options.headerDelayMs) out.header_delay_ms = options.headerDelayMs;
  if (options.ttftMs) out.ttft_ms = options.ttftMs;
  if (options.tokenDelayMs) out.token_delay_ms = options.tokenDelayMs;
  if (options.failStatus !== undefined) out.fail_status = options.failStatus;
  if (options.abortAfterTokens !== undefined) out.abort_after_tokens = options.abortAfterTokens;
  if (options.stallAfterTokens !== undefined) out.stall_after_tokens = options.stallAfterTokens;
  if (options.gzip) out.gzip = true;
  if (options.keepaliveComments) out.keepalive_comments = true;
  if (options.crlf) out.crlf = true;
  if (options.split) out.split = true;
  if (options.text !== undefined) out.text = true;
  if (options.created !== undefined) out.created = options.created;
  if (options.cacheReadInputTokens !== undefined) out.cache_read_input_tokens = options.cacheReadInputTokens;
  if (options.templateTokens !== undefined) out.template_tokens = options.templateTokens;
  if (options.cacheCreationInputTokens !== undefined) out.cache_creation_input_tokens = options.cacheCreationInputTokens;
  return out;
}
