/**
 * Rewrites or removes whole SSE events of a stream on its way to the client, leaving every other
 * byte as it came. token-rate-limiting uses it to take out the usage it injected, so the client
 * gets the bytes a direct request would have. Only the event in progress is held back, up to
 * `maxHoldBytes`.
 */
import * as cjson from "cjson.safe";
import * as ffi from "ffi";
import * as buffer from "string.buffer";
import { asObject } from "./json";
import { Needle } from "./needle";
import { Rope } from "./rope";

/** Gets one complete event, blank line included; undefined keeps it. Must not feed a filter itself. */
export type EventRewrite = (this: void, block: string) => string | undefined;

export interface EventFilterOptions {
  /** Cheap prefilter: only events containing this plain text reach rewrite. */
  needle?: string;
  /**
   * A plain text removed from an event that has it, in place, instead of rewrite (the event is
   * never copied whole). rewrite still sees the events that have the needle but not this.
   */
  cut?: string;
  /** A larger event cannot be one to rewrite: it passes as it comes. */
  maxHoldBytes?: number;
}

export interface EventFilter {
  /** The bytes to send for this chunk. */
  feed(chunk: string): string;
  /** The bytes still held, unchanged. */
  finish(): string;
  readonly dropped: number;
  readonly rewritten: number;
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_HOLD_BYTES = 64 * 1024;

const LF = 10;

// What feed sends is assembled here, from pointers into the chunk: a string per kept piece would
// cost more than the filtering. Emptied by every feed, which never yields.
const out = buffer.new(16 * 1024);

class Filter implements EventFilter {
  dropped = 0;
  rewritten = 0;
  bufferedBytes = 0;

  private readonly rewrite: EventRewrite;
  private readonly needle: Needle | undefined;
  private readonly maxHold: number;
  private readonly hold = new Rope();
  /** The event in progress is too large to rewrite. */
  private passing = false;
  private lineHasBytes = false;
  /** A chunk-final CR is held until the next byte says whether an LF belongs to it, so a removed event takes its whole line ending. */
  private afterCR = false;
  private crEndedEvent = false;
  private lastDropped = false;
  private readonly cut: Needle | undefined;
  private readonly cutFirst: boolean;

  constructor(rewrite: EventRewrite, opts: EventFilterOptions | undefined) {
    this.rewrite = rewrite;
    const needle = opts && opts.needle;
    const cut = opts && opts.cut;
    this.needle = needle === undefined ? undefined : new Needle(needle);
    this.cut = cut === undefined ? undefined : new Needle(cut);
    this.cutFirst = cut !== undefined && (needle === undefined || string.find(cut, needle, 1, true)[0] !== undefined);
    this.maxHold = (opts && opts.maxHoldBytes) || DEFAULT_MAX_HOLD_BYTES;
  }

  feed(chunk: string): string {
    if (chunk === "") return "";
    out.reset();
    let s = chunk;
    if (this.afterCR) {
      this.afterCR = false;
      if (string.byte(s, 1) === LF) {
        // The LF goes where its CR went.
        if (this.crEndedEvent) {
          if (!this.lastDropped) out.put("\n");
        } else if (this.passing) {
          out.put("\n");
        } else {
          this.holdPush("\n");
        }
        s = string.sub(s, 2);
      }
    }
    const n = s.length;
    const ptr = ffi.cast("const char *", s);
    let p = 1;
    let blockStart = 1;
    /** s[keepFrom .. blockStart - 1]: complete events to send as they came, not copied yet. */
    let keepFrom = 1;
    // Each searched again only once passed: linear in the chunk.
    let cr = nextPlain(s, "\r", 1, n);
    let lf = nextPlain(s, "\n", 1, n);
    while (p <= n) {
      let e: number;
      let t: number;
      if (cr < lf) {
        e = cr;
        t = cr + 1 === lf && lf <= n ? lf : cr;
      } else if (lf <= n) {
        e = lf;
        t = lf;
      } else {
        this.lineHasBytes = true;
        break;
      }
      const blank = e === p && !this.lineHasBytes;
      this.lineHasBytes = false;
      if (t === n && e === n && cr === n) {
        this.afterCR = true;
        this.crEndedEvent = blank;
      }
      if (blank) {
        keepFrom = this.endBlock(s, ptr, blockStart, t, keepFrom);
        blockStart = t + 1;
      }
      p = t + 1;
      if (cr < p) cr = nextPlain(s, "\r", p, n);
      if (lf < p) lf = nextPlain(s, "\n", p, n);
    }
    if (keepFrom < blockStart) {
      // Nothing changed: the chunk itself goes on.
      if (keepFrom === 1 && blockStart > n && out.length() === 0) return s;
      out.putcdata(ffi.offset(ptr, keepFrom - 1), blockStart - keepFrom);
    }
    if (blockStart <= n) {
      if (this.passing) {
        out.putcdata(ffi.offset(ptr, blockStart - 1), n - blockStart + 1);
      } else {
        const rest = blockStart === 1 ? s : string.sub(s, blockStart);
        this.holdPush(rest);
        if (this.bufferedBytes > this.maxHold) {
          out.put(this.takeHold());
          this.passing = true;
        }
      }
    }
    return out.length() === 0 ? "" : out.get();
  }

  finish(): string {
    this.passing = false;
    this.lineHasBytes = false;
    this.afterCR = false;
    return this.takeHold();
  }

  private holdPush(piece: string): void {
    this.hold.push(piece);
    this.bufferedBytes = this.hold.bytes;
  }

  private takeHold(): string {
    this.bufferedBytes = 0;
    return this.hold.take();
  }

  /**
   * The common rewrite (OpenAI's `,"usage":null` in every chunk) cuts the chunk around the text:
   * one piece per event, no copy of the event and no rewrite call. Undefined: no cut in s[a..b].
   */
  private tryCut(s: string, ptr: ffi.CData, a: number, b: number, keepFrom: number): number | undefined {
    const cut = this.cut;
    if (cut === undefined) return undefined;
    const c = cut.next(s, a);
    if (c + cut.length - 1 > b) return undefined;
    out.putcdata(ffi.offset(ptr, keepFrom - 1), c - keepFrom);
    this.rewritten += 1;
    return c + cut.length;
  }

  /** The event is the held bytes then s[a..b]; returns the new keepFrom. */
  private endBlock(s: string, ptr: ffi.CData, a: number, b: number, keepFrom: number): number {
    this.lastDropped = false;
    if (this.passing) {
      this.passing = false;
      return keepFrom;
    }
    const held = !this.hold.isEmpty();
    if (!held) {
      // A cut that holds the needle is looked for first: one search per event on the common path.
      if (this.cutFirst) {
        const kept = this.tryCut(s, ptr, a, b, keepFrom);
        if (kept !== undefined) return kept;
      }
      if (this.needle !== undefined && this.needle.next(s, a) > b) return keepFrom;
      if (!this.cutFirst) {
        const kept = this.tryCut(s, ptr, a, b, keepFrom);
        if (kept !== undefined) return kept;
      }
    }
    const block = held ? this.takeHold() + string.sub(s, a, b) : string.sub(s, a, b);
    if (held && this.needle !== undefined && string.find(block, this.needle.text, 1, true)[0] === undefined) {
      out.put(block);
      return b + 1;
    }
    const replacement = this.rewrite(block);
    if (replacement === undefined || replacement === block) {
      if (!held) return keepFrom;
      out.put(block);
      return b + 1;
    }
    if (keepFrom < a) out.putcdata(ffi.offset(ptr, keepFrom - 1), a - keepFrom);
    if (replacement === "") {
      this.dropped += 1;
      this.lastDropped = true;
    } else {
      this.rewritten += 1;
      out.put(replacement);
    }
    return b + 1;
  }
}

/** n + 1 when none. */
function nextPlain(s: string, text: string, pos: number, n: number): number {
  const [p] = string.find(s, text, pos, true);
  return p === undefined ? n + 1 : p;
}

export function newEventFilter(rewrite: EventRewrite, opts?: EventFilterOptions): EventFilter {
  return new Filter(rewrite, opts);
}

export function blockData(block: string): string | undefined {
  let data: string | undefined;
  for (const [line] of string.gmatch(block, "([^\r\n]*)")) {
    const [value] = string.match(line, "^data: ?(.*)$");
    if (value !== undefined) data = data === undefined ? value : data + "\n" + value;
  }
  return data;
}

/** `"choices": []` with a usage object. */
export function isUsageOnlyChunk(data: string): boolean {
  const [obj] = cjson.decode(data);
  const o = asObject(obj);
  if (o === undefined || asObject(o.usage) === undefined) return false;
  const choices = asObject(o.choices);
  return choices !== undefined && next(choices)[0] === undefined;
}

/** Removes the usage-only chunk and, if asked, the `"usage":null` OpenAI then adds to every chunk. */
export function injectedUsageRewrite(stripNullUsage: boolean): EventRewrite {
  return (block) => {
    if (string.find(block, '_tokens"', 1, true)[0] !== undefined) {
      const data = blockData(block);
      if (data !== undefined && isUsageOnlyChunk(data)) return "";
    }
    if (!stripNullUsage) return undefined;
    const [p, pe] = string.find(block, ',"usage":null', 1, true);
    if (p !== undefined) return string.sub(block, 1, p - 1) + string.sub(block, pe + 1);
    const [removed, count] = string.gsub(block, ',%s*"usage"%s*:%s*null', "", 1);
    if (count > 0) return removed;
    const [removed2, count2] = string.gsub(block, '"usage"%s*:%s*null%s*,%s*', "", 1);
    return count2 > 0 ? removed2 : undefined;
  };
}

// Made once: a closure made per stream would abort the trace that opens it.
const stripNullUsageRewrite = injectedUsageRewrite(true);
const keepNullUsageRewrite = injectedUsageRewrite(false);

export function newInjectedUsageFilter(stripNullUsage = true): EventFilter {
  return stripNullUsage
    ? newEventFilter(stripNullUsageRewrite, { needle: '"usage"', cut: ',"usage":null' })
    : newEventFilter(keepNullUsageRewrite, { needle: '"usage"' });
}
