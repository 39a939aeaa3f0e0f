/**
 * The per-response usage reader that token-rate-limiting and upstream-disconnect-log share.
 *
 * Feed it the response body chunk by chunk (body_filter); it never changes or keeps the bytes
 * beyond the unfinished event. It recognises the format from the response itself (content type,
 * first bytes, event names, JSON shape) unless configured, and reports the usage the upstream
 * sent, the finish reason, whether the stream reached its terminator, and how much text was
 * generated (for the estimate when no usage arrives).
 *
 * Speed: stream events are not decoded one by one. A plain search for `_tokens"` (every usage
 * key: prompt_tokens, completion_tokens, input_tokens, output_tokens, ...) or for a non-null
 * `_reason"` (finish_reason, stop_reason, done_reason) picks the few events that may carry usage
 * or the end; only those go through cjson, so text that merely mentions "usage" costs one decode
 * at worst and never counts. Generated text is measured on the JSON text of the event.
 *
 * Memory: one unfinished SSE event or NDJSON line (capped, default 1 MiB), or a JSON body up to
 * `maxJsonBytes` (default 1 MiB); past that cap only the last 64 KiB of the body are kept and
 * the usage is read from there.
 */
import * as cjson from "cjson.safe";
import { newSseReader, SseReader, SseEventHandler } from "./sse";
import { Pieces } from "./pieces";
import { newNdjsonReader, NdjsonReader, NdjsonLineHandler } from "./ndjson";
import {
  Usage, asObject, mergeUsage, usageTotal, extractFinishReason, isTerminal, isError, contentChars, normalizeFinishReason,
} from "./usage";
import { hasNonNullKey, sumStringValues, lastObjectOfKey, lastNumberOfKey, lastStringOfKey, valueAfterKey } from "./json_text";

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
  data_events: number;
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
   * UTF-8 characters of generated text (content, reasoning, tool-call arguments). For a JSON body
   * over maxJsonBytes without usage: its byte count (an upper bound).
   */
  content_chars: number;
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
  readonly data_events: number;
  readonly content_chars: number;
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
  return sniffFraming(firstBytes, true) as BodyFraming;
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
 * Keys whose string values are generated text, per dialect (see json_text.sumStringValues):
 * the first is looked up in every event, the others only when it gave no text, so that the
 * common event costs one search. `content"` also matches vLLM's `reasoning_content`; `text"` is
 * the legacy completions API.
 */
const TEXT_KEYS: { [d in Dialect]: string[] } = {
  openai: ['content"', 'arguments"', 'reasoning"', 'text"'],
  anthropic: ['text"', 'partial_json"', 'thinking"'],
  ollama: ['content"', 'response"', 'thinking"'],
  responses: ['delta"'],
  unknown: [],
};

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
  if (type(t) === "string") {
    const ts = t as string;
    if (string.find(ts, "^response%.")[0] !== undefined) return "responses";
    if (ANTHROPIC_EVENTS[ts] === true || ts === "message") return "anthropic";
  }
  if (o.done !== undefined || o.eval_count !== undefined || asObject(o.message) !== undefined) return "ollama";
  return "unknown";
}

/** True when data has the key `"name"` with the value true. */
function hasTrueKey(data: string, name: string): boolean {
  const suffix = name + '"';
  let init = 1;
  for (;;) {
    const [p, pe] = string.find(data, suffix, init, true);
    if (p === undefined) return false;
    if (string.byte(data, p - 1) === 34 /* " */) {
      const v = valueAfterKey(data, pe);
      if (v !== undefined && string.byte(data, v) === 116 /* t */) return true;
    }
    init = pe + 1;
  }
}

class Reader implements UsageReader {
  framing: BodyFraming = "none";
  events = 0;
  data_events = 0;
  content_chars = 0;
  terminated = false;
  bufferedBytes = 0;

  private readonly override: FormatOverride;
  private readonly maxEventBytes: number | undefined;
  private readonly maxJsonBytes: number;
  private detected = false;
  /** First bytes held while they cannot tell the framing yet (at most a few bytes). */
  private sniffed = "";
  private dialect: Dialect = "unknown";
  private textKeys: string[] = [];
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
  // Made on first use: creating a closure stops LuaJIT's compiler, and a plain JSON body
  // (the common small answer) never needs them.
  private sseHandler: SseEventHandler | undefined = undefined;
  private lineHandler: NdjsonLineHandler | undefined = undefined;

  /** The JSON body (up to maxJsonBytes), then its last JSON_WINDOW_BYTES or more. */
  private readonly json = new Pieces();
  private jsonWindowed = false;

  constructor(opts: UsageReaderOptions) {
    this.override = opts.format || "auto";
    this.maxEventBytes = opts.maxEventBytes;
    this.maxJsonBytes = opts.maxJsonBytes || DEFAULT_MAX_JSON_BYTES;
    if (this.override === "openai" || this.override === "anthropic" || this.override === "ollama") {
      this.setDialect(this.override);
    }
  }

  private onSse(): SseEventHandler {
    let handler = this.sseHandler;
    if (handler === undefined) {
      handler = (data, name) => this.sseEvent(data, name);
      this.sseHandler = handler;
    }
    return handler;
  }

  private onLine(): NdjsonLineHandler {
    let handler = this.lineHandler;
    if (handler === undefined) {
      handler = (line) => this.jsonEvent(line, undefined);
      this.lineHandler = handler;
    }
    return handler;
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
    const n = chunk.length;
    this.bytes += n;
    const framing = this.framing;
    if (framing === "sse") {
      const sse = this.sse as SseReader;
      const completed = sse.feed(chunk, this.onSse());
      this.bufferedBytes = sse.bufferedBytes;
      return completed;
    }
    if (framing === "ndjson") {
      const nd = this.ndjson as NdjsonReader;
      const completed = nd.feed(chunk, this.onLine());
      this.bufferedBytes = nd.bufferedBytes;
      return completed;
    }
    if (framing === "json") this.keepJson(chunk);
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
      data_events: this.data_events,
      comments: this.sse !== undefined ? this.sse.comments : 0,
      finish_reason: this.finishReason === undefined ? undefined : normalizeFinishReason(this.finishReason),
      stop_reason: this.finishReason,
      terminated: this.terminated,
      error: this.error,
      content_chars: this.content_chars,
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
        this.setFraming(sniffFraming(held, true) as BodyFraming);
        this.feed(held);
      }
      this.finished = true;
      if (this.sse !== undefined) {
        if (this.sse.finish(this.onSse())) this.incomplete = true;
      } else if (this.ndjson !== undefined) {
        this.ndjson.finish(this.onLine());
      } else if (this.framing === "json") {
        this.finishJson();
      }
      this.bufferedBytes = 0;
    }
    return this.report();
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

  private addText(chars: number): void {
    if (chars > 0) {
      this.content_chars += chars;
      this.data_events += 1;
    }
  }

  private sseEvent(data: string, name: string | undefined): void {
    this.events += 1;
    if (data === "[DONE]") {
      this.terminated = true;
      return;
    }
    if (name !== undefined) {
      if (name === "message_stop") this.terminated = true;
      else if (name === "error") this.error = true;
    }
    this.jsonEvent(data, name);
  }

  /** One JSON event: an SSE event's data or an NDJSON line. */
  private jsonEvent(data: string, name: string | undefined): void {
    if (this.framing === "ndjson") this.events += 1;
    if (this.dialect === "unknown") {
      // The first JSON event tells the dialect; it is decoded whole once.
      const [obj] = cjson.decode(data);
      const d = dialectOf(obj, name);
      if (d !== "unknown") this.setDialect(d);
      this.applyObject(obj);
      this.addText(contentChars(obj));
      return;
    }
    if (this.mayEnd(data)) {
      if (this.decodeEvent(data)) return;
    } else if (hasNonNullKey(data, '_tokens"')) {
      // Usage alone (vLLM continuous_usage_stats puts it in every chunk, Anthropic in
      // message_start): decode just the usage object, not the whole event.
      const usageText = lastObjectOfKey(data, "usage");
      const [u] = usageText === undefined ? [undefined] : cjson.decode(usageText);
      if (u !== undefined && mergeUsage(this.usage, { usage: u })) this.reported = true;
      else if (this.decodeEvent(data)) return;
    }
    // Anthropic text only travels in content_block_delta events.
    if (this.dialect === "anthropic" && name !== undefined && name !== "content_block_delta") return;
    const keys = this.textKeys;
    if (keys.length === 0) return;
    let chars = sumStringValues(data, keys[0]);
    if (chars <= 0) {
      for (let i = 1; i < keys.length; i++) {
        const more = sumStringValues(data, keys[i]);
        if (more > 0) chars = (chars > 0 ? chars : 0) + more;
      }
    }
    this.addText(chars);
  }

  /** Decodes a whole event and applies it; false when it is not JSON. */
  private decodeEvent(data: string): boolean {
    const [obj] = cjson.decode(data);
    if (obj === undefined) return false;
    this.applyObject(obj);
    this.addText(contentChars(obj));
    return true;
  }

  /**
   * Cheap test, no false negatives: may this event carry a finish reason, the end of the stream,
   * an error, or usage in a form other than a `usage` object (Ollama's counts)?
   */
  private mayEnd(data: string): boolean {
    if (hasNonNullKey(data, '_reason"')) return true;
    // Error events ({"error": ...}, vLLM's {"object": "error", ...}) say so in their first key.
    if (string.byte(data, 3) === 101 /* e */ || string.byte(data, 3) === 111 /* o */ || string.byte(data, 1) !== 123 /* { */) {
      if (string.find(data, "^%s*{%s*\"error\"")[0] !== undefined) return true;
      if (string.find(data, "^%s*{%s*\"object\"%s*:%s*\"error\"")[0] !== undefined) return true;
    }
    if (this.framing === "ndjson") {
      if (hasNonNullKey(data, '_count"')) return true;
      if (hasTrueKey(data, "done")) return true;
    } else if (this.dialect !== "openai") {
      // Terminators in JSON: Anthropic message_stop without an event: line, Responses API ends.
      if (string.find(data, 'message_stop"', 1, true)[0] !== undefined) return true;
      if (this.dialect === "responses" && (string.find(data, '"response.completed"', 1, true)[0] !== undefined
        || string.find(data, '"response.incomplete"', 1, true)[0] !== undefined
        || string.find(data, '"response.failed"', 1, true)[0] !== undefined)) return true;
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
        this.addText(contentChars(obj));
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
      nd.feed(body, this.onLine());
      nd.finish(this.onLine());
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
    if (!this.reported) this.content_chars = this.bytes;
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
  if (type(opts) === "string") return new Reader({ format: opts as FormatOverride });
  return new Reader(opts as UsageReaderOptions);
}
