/**
 * Rewrites or removes whole SSE events of a stream on its way to the client, leaving every
 * other byte as it came.
 *
 * token-rate-limiting uses it after adding `stream_options.include_usage` to a request whose
 * client did not ask for usage: the extra usage-only chunk (`"choices": []` with a `usage`
 * object) is removed, and the `"usage":null` that OpenAI then adds to every chunk is taken out
 * again, so the client gets the bytes a direct request would have given it.
 *
 * How: the bytes of the event in progress are held back until its blank line arrives (one
 * event, normally a few hundred bytes), then the complete event is passed to `rewrite`, which
 * returns its replacement. An event larger than `maxHoldBytes` cannot be one to rewrite: it is
 * released as it comes. A CR at the end of a chunk is held until the next byte says whether an
 * LF belongs to it, so an event is always removed with its whole line ending.
 */
import * as cjson from "cjson.safe";
import { asObject } from "./json";
import { Rope } from "./rope";

/** Given one complete event (its raw bytes, blank line included), the bytes to send instead; undefined keeps it. */
export type EventRewrite = (this: void, block: string) => string | undefined;

export interface EventFilterOptions {
  /** Only events containing this plain text are passed to rewrite (a cheap prefilter). */
  needle?: string;
  /** Largest event held back, in bytes (default 64 KiB). */
  maxHoldBytes?: number;
}

export interface EventFilter {
  /** The bytes to send to the client for this chunk (possibly "", possibly some held from before). */
  feed(chunk: string): string;
  /** End of stream: the bytes still held (an unfinished last event), unchanged. */
  finish(): string;
  /** Events removed (rewritten to ""). */
  readonly dropped: number;
  /** Events rewritten to other non-empty bytes. */
  readonly rewritten: number;
  /** Bytes held back right now. */
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_HOLD_BYTES = 64 * 1024;

const LF = 10;

class Filter implements EventFilter {
  dropped = 0;
  rewritten = 0;
  bufferedBytes = 0;

  private readonly rewrite: EventRewrite;
  private readonly needle: string | undefined;
  private readonly maxHold: number;
  /** The unfinished event, not sent yet. */
  private readonly hold = new Rope();
  /** The event in progress is too large to rewrite: its bytes pass as they come. */
  private passing = false;
  /** The current line already has bytes, so its terminator does not end the event. */
  private lineHasBytes = false;
  /** The last byte seen was a CR line ending: an LF first in the next chunk belongs to it. */
  private afterCR = false;
  /** ... and that CR ended an event (else it ended a line of the event in progress). */
  private crEndedEvent = false;
  /** The last event that ended was removed. */
  private lastDropped = false;
  /** Position of the next needle in the chunk being fed. */
  private nextNeedle = 1;

  constructor(rewrite: EventRewrite, opts: EventFilterOptions | undefined) {
    this.rewrite = rewrite;
    this.needle = opts && opts.needle;
    this.maxHold = (opts && opts.maxHoldBytes) || DEFAULT_MAX_HOLD_BYTES;
  }

  feed(chunk: string): string {
    if (chunk === "") return "";
    const out: string[] = [];
    let s = chunk;
    if (this.afterCR) {
      this.afterCR = false;
      if (string.byte(s, 1) === LF) {
        // The LF goes where its CR went: with the ended event (sent or removed) or the held one.
        if (this.crEndedEvent) {
          if (!this.lastDropped) out.push("\n");
        } else if (this.passing) {
          out.push("\n");
        } else {
          this.holdPush("\n");
        }
        s = string.sub(s, 2);
      }
    }
    const n = s.length;
    let p = 1;
    let blockStart = 1;
    /** s[keepFrom .. blockStart - 1] are complete events sent as they came (not copied yet). */
    let keepFrom = 1;
    // The next CR, LF and needle at or after p (n + 1: none), found by plain searches and
    // searched again only once passed.
    let cr = nextPlain(s, "\r", 1, n);
    let lf = nextPlain(s, "\n", 1, n);
    this.nextNeedle = this.needle === undefined ? 1 : nextPlain(s, this.needle, 1, n);
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
        // Which bytes end this line depends on the next chunk's first byte.
        this.afterCR = true;
        this.crEndedEvent = blank;
      }
      if (blank) {
        keepFrom = this.endBlock(s, blockStart, t, keepFrom, out);
        blockStart = t + 1;
      }
      p = t + 1;
      if (cr < p) cr = nextPlain(s, "\r", p, n);
      if (lf < p) lf = nextPlain(s, "\n", p, n);
    }
    if (keepFrom < blockStart) out.push(keepFrom === 1 && blockStart > n ? s : string.sub(s, keepFrom, blockStart - 1));
    if (blockStart <= n) {
      const rest = blockStart === 1 ? s : string.sub(s, blockStart);
      if (this.passing) {
        out.push(rest);
      } else {
        this.holdPush(rest);
        if (this.bufferedBytes > this.maxHold) {
          out.push(this.takeHold());
          this.passing = true;
        }
      }
    }
    if (out.length === 0) return "";
    return out.length === 1 ? out[0] : table.concat(out);
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
   * The event ending at s[b] (held bytes, then s[a..b]) is complete: keep, rewrite or remove it.
   * Kept events in s stay in the pending range that starts at keepFrom; returns the new start.
   */
  private endBlock(s: string, a: number, b: number, keepFrom: number, out: string[]): number {
    this.lastDropped = false;
    if (this.passing) {
      // Its first bytes went out already; the rest goes out with the pending range.
      this.passing = false;
      return keepFrom;
    }
    const held = !this.hold.isEmpty();
    if (!held && this.needle !== undefined) {
      if (this.nextNeedle < a) this.nextNeedle = nextPlain(s, this.needle, a, s.length);
      if (this.nextNeedle > b) return keepFrom;
    }
    const block = held ? this.takeHold() + string.sub(s, a, b) : string.sub(s, a, b);
    if (held && this.needle !== undefined && string.find(block, this.needle, 1, true)[0] === undefined) {
      out.push(block);
      return b + 1;
    }
    const replacement = this.rewrite(block);
    if (replacement === undefined || replacement === block) {
      if (!held) return keepFrom;
      out.push(block);
      return b + 1;
    }
    if (keepFrom < a) out.push(string.sub(s, keepFrom, a - 1));
    if (replacement === "") {
      this.dropped += 1;
      this.lastDropped = true;
    } else {
      this.rewritten += 1;
      out.push(replacement);
    }
    return b + 1;
  }
}

/** Position of the next plain `text` in s at or after pos, or n + 1. */
function nextPlain(s: string, text: string, pos: number, n: number): number {
  const [p] = string.find(s, text, pos, true);
  return p === undefined ? n + 1 : p;
}

/** A filter that passes every event through `rewrite`. */
export function newEventFilter(rewrite: EventRewrite, opts?: EventFilterOptions): EventFilter {
  return new Filter(rewrite, opts);
}

/** The data of one complete SSE event block (data lines joined with "\n"), or undefined. */
export function blockData(block: string): string | undefined {
  let data: string | undefined;
  for (const [line] of string.gmatch(block, "([^\r\n]*)")) {
    const [value] = string.match(line, "^data: ?(.*)$");
    if (value !== undefined) data = data === undefined ? value : data + "\n" + value;
  }
  return data;
}

/** True when a decoded OpenAI chunk is the usage-only chunk: `"choices": []` and a usage object. */
export function isUsageOnlyChunk(data: string): boolean {
  const [obj] = cjson.decode(data);
  const o = asObject(obj);
  if (o === undefined || asObject(o.usage) === undefined) return false;
  const choices = asObject(o.choices);
  return choices !== undefined && next(choices)[0] === undefined;
}

/**
 * Rewrite for streams whose usage the gateway asked for: removes the usage-only chunk and,
 * when `stripNullUsage`, the `"usage":null` member OpenAI adds to every chunk when usage is
 * requested. Any other event comes back unchanged.
 */
export function injectedUsageRewrite(stripNullUsage: boolean): EventRewrite {
  return (block) => {
    if (string.find(block, '_tokens"', 1, true)[0] !== undefined) {
      const data = blockData(block);
      if (data !== undefined && isUsageOnlyChunk(data)) return "";
    }
    if (!stripNullUsage) return undefined;
    // The compact form first (one plain search), then JSON written with spaces.
    const [p, pe] = string.find(block, ',"usage":null', 1, true);
    if (p !== undefined) return string.sub(block, 1, p - 1) + string.sub(block, pe + 1);
    const [removed, count] = string.gsub(block, ',%s*"usage"%s*:%s*null', "", 1);
    if (count > 0) return removed;
    const [removed2, count2] = string.gsub(block, '"usage"%s*:%s*null%s*,%s*', "", 1);
    return count2 > 0 ? removed2 : undefined;
  };
}

/** The filter token-rate-limiting installs when it injected include_usage. */
export function newInjectedUsageFilter(stripNullUsage = true): EventFilter {
  return newEventFilter(injectedUsageRewrite(stripNullUsage), { needle: '"usage"' });
}
