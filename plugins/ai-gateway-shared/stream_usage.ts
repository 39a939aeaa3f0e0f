/**
 * The per-response usage reader that token-rate-limiting and upstream-disconnect-log share.
 *
 * Feed it the response body chunk by chunk (body_filter); it never changes or keeps the bytes
 * beyond the unfinished event. It recognises the format from the response itself (content type,
 * first bytes, event names, JSON shape) unless configured, and reports the usage the upstream
 * sent, the finish reason, whether the stream reached its terminator, and how much text was
 * generated (for the estimate when no usage arrives).
 *
 * Speed: the LLM stream is read where it lies. Events reach the reader as ranges of the body
 * chunk (sse.ts, ndjson.ts), never copied; a plain search for a non-null `_reason"`
 * (finish_reason, stop_reason, done_reason) picks the few events that may end the stream, and
 * only those go through cjson. Usage counts (`"..._tokens": N`, in every chunk with vLLM's
 * continuous_usage_stats) are read in place, and generated text is measured on the JSON text
 * of the event, so text that merely mentions "usage" never counts. Each key is searched for once
 * per occurrence in a chunk (json_text.Needle), whatever the number of events.
 *
 * Memory: one unfinished SSE event or NDJSON line (capped, default 1 MiB), or a JSON body up to
 * `maxJsonBytes` (default 1 MiB); past that cap only the last 64 KiB of the body are kept and
 * the usage is read from there.
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

/** What the configuration says the upstream speaks ("auto": recognise it from the response). */
export type FormatOverride = "auto" | "openai" | "anthropic" | "ollama" | "json";

/** How the body is framed. "none": not something the reader understands (compressed, binary, text). */
export type BodyFraming = "sse" | "ndjson" | "json" | "none";

/** Which API's events: decides where generated text and terminators are. */
export type Dialect = "openai" | "anthropic" | "ollama" | "responses" | "unknown";

export interface UsageReport {
  /** Usage reported by the upstream (undefined when it reported none). */
  prompt_tokens?: number;
  completion_tokens?: number;
  /** The reported total, or prompt + completion when only those were reported. */
  total_tokens?: number;
  /** The upstream reported usage (at least one count). */
  reported: boolean;
  framing: BodyFraming;
  dialect: Dialect;
  /** SSE events dispatched (those with data, [DONE] included), NDJSON lines, or 1 for a decoded JSON body. */
  events: number;
  /** Events that carried generated text. */
  text_events: number;
  /** SSE comment lines (keep-alives). */
  comments: number;
  /** The last finish reason seen, in OpenAI's words (Anthropic end_turn → stop, max_tokens → length, tool_use → tool_calls). */
  finish_reason?: string;
  /** The same reason as the upstream wrote it (end_turn, max_tokens, stop, length, ...). */
  stop_reason?: string;
  /** The stream reached its terminator: [DONE], message_stop, done:true, or a JSON body that decoded. */
  terminated: boolean;
  /** An error event or error body was seen. */
  error: boolean;
  /**
   * Bytes of generated text (content, reasoning, tool-call arguments), for the estimate: each
   * text event's bytes beyond its envelope (estimate.ts). For a JSON body over maxJsonBytes
   * without usage: the body's byte count (an upper bound).
   */
  text_bytes: number;
  /** Body bytes fed. */
  bytes: number;
  /** Events or lines dropped for size, or 1 when a JSON body went over its cap. */
  oversized: number;
  /** finish() found an unfinished event, line or JSON body. */
  incomplete: boolean;
}

export interface UsageReaderOptions {
  format?: FormatOverride;
  /** Largest SSE event / NDJSON line kept, in bytes (default 1 MiB). */
  maxEventBytes?: number;
  /** Largest JSON body decoded whole, in bytes (default 1 MiB). */
  maxJsonBytes?: number;
}

export interface UsageReader {
  /**
   * Sets the framing from the response's Content-Type (and Content-Encoding: anything but
   * identity means "none") or, when they say nothing, from `firstBytes`. Optional: when neither
   * decides, the first fed bytes do. Returns the framing ("none" while undecided).
   */
  detect(contentType: string | undefined, firstBytes?: string, contentEncoding?: string): BodyFraming;
  /** Reads the next body chunk; returns how many events (SSE events / NDJSON lines) it completed. */
  feed(chunk: string): number;
  /** The counts so far, without ending the stream. */
  report(): UsageReport;
  /** End of the body: decodes a JSON body, flushes the last line; returns the final report. */
  finish(): UsageReport;
  readonly framing: BodyFraming;
  readonly events: number;
  readonly textEvents: number;
  readonly textBytes: number;
  readonly terminated: boolean;
  /** Bytes the reader holds right now (unfinished event, JSON body). */
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;
/** Bytes kept from the end of a JSON body larger than maxJsonBytes. */
export const JSON_WINDOW_BYTES = 64 * 1024;

/**
 * Framing from the configuration and the response headers, or undefined when they do not say
 * (no or an unknown content type): then the first body bytes decide. A Content-Encoding other
 * than identity means "none" (a gzip body cannot be read; ask the upstream for identity).
 */
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

/** Framing from the headers, else from the first bytes (as they are: no waiting for more). */
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

/**
 * Framing from the first bytes of a body: `{` or `[` → json, an SSE field or comment → sse, gzip
 * magic or anything else → none. Undefined when the bytes are a prefix that could still become
 * an SSE field (e.g. "da") and `final` is false: the caller waits for more.
 */
export function sniffFraming(bytes: string, final: boolean): BodyFraming | undefined {
  // A gzip body (magic 1f 8b) cannot be read here: the plugin asks the upstream for identity.
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
 * Keys whose string values are generated text, per dialect (see json_text.sumStringBytesIn):
 * the first is looked up in every event, the others only when it gave no text, so that the
 * common event costs one search. `content"` also matches vLLM's `reasoning_content`; `text"` is
 * the legacy completions API.
 */
const TEXT_KEYS: { [d in Dialect]: Needle[] } = {
  openai: [new Needle('content"'), new Needle('arguments"'), new Needle('reasoning"'), new Needle('text"')],
  anthropic: [new Needle('text"'), new Needle('partial_json"'), new Needle('thinking"')],
  ollama: [new Needle('content"'), new Needle('response"'), new Needle('thinking"')],
  responses: [new Needle('delta"')],
  unknown: [],
};

// The other keys an event is examined for. Needles are shared by every reader of the worker:
// each remembers one string and position, and answers correctly for any other (json_text.ts).
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

/** True when s[a..b] is exactly `[DONE]` (OpenAI's terminator, not JSON). */
function isDone(s: string, a: number, b: number): boolean {
  if (b - a !== 5) return false;
  const [c1, c2, c3, c4, c5, c6] = string.byte(s, a, b);
  return c1 === 91 && c2 === 68 && c3 === 79 && c4 === 78 && c5 === 69 && c6 === 93;
}

/** Undefined, or a count at least as large as the one kept (streamed counts are cumulative). */
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
  /** First bytes held while they cannot tell the framing yet (at most a few bytes). */
  private sniffed = "";
  private dialect: Dialect = "unknown";
  private textKeys: Needle[] = [];
  /** The last event of the chunk being read that carried usage counts alone: s[a..b]. */
  private countsS: string | undefined = undefined;
  private countsA = 0;
  private countsB = 0;
  /**
   * The layout of the last event measured key by key that had one text value: where its value's
   * opening quote is (from the event's start; 0 until one was seen), and how far its closing
   * quote is from the event's end.
   */
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

  /** The JSON body (up to maxJsonBytes), then its last JSON_WINDOW_BYTES or more. */
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
    // Otherwise the first fed chunks decide.
    return this.framing;
  }

  feed(chunk: string): number {
    if (chunk.length === 0 || this.finished) return 0;
    if (!this.detected) {
      // No content type: the first bytes decide, once there are enough of them.
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
    // The keys every event is examined for are looked for here first: each event of the chunk
    // then finds its answer waiting, and all take the same path through the JIT trace.
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

  /** One SSE event, its data in s[a..b]. */
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

  /** One NDJSON line, in s[a..b]. */
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

  /** Applies a decoded event or body: usage, finish reason, terminator, error. */
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

  /**
   * One JSON event (an SSE event's data or an NDJSON line) in s[a..b]. Most events carry only
   * text: they are read where they lie, without a copy or a decode, and their text is measured by
   * their size. Only an event that may end the stream, or whose usage is not a flat object of
   * counts, is decoded.
   */
  private jsonEvent(s: string, a: number, b: number, name: string | undefined): void {
    if (this.dialect === "unknown") {
      // The first JSON event tells the dialect; it is decoded whole once.
      this.decodeEvent(s, a, b, name);
      return;
    }
    if (this.mayEnd(s, a, b)) {
      if (this.decodeEvent(s, a, b, undefined)) return;
    } else if (hasNonNullKeyIn(s, a, b, TOKENS_KEY)) {
      // Usage alone (vLLM continuous_usage_stats puts it in every chunk, Anthropic in
      // message_start). Its counts are cumulative, so only the last such event of a chunk is
      // read (at the chunk's end), and its text needs no measure: the count covers it.
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
   * Bytes of generated text in the event s[a..b]. An LLM stream's text events differ only in
   * their text: once one event with a single text value was measured, a later event whose value
   * opens at the same offset (after `":`) and closes, at its first quote, as far from the end
   * is measured by those positions alone. Any other event is measured key by key, and teaches
   * its layout to the next ones.
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

  /** Bytes of the text values in s[a..b] (the dialect's text keys), found key by key. */
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

  /** Reads the counts of the last usage event held back; decodes it when they are not plain. */
  private readLastCounts(): void {
    const s = this.countsS as string;
    this.countsS = undefined;
    if (this.readCounts(s, this.countsA, this.countsB) === undefined) this.decodeEvent(s, this.countsA, this.countsB, undefined);
  }

  /** Decodes the event in s[a..b] and applies it; false when it is not JSON. */
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

  /**
   * The usage counts of s[a..b] read in place: every `"<kind>_tokens": N` key of the OpenAI and
   * Anthropic usage shapes (nested details such as cached_tokens are other keys and ignored).
   * False when there was none; undefined when a count is not a plain integer (then the caller
   * decodes the event).
   */
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
    // The same reading as usage.usageFromObject: Anthropic's cached prompt tokens are prompt tokens.
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

  /**
   * Cheap test, no false negatives: may the event in s[a..b] carry a finish reason, the end of
   * the stream, an error, or usage in a form other than a `usage` object (Ollama's counts)?
   */
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
      // Terminators in JSON: Anthropic message_stop without an event: line, Responses API ends.
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
    // Keep only the tail; cutting when it doubles keeps the cost linear.
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
      // Not one JSON document: NDJSON sent as application/json (some Ollama proxies) when its
      // first line is an object and more lines follow; otherwise a truncated or invalid body.
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

  /** A body too large to decode: usage, counts and finish reason from its last bytes. */
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
    // Its text cannot be measured any more: without usage, every body byte counts as a
    // character (an upper bound, so that an oversized answer is never counted as free).
    if (!this.reported) this.textBytes = this.bytes;
    const reason = lastStringOfKey(tail, "finish_reason") || lastStringOfKey(tail, "stop_reason") || lastStringOfKey(tail, "done_reason");
    if (reason !== undefined) this.finishReason = reason;
    this.events += 1;
    this.terminated = string.find(tail, "[}%]]%s*$")[0] !== undefined;
    if (!this.terminated) this.incomplete = true;
  }
}

/** A new reader for one response body. */
export function newUsageReader(opts?: UsageReaderOptions | FormatOverride): UsageReader {
  if (opts === undefined) return new Reader({});
  if (typeof opts === "string") return new Reader({ format: opts });
  return new Reader(opts);
}
