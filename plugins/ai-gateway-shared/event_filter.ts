/**
 * Rewrites or removes whole SSE events of a stream on its way to the client, leaving every other
 * byte as it came. token-rate-limiting uses it to take out the usage it injected, so the client
 * gets the bytes a direct request would have. Only the event in progress is held back, up to
 * `maxHoldBytes`.
 */
import * as cjson from "cjson.safe";
import { asObject } from "./json";
import { Rope } from "./rope";

/** Gets one complete event, blank line included; undefined keeps it. */
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

class Filter implements EventFilter {
  dropped = 0;
  rewritten = 0;
  bufferedBytes = 0;

  private readonly rewrite: EventRewrite;
  private readonly needle: string | undefined;
  private readonly maxHold: number;
  private readonly hold = new Rope();
  /** The event in progress is too large to rewrite. */
  private passing = false;
  private lineHasBytes = false;
  /** A chunk-final CR is held until the next byte says whether an LF belongs to it, so a removed event takes its whole line ending. */
  private afterCR = false;
  private crEndedEvent = false;
  private lastDropped = false;
  private nextNeedle = 1;
  private readonly cut: string | undefined;
  private nextCut = 1;

  constructor(rewrite: EventRewrite, opts: EventFilterOptions | undefined) {
    this.rewrite = rewrite;
    this.needle = opts && opts.needle;
    this.cut = opts && opts.cut;
    this.maxHold = (opts && opts.maxHoldBytes) || DEFAULT_MAX_HOLD_BYTES;
  }

  feed(chunk: string): string {
    if (chunk === "") return "";
    const out: string[] = [];
    let s = chunk;
    if (this.afterCR) {
      this.afterCR = false;
      if (string.byte(s, 1) === LF) {
        // The LF goes where its CR went.
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
    /** s[keepFrom .. blockStart - 1]: complete events to send as they came, not copied yet. */
    let keepFrom = 1;
    // Each searched again only once passed: linear in the chunk.
    let cr = nextPlain(s, "\r", 1, n);
    let lf = nextPlain(s, "\n", 1, n);
    this.nextNeedle = this.needle === undefined ? 1 : nextPlain(s, this.needle, 1, n);
    this.nextCut = this.cut === undefined ? n + 1 : nextPlain(s, this.cut, 1, n);
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

  /** The event is the held bytes then s[a..b]; returns the new keepFrom. */
  private endBlock(s: string, a: number, b: number, keepFrom: number, out: string[]): number {
    this.lastDropped = false;
    if (this.passing) {
      this.passing = false;
      return keepFrom;
    }
    const held = !this.hold.isEmpty();
    if (!held && this.needle !== undefined) {
      if (this.nextNeedle < a) this.nextNeedle = nextPlain(s, this.needle, a, s.length);
      if (this.nextNeedle > b) return keepFrom;
    }
    const cut = this.cut;
    if (!held && cut !== undefined) {
      // The common rewrite (OpenAI's `,"usage":null` in every chunk) cuts the chunk around the
      // text: one piece per event, no copy of the event and no rewrite call.
      if (this.nextCut < a) this.nextCut = nextPlain(s, cut, a, s.length);
      const c = this.nextCut;
      if (c + cut.length - 1 <= b) {
        out.push(string.sub(s, keepFrom, c - 1));
        this.rewritten += 1;
        this.nextCut = nextPlain(s, cut, c + cut.length, s.length);
        return c + cut.length;
      }
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

export function newInjectedUsageFilter(stripNullUsage = true): EventFilter {
  return newEventFilter(injectedUsageRewrite(stripNullUsage), { needle: '"usage"', cut: stripNullUsage ? ',"usage":null' : undefined });
}
