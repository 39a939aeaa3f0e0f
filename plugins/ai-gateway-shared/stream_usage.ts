/**
 * The per-response usage reader shared by token-rate-limiting and upstream-disconnect-log: fed
 * the body chunk by chunk, it reports usage, finish reason, termination and generated text.
 * Events are read in place, never copied; only those that may end the stream (a non-null
 * `_reason"`) go through cjson. Memory: one unfinished event, or a JSON body up to maxJsonBytes
 * and past that its last 64 KiB.
 */
import * as cjson from "cjson.safe";
import { newSseReader, type SseReader, type SseSink } from "./sse";
import { Rope } from "./rope";
import { newNdjsonReader, type NdjsonReader, type NdjsonSink } from "./ndjson";
import { asObject } from "./json";
import {
  type Usage, mergeUsage, usageTotal, extractFinishReason, isTerminal, isError, textBytes, normalizeFinishReason,
} from "./usage";
import { Needle } from "./needle";
import {
  hasNonNullKeyIn, hasTrueKeyIn, integerAt, keyIs, lastNumberOfKey, lastObjectOfKey, lastStringOfKey,
  sumStringBytesIn, valueAfterKey, type StringSpans,
} from "./json_text";

const QUOTE = 34;
const COLON = 58;

export type FormatOverride = "auto" | "openai" | "anthropic" | "ollama" | "json";

/** How the body is framed. "none": not something the reader understands (compressed, binary, text). */
export type BodyFraming = "sse" | "ndjson" | "json" | "none";

export type Dialect = "openai" | "anthropic" | "ollama" | "responses" | "unknown";

export interface UsageReport {
  prompt_tokens?: number;
  completion_tokens?: number;
  /** The reported total, or prompt + completion. */
  total_tokens?: number;
  reported: boolean;
  framing: BodyFraming;
  dialect: Dialect;
  /** SSE events dispatched (those with data, [DONE] included), NDJSON lines, or 1 for a decoded JSON body. */
  events: number;
  text_events: number;
  /** SSE comment lines (keep-alives). */
  comments: number;
  /** In OpenAI's words (end_turn → stop, max_tokens → length, tool_use → tool_calls). */
  finish_reason?: string;
  /** The reason as the upstream wrote it. */
  stop_reason?: string;
  /** [DONE], message_stop, done:true, or a JSON body that decoded. */
  terminated: boolean;
  error: boolean;
  /** Generated text for the estimate; for an oversized JSON body without usage, the body's bytes (an upper bound). */
  text_bytes: number;
  bytes: number;
  /** Events or lines dropped for size, or 1 when a JSON body went over its cap. */
  oversized: number;
  /** finish() found an unfinished event, line or JSON body. */
  incomplete: boolean;
}

export interface UsageReaderOptions {
  format?: FormatOverride;
  maxEventBytes?: number;
  maxJsonBytes?: number;
}

export interface UsageReader {
  /** Optional: when the headers and firstBytes do not decide, the first fed bytes do. */
  detect(contentType: string | undefined, firstBytes?: string, contentEncoding?: string): BodyFraming;
  /** Returns how many events or lines the chunk completed. */
  feed(chunk: string): number;
  report(): UsageReport;
  finish(): UsageReport;
  readonly framing: BodyFraming;
  readonly events: number;
  readonly textEvents: number;
  readonly textBytes: number;
  readonly terminated: boolean;
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;
export const JSON_WINDOW_BYTES = 64 * 1024;

/** Undefined when the headers do not say: then the first body bytes decide. A compressed body is "none". */
export function framingFromHeaders(
  override: FormatOverride | undefined,
  contentType: string | undefined,
  contentEncoding?: string,
): BodyFraming | undefined {
  if (contentEncoding !== undefined) {
    const enc = string.lower(contentEncoding);
    if (enc !== "" && enc !== "identity") return "none";
  }
  if (override === "openai" || override === "anthropic") return "sse";
  if (override === "ollama") return "ndjson";
  if (override === "json") return "json";
  if (contentType !== undefined) {
    const ct = string.lower(contentType);
    if (string.find(ct, "text/event-stream", 1, true)[0] !== undefined) return "sse";
    if (string.find(ct, "ndjson", 1, true)[0] !== undefined || string.find(ct, "jsonl", 1, true)[0] !== undefined) return "ndjson";
    if (string.find(ct, "json", 1, true)[0] !== undefined) return "json";
  }
  return undefined;
}

export function detectFraming(
  override: FormatOverride | undefined,
  contentType: string | undefined,
  firstBytes?: string,
  contentEncoding?: string,
): BodyFraming {
  const fromHeaders = framingFromHeaders(override, contentType, contentEncoding);
  if (fromHeaders !== undefined) return fromHeaders;
  if (firstBytes === undefined) return "none";
  return sniffFraming(firstBytes, true) ?? "none";
}

const SSE_FIELDS = ["data:", "event:", "id:", "retry:"];

/** Undefined while the bytes could still become an SSE field (e.g. "da") and `final` is false. */
export function sniffFraming(bytes: string, final: boolean): BodyFraming | undefined {
  // gzip magic 1f 8b
  if (string.byte(bytes, 1) === 0x1f && (bytes.length === 1 || string.byte(bytes, 2) === 0x8b)) {
    return bytes.length === 1 && !final ? undefined : "none";
  }
  const [start] = string.find(bytes, "[^ \t\r\n]");
  if (start === undefined) return final ? "none" : undefined;
  const c = string.byte(bytes, start);
  if (c === 123 /* { */ || c === 91 /* [ */) return "json";
  if (c === 58 /* : */) return "sse";
  const rest = string.sub(bytes, start, start + 5);
  for (const field of SSE_FIELDS) {
    if (string.sub(rest, 1, field.length) === field) return "sse";
    if (!final && rest.length < field.length && string.sub(field, 1, rest.length) === rest) return undefined;
  }
  return "none";
}

/**
 * Keys whose string values are generated text. Only the first is looked up in every event, so the
 * common event costs one search. `content"` also matches vLLM's `reasoning_content`.
 */
const TEXT_KEYS: { [d in Dialect]: Needle[] } = {
  openai: [new Needle('content"'), new Needle('arguments"'), new Needle('reasoning"'), new Needle('text"')],
  anthropic: [new Needle('text"'), new Needle('partial_json"'), new Needle('thinking"')],
  ollama: [new Needle('content"'), new Needle('response"'), new Needle('thinking"')],
  responses: [new Needle('delta"')],
  unknown: [],
};

// Shared by every reader of the worker: a Needle answers correctly for any string.
const REASON_KEY = new Needle('_reason"');
const TOKENS_KEY = new Needle('_tokens"');
const COUNT_KEY = new Needle('_count"');
const DONE_KEY = new Needle('done"');
const MESSAGE_STOP_KEY = new Needle('message_stop"');
const BACKSLASHES = new Needle("\\");

const ANTHROPIC_EVENTS: { [name: string]: boolean } = {
  message_start: true, message_delta: true, message_stop: true,
  content_block_start: true, content_block_delta: true, content_block_stop: true, ping: true,
};

function dialectOf(obj: unknown, eventName: string | undefined): Dialect {
  if (eventName !== undefined && ANTHROPIC_EVENTS[eventName] === true) return "anthropic";
  const o = asObject(obj);
  if (o === undefined) return "unknown";
  if (o.choices !== undefined) return "openai";
  const t = o.type;
  if (typeof t === "string") {
    if (string.find(t, "^response%.")[0] !== undefined) return "responses";
    if (ANTHROPIC_EVENTS[t] === true || t === "message") return "anthropic";
  }
  if (o.done !== undefined || o.eval_count !== undefined || asObject(o.message) !== undefined) return "ollama";
  return "unknown";
}

function isDone(s: string, a: number, b: number): boolean {
  if (b - a !== 5) return false;
  const [c1, c2, c3, c4, c5, c6] = string.byte(s, a, b);
  return c1 === 91 && c2 === 68 && c3 === 79 && c4 === 78 && c5 === 69 && c6 === 93;
}

/** Streamed counts are cumulative. */
function larger(kept: number | undefined, seen: number | undefined): number | undefined {
  if (seen === undefined) return kept;
  return kept === undefined || seen > kept ? seen : kept;
}

class Reader implements UsageReader, SseSink, NdjsonSink {
  framing: BodyFraming = "none";
  events = 0;
  textEvents = 0;
  textBytes = 0;
  terminated = false;
  bufferedBytes = 0;

  private readonly override: FormatOverride;
  private readonly maxEventBytes: number | undefined;
  private readonly maxJsonBytes: number;
  private detected = false;
  private sniffed = "";
  private dialect: Dialect = "unknown";
  private textKeys: Needle[] = [];
  /** The chunk's last event that carried usage counts alone: s[a..b]. */
  private countsS: string | undefined = undefined;
  private countsA = 0;
  private countsB = 0;
  /** Layout of the last single-text event: its value's opening quote from the start (0: none yet), closing quote from the end. */
  private valueOffset = 0;
  private valueTail = 0;
  private readonly spans: StringSpans = { count: 0, open: 0, close: 0 };
  private usage: Usage = {};
  private reported = false;
  private finishReason: string | undefined = undefined;
  private error = false;
  private bytes = 0;
  private oversizedJson = 0;
  private incomplete = false;
  private finished = false;

  private sse: SseReader | undefined = undefined;
  private ndjson: NdjsonReader | undefined = undefined;

  private readonly json = new Rope();
  private jsonWindowed = false;

  constructor(opts: UsageReaderOptions) {
    this.override = opts.format || "auto";
    this.maxEventBytes = opts.maxEventBytes;
    this.maxJsonBytes = opts.maxJsonBytes || DEFAULT_MAX_JSON_BYTES;
    if (this.override === "openai" || this.override === "anthropic" || this.override === "ollama") {
      this.setDialect(this.override);
    }
  }

  detect(contentType: string | undefined, firstBytes?: string, contentEncoding?: string): BodyFraming {
    const fromHeaders = framingFromHeaders(this.override, contentType, contentEncoding);
    if (fromHeaders !== undefined) this.setFraming(fromHeaders);
    else if (firstBytes !== undefined && firstBytes !== "") {
      const sniffed = sniffFraming(firstBytes, false);
      if (sniffed !== undefined) this.setFraming(sniffed);
    }
    return this.framing;
  }

  feed(chunk: string): number {
    if (chunk.length === 0 || this.finished) return 0;
    if (!this.detected) {
      const head = this.sniffed + chunk;
      const framing = framingFromHeaders(this.override, undefined) || sniffFraming(head, head.length > 256);
      if (framing === undefined) {
        this.sniffed = head;
        this.bytes += chunk.length;
        return 0;
      }
      this.sniffed = "";
      this.bytes -= head.length - chunk.length;
      this.setFraming(framing);
      chunk = head;
    }
    this.bytes += chunk.length;
    // Searched once per chunk first, so every event finds its answer cached and takes the same JIT trace.
    REASON_KEY.next(chunk, 1);
    TOKENS_KEY.next(chunk, 1);
    BACKSLASHES.next(chunk, 1);
    const keys = this.textKeys;
    if (keys.length > 0) keys[0].next(chunk, 1);
    const sse = this.sse;
    if (sse !== undefined) {
      const completed = sse.read(chunk, this);
      if (this.countsS !== undefined) this.readLastCounts();
      this.bufferedBytes = sse.bufferedBytes;
      return completed;
    }
    const nd = this.ndjson;
    if (nd !== undefined) {
      const completed = nd.read(chunk, this);
      if (this.countsS !== undefined) this.readLastCounts();
      this.bufferedBytes = nd.bufferedBytes;
      return completed;
    }
    if (this.framing === "json") this.keepJson(chunk);
    return 0;
  }

  report(): UsageReport {
    const u = this.usage;
    return {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: usageTotal(u),
      reported: this.reported,
      framing: this.framing,
      dialect: this.dialect,
      events: this.events,
      text_events: this.textEvents,
      comments: this.sse !== undefined ? this.sse.comments : 0,
      finish_reason: this.finishReason === undefined ? undefined : normalizeFinishReason(this.finishReason),
      stop_reason: this.finishReason,
      terminated: this.terminated,
      error: this.error,
      text_bytes: this.textBytes,
      bytes: this.bytes,
      oversized: this.oversizedJson + (this.sse !== undefined ? this.sse.oversized : 0)
        + (this.ndjson !== undefined ? this.ndjson.oversized : 0),
      incomplete: this.incomplete,
    };
  }

  finish(): UsageReport {
    if (!this.finished) {
      if (!this.detected && this.sniffed !== "") {
        const held = this.sniffed;
        this.sniffed = "";
        this.bytes -= held.length;
        this.setFraming(sniffFraming(held, true) ?? "none");
        this.feed(held);
      }
      this.finished = true;
      if (this.sse !== undefined) {
        if (this.sse.finish(this)) this.incomplete = true;
      } else if (this.ndjson !== undefined) {
        this.ndjson.finish(this);
      } else if (this.framing === "json") {
        this.finishJson();
      }
      if (this.countsS !== undefined) this.readLastCounts();
      this.bufferedBytes = 0;
    }
    return this.report();
  }

  sseEvent(s: string, a: number, b: number, name: string | undefined): void {
    this.events += 1;
    if (isDone(s, a, b)) {
      this.terminated = true;
      return;
    }
    if (name !== undefined) {
      if (name === "message_stop") this.terminated = true;
      else if (name === "error") this.error = true;
    }
    this.jsonEvent(s, a, b, name);
  }

  jsonLine(s: string, a: number, b: number): void {
    this.events += 1;
    this.jsonEvent(s, a, b, undefined);
  }

  private setFraming(framing: BodyFraming): void {
    this.detected = true;
    this.framing = framing;
    if (framing === "sse" && this.sse === undefined) this.sse = newSseReader({ maxEventBytes: this.maxEventBytes });
    if (framing === "ndjson" && this.ndjson === undefined) {
      this.ndjson = newNdjsonReader({ maxLineBytes: this.maxEventBytes });
      if (this.dialect === "unknown") this.setDialect("ollama");
    }
  }

  private setDialect(d: Dialect): void {
    this.dialect = d;
    this.textKeys = TEXT_KEYS[d];
  }

  private applyObject(obj: unknown): void {
    if (mergeUsage(this.usage, obj)) this.reported = true;
    const reason = extractFinishReason(obj);
    if (reason !== undefined) this.finishReason = reason;
    if (isTerminal(obj)) this.terminated = true;
    if (isError(obj)) this.error = true;
  }

  private addText(bytes: number): void {
    if (bytes > 0) {
      this.textBytes += bytes;
      this.textEvents += 1;
    }
  }

  /** Most events carry only text and are measured in place; only those that may end the stream are decoded. */
  private jsonEvent(s: string, a: number, b: number, name: string | undefined): void {
    if (this.dialect === "unknown") {
      this.decodeEvent(s, a, b, name);
      return;
    }
    if (this.mayEnd(s, a, b)) {
      if (this.decodeEvent(s, a, b, undefined)) return;
    } else if (hasNonNullKeyIn(s, a, b, TOKENS_KEY)) {
      // Usage alone (vLLM puts it in every chunk): counts are cumulative, so only the chunk's last is read.
      this.countsS = s;
      this.countsA = a;
      this.countsB = b;
      return;
    }
    // Anthropic text only travels in content_block_delta events.
    if (this.dialect === "anthropic" && name !== undefined && name !== "content_block_delta") return;
    this.addText(this.textOf(s, a, b));
  }

  /**
   * A stream's text events differ only in their text: an event laid out like the last measured
   * one (value at the same offset, closing quote as far from the end) is measured by position alone.
   */
  private textOf(s: string, a: number, b: number): number {
    const offset = this.valueOffset;
    if (offset > 0) {
      const open = a + offset;
      const close = b - this.valueTail;
      if (close > open && string.byte(s, open) === QUOTE && string.byte(s, open - 1) === COLON && string.byte(s, close) === QUOTE) {
        const [quote] = string.find(s, '"', open + 1, true);
        if (quote === close) return close - open - 1;
      }
    }
    const spans = this.spans;
    const bytes = this.measureText(s, a, b, spans);
    if (spans.count === 1) {
      this.valueOffset = spans.open - a;
      this.valueTail = b - spans.close;
    }
    return bytes;
  }

  private measureText(s: string, a: number, b: number, spans: StringSpans): number {
    spans.count = 0;
    const keys = this.textKeys;
    if (keys.length === 0) return 0;
    let bytes = sumStringBytesIn(s, a, b, keys[0], BACKSLASHES, spans);
    if (bytes <= 0) {
      for (let i = 1; i < keys.length; i++) {
        const more = sumStringBytesIn(s, a, b, keys[i], BACKSLASHES, spans);
        if (more > 0) bytes = (bytes > 0 ? bytes : 0) + more;
      }
      // Values of several keys: no single layout to learn.
      if (bytes > 0) spans.count = 2;
    }
    return bytes;
  }

  private readLastCounts(): void {
    const s = this.countsS as string;
    this.countsS = undefined;
    if (this.readCounts(s, this.countsA, this.countsB) === undefined) this.decodeEvent(s, this.countsA, this.countsB, undefined);
  }

  /** False when it is not JSON. */
  private decodeEvent(s: string, a: number, b: number, name: string | undefined): boolean {
    const [obj] = cjson.decode(a === 1 && b === s.length ? s : string.sub(s, a, b));
    if (obj === undefined) return false;
    if (this.dialect === "unknown") {
      const d = dialectOf(obj, name);
      if (d !== "unknown") this.setDialect(d);
    }
    this.applyObject(obj);
    this.addText(textBytes(obj));
    return true;
  }

  /** False when there was no count; undefined when one is not a plain integer (the caller then decodes). */
  private readCounts(s: string, a: number, b: number): boolean | undefined {
    let prompt: number | undefined;
    let completion: number | undefined;
    let total: number | undefined;
    let input: number | undefined;
    let output: number | undefined;
    let cacheCreation: number | undefined;
    let cacheRead: number | undefined;
    const key = TOKENS_KEY;
    let from = a;
    for (;;) {
      const p = key.next(s, from);
      if (p > b) break;
      const pe = p + key.length - 1;
      from = pe + 1;
      const v = valueAfterKey(s, pe);
      if (v === undefined || string.byte(s, v) === 110 /* null */) continue;
      const n = integerAt(s, v);
      if (keyIs(s, p, "completion")) completion = n;
      else if (keyIs(s, p, "prompt")) prompt = n;
      else if (keyIs(s, p, "total")) total = n;
      else if (keyIs(s, p, "output")) output = n;
      else if (keyIs(s, p, "input")) input = n;
      else if (keyIs(s, p, "cache_creation_input")) cacheCreation = n;
      else if (keyIs(s, p, "cache_read_input")) cacheRead = n;
      else continue;
      if (n === undefined) return undefined;
    }
    // As usage.usageFromObject: Anthropic's cached prompt tokens are prompt tokens.
    if (prompt === undefined && input !== undefined) prompt = input + (cacheCreation ?? 0) + (cacheRead ?? 0);
    if (completion === undefined) completion = output;
    if (prompt === undefined && completion === undefined && total === undefined) return false;
    const u = this.usage;
    u.prompt_tokens = larger(u.prompt_tokens, prompt);
    u.completion_tokens = larger(u.completion_tokens, completion);
    u.total_tokens = larger(u.total_tokens, total);
    this.reported = true;
    return true;
  }

  /** No false negatives: finish reason, terminator, error, or Ollama's counts. */
  private mayEnd(s: string, a: number, b: number): boolean {
    if (hasNonNullKeyIn(s, a, b, REASON_KEY)) return true;
    // Error events ({"error": ...}, vLLM's {"object": "error", ...}) say so in their first key.
    const [c1, , c3] = string.byte(s, a, a + 2);
    if (c3 === 101 /* e */ || c3 === 111 /* o */ || c1 !== 123 /* { */) {
      const [err] = string.find(s, "^%s*{%s*\"error\"", a);
      if (err !== undefined) return true;
      const [obj] = string.find(s, "^%s*{%s*\"object\"%s*:%s*\"error\"", a);
      if (obj !== undefined) return true;
    }
    if (this.framing === "ndjson") {
      if (hasNonNullKeyIn(s, a, b, COUNT_KEY)) return true;
      if (hasTrueKeyIn(s, a, b, DONE_KEY)) return true;
    } else if (this.dialect !== "openai") {
      // Anthropic message_stop without an event: line; Responses API ends.
      if (MESSAGE_STOP_KEY.next(s, a) <= b) return true;
      if (this.dialect === "responses") {
        const data = string.sub(s, a, b);
        if (string.find(data, '"response.completed"', 1, true)[0] !== undefined
          || string.find(data, '"response.incomplete"', 1, true)[0] !== undefined
          || string.find(data, '"response.failed"', 1, true)[0] !== undefined) return true;
      }
    }
    return false;
  }

  private keepJson(chunk: string): void {
    const json = this.json;
    json.push(chunk);
    if (!this.jsonWindowed && json.bytes > this.maxJsonBytes) {
      this.jsonWindowed = true;
      this.oversizedJson = 1;
    }
    // Cutting only when it doubles keeps the cost linear.
    if (this.jsonWindowed && json.bytes > 2 * JSON_WINDOW_BYTES) json.keepLast(JSON_WINDOW_BYTES);
    this.bufferedBytes = json.bytes;
  }

  private finishJson(): void {
    const body = this.json.take();
    if (body === "") return;
    if (!this.jsonWindowed) {
      const [obj] = cjson.decode(body);
      if (obj !== undefined) {
        this.events += 1;
        if (this.dialect === "unknown") {
          const d = dialectOf(obj, undefined);
          if (d !== "unknown") this.setDialect(d);
        }
        this.applyObject(obj);
        this.addText(textBytes(obj));
        this.terminated = true;
        return;
      }
      // NDJSON sent as application/json (some Ollama proxies), or a truncated body.
      const [firstEnd] = string.find(body, "\n", 1, true);
      const [first] = firstEnd === undefined ? [undefined] : cjson.decode(string.sub(body, 1, firstEnd - 1));
      if (asObject(first) === undefined || string.find(body, "[^%s]", firstEnd)[0] === undefined) {
        this.incomplete = true;
        return;
      }
      this.setFraming("ndjson");
      const nd = this.ndjson as NdjsonReader;
      nd.read(body, this);
      nd.finish(this);
      return;
    }
    this.readJsonWindow(body);
  }

  private readJsonWindow(tail: string): void {
    const usageText = lastObjectOfKey(tail, "usage");
    if (usageText !== undefined) {
      const [u] = cjson.decode(usageText);
      if (u !== undefined && mergeUsage(this.usage, { usage: u })) this.reported = true;
    }
    if (!this.reported) {
      const prompt = lastNumberOfKey(tail, "prompt_eval_count");
      const completion = lastNumberOfKey(tail, "eval_count");
      if (mergeUsage(this.usage, { prompt_eval_count: prompt, eval_count: completion })) this.reported = true;
    }
    // Without usage every body byte counts: an oversized answer is never free.
    if (!this.reported) this.textBytes = this.bytes;
    const reason = lastStringOfKey(tail, "finish_reason") || lastStringOfKey(tail, "stop_reason") || lastStringOfKey(tail, "done_reason");
    if (reason !== undefined) this.finishReason = reason;
    this.events += 1;
    this.terminated = string.find(tail, "[}%]]%s*$")[0] !== undefined;
    if (!this.terminated) this.incomplete = true;
  }
}

export function newUsageReader(opts?: UsageReaderOptions | FormatOverride): UsageReader {
  if (opts === undefined) return new Reader({});
  if (typeof opts === "string") return new Reader({ format: opts });
  return new Reader(opts);
}
