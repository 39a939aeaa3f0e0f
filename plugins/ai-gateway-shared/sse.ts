/**
 * Incremental Server-Sent Events reader (WHATWG HTML "event stream interpretation"), correct
 * whatever the chunk boundaries. An event reaches its sink as a range of the chunk it arrived in,
 * never copied. Memory is bounded: an event over `maxEventBytes` is dropped, not buffered.
 */

import { Rope } from "./rope";

export interface SseEvent {
  event?: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The SSE "last event ID buffer". */
  id?: string;
}

export type SseEventHandler = (this: void, data: string, event: string | undefined, id: string | undefined) => void;

/** Each event's data is s[a..b] (b < a: empty); `s` is only valid during the call. */
export interface SseSink {
  sseEvent(s: string, a: number, b: number, event: string | undefined, id: string | undefined): void;
}

export interface SseReaderOptions {
  maxEventBytes?: number;
}

export interface SseReader {
  /** Returns how many events the chunk completed. */
  read(chunk: string, sink: SseSink): number;
  feed(chunk: string, onEvent: SseEventHandler): number;
  feedEvents(chunk: string): SseEvent[];
  /**
   * True when an unfinished event was left over. Unlike the spec, a given sink receives it, so a
   * stream cut after `data: [DONE]\n` still shows its terminator.
   */
  finish(onEvent?: SseSink | SseEventHandler): boolean;
  readonly oversized: number;
  /** `: ping` keep-alives. */
  readonly comments: number;
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

const LF = 10;
const COLON = 58;
const SPACE = 32;

/** n + 1 when none. */
function nextByte(s: string, byte: string, pos: number, n: number): number {
  const [p] = string.find(s, byte, pos, true);
  return p === undefined ? n + 1 : p;
}

/** 0 when not a `data:` line. A function of its own so the bytes read do not stay live in JIT registers. */
function dataValueAt(s: string, pos: number): number {
  const [c1, c2, c3, c4, c5, c6] = string.byte(s, pos, pos + 5);
  if (c1 !== 100 /* d */ || c2 !== 97 /* a */ || c3 !== 116 /* t */ || c4 !== 97 /* a */ || c5 !== COLON) return 0;
  return c6 === SPACE ? pos + 6 : pos + 5;
}

function eventValueAt(s: string, pos: number): number {
  const [c1, c2, c3, c4, c5, c6, c7] = string.byte(s, pos, pos + 6);
  if (c1 !== 101 /* e */ || c2 !== 118 /* v */ || c3 !== 101 /* e */ || c4 !== 110 /* n */ || c5 !== 116 /* t */ || c6 !== COLON) return 0;
  return c7 === SPACE ? pos + 7 : pos + 6;
}

class HandlerSink implements SseSink {
  handler: SseEventHandler | undefined = undefined;

  sseEvent(s: string, a: number, b: number, event: string | undefined, id: string | undefined): void {
    (this.handler as SseEventHandler)(a === 1 && b === s.length ? s : string.sub(s, a, b), event, id);
  }
}

class Reader implements SseReader {
  oversized = 0;
  comments = 0;
  bufferedBytes = 0;

  private readonly maxEventBytes: number;
  /** A rope, so that a large event fed in small chunks costs n·log(n), not n². */
  private readonly tail = new Rope();
  /** An LF starting this chunk ends the previous chunk's CR. */
  private afterCR = false;
  private discarding = false;
  private droppingLine = false;
  private firstLine = true;

  /** A single data line inside the string being read stays a range; otherwise lines go to dataParts. */
  private rangeS: string | undefined = undefined;
  private rangeA = 0;
  private rangeB = 0;
  private dataParts: (string | undefined)[] = [];
  private dataCount = 0;
  private dataBytes = 0;
  private eventName: string | undefined = undefined;
  private lastId: string | undefined = undefined;

  private dispatched = 0;
  private handlerSink: HandlerSink | undefined = undefined;

  private sinkFor(handler: SseEventHandler): HandlerSink {
    let sink = this.handlerSink;
    if (sink === undefined) {
      sink = new HandlerSink();
      this.handlerSink = sink;
    }
    sink.handler = handler;
    return sink;
  }

  constructor(opts: SseReaderOptions | undefined) {
    this.maxEventBytes = (opts && opts.maxEventBytes) || DEFAULT_MAX_EVENT_BYTES;
  }

  read(chunk: string, sink: SseSink): number {
    this.dispatched = 0;
    const n = chunk.length;
    if (n === 0) return 0;
    let pos = 1;
    if (this.afterCR) {
      this.afterCR = false;
      if (string.byte(chunk, 1) === LF) pos = 2;
    }
    // Each searched again only once passed: linear whatever the line endings.
    let cr = nextByte(chunk, "\r", pos, n);
    let lf = nextByte(chunk, "\n", pos, n);
    const maxData = this.maxEventBytes - 1;
    let plain = this.plain();
    while (pos <= n) {
      // Fast path for "data: <json>\n\n" (and Anthropic's "event:" line) inside this chunk.
      if (lf < cr && this.dataCount === 0 && plain) {
        const vs = dataValueAt(chunk, pos);
        if (vs > 0) {
          if (string.byte(chunk, lf + 1) === LF && lf - pos <= maxData) {
            const name = this.eventName;
            this.eventName = undefined;
            this.dispatched += 1;
            sink.sseEvent(chunk, vs, lf - 1, name === "" ? undefined : name, this.lastId === "" ? undefined : this.lastId);
            pos = lf + 2;
            lf = nextByte(chunk, "\n", pos, n);
            continue;
          }
        } else {
          const ns = eventValueAt(chunk, pos);
          if (ns > 0) {
            this.eventName = ns < lf ? string.sub(chunk, ns, lf - 1) : "";
            pos = lf + 1;
            lf = nextByte(chunk, "\n", pos, n);
            continue;
          }
        }
      }
      let e: number;
      let next: number;
      if (cr < lf) {
        e = cr;
        if (cr + 1 === lf && lf <= n) {
          next = lf + 1;
        } else {
          next = cr + 1;
          if (cr === n) this.afterCR = true; // an LF starting the next chunk belongs to this CR
        }
      } else if (lf <= n) {
        e = lf;
        next = lf + 1;
      } else {
        this.keepTail(chunk, pos, n);
        break;
      }
      if (this.tail.bytes > 0) {
        const line = this.tail.take() + string.sub(chunk, pos, e - 1);
        this.bufferedBytes = this.dataBytes;
        this.line(line, 1, line.length, sink);
      } else if (this.droppingLine) {
        this.droppingLine = false;
      } else {
        this.line(chunk, pos, e - 1, sink);
      }
      pos = next;
      if (cr < pos) cr = nextByte(chunk, "\r", pos, n);
      if (lf < pos) lf = nextByte(chunk, "\n", pos, n);
      plain = this.plain();
    }
    // The range would not outlive this chunk.
    if (this.rangeS !== undefined) this.keepRange();
    return this.dispatched;
  }

  feed(chunk: string, onEvent: SseEventHandler): number {
    const sink = this.sinkFor(onEvent);
    return this.read(chunk, sink);
  }

  feedEvents(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    this.feed(chunk, (data, event, id) => {
      events.push({ data, event, id });
    });
    return events;
  }

  finish(onEvent?: SseSink | SseEventHandler): boolean {
    const leftover = this.tail.bytes > 0 || this.dataCount > 0 || this.discarding;
    if (onEvent !== undefined && leftover) {
      let sink: SseSink;
      if (typeof onEvent === "function") {
        sink = this.sinkFor(onEvent);
      } else {
        sink = onEvent;
      }
      this.dispatched = 0;
      if (this.tail.bytes > 0 && !this.droppingLine) {
        const line = this.tail.take();
        this.line(line, 1, line.length, sink);
      }
      this.line("", 1, 0, sink);
    }
    this.tail.clear();
    this.resetEvent();
    this.discarding = false;
    this.droppingLine = false;
    this.afterCR = false;
    return leftover;
  }

  private plain(): boolean {
    return this.tail.bytes === 0 && !this.discarding && !this.droppingLine && !this.firstLine;
  }

  private keepTail(chunk: string, pos: number, n: number): void {
    if (pos > n || this.droppingLine) return;
    const size = n - pos + 1;
    if (this.tail.bytes + size + this.dataBytes > this.maxEventBytes) {
      this.overflow();
      this.droppingLine = true;
      return;
    }
    this.tail.push(pos === 1 ? chunk : string.sub(chunk, pos, n));
    this.bufferedBytes = this.tail.bytes + this.dataBytes;
  }

  private overflow(): void {
    if (!this.discarding) {
      this.discarding = true;
      this.oversized += 1;
    }
    this.resetEvent();
    this.tail.clear();
    this.bufferedBytes = 0;
  }

  private resetEvent(): void {
    if (this.rangeS !== undefined) {
      this.rangeS = undefined;
    } else if (this.dataCount > 16) {
      this.dataParts = [];
    } else {
      for (let i = 0; i < this.dataCount; i++) this.dataParts[i] = undefined;
    }
    this.dataCount = 0;
    this.dataBytes = 0;
    this.eventName = undefined;
    this.bufferedBytes = this.tail.bytes;
  }

  private keepRange(): void {
    const s = this.rangeS as string;
    this.rangeS = undefined;
    this.dataParts[0] = this.rangeB < this.rangeA ? "" : string.sub(s, this.rangeA, this.rangeB);
  }

  private line(s: string, a: number, b: number, sink: SseSink): void {
    if (this.firstLine) {
      this.firstLine = false;
      const [c1, c2, c3] = string.byte(s, a, a + 2);
      if (c1 === 0xef && c2 === 0xbb && c3 === 0xbf) a += 3;
    }
    if (a > b) {
      this.dispatch(sink);
      return;
    }
    if (this.discarding) return;
    const [c, c2, c3, c4, c5] = string.byte(s, a, a + 4);
    if (c === COLON) {
      this.comments += 1;
      return;
    }
    if (c === 100 /* d */ && c2 === 97 /* a */ && c3 === 116 /* t */ && c4 === 97 /* a */ && c5 === COLON) {
      let vs = a + 5;
      if (vs <= b && string.byte(s, vs) === SPACE) vs += 1;
      this.addData(s, vs, b);
      return;
    }
    if (c === 101 /* e */ && c2 === 118 /* v */ && c3 === 101 /* e */ && c4 === 110 /* n */ && c5 === 116 /* t */
      && string.byte(s, a + 5) === COLON) {
      let vs = a + 6;
      if (vs <= b && string.byte(s, vs) === SPACE) vs += 1;
      this.eventName = vs <= b ? string.sub(s, vs, b) : "";
      return;
    }
    // Per the spec, a line without a colon is a field with an empty value.
    const [colon] = string.find(s, ":", a, true);
    let nameEnd = b;
    let vs = b + 1;
    if (colon !== undefined && colon <= b) {
      nameEnd = colon - 1;
      vs = colon + 1;
      if (vs <= b && string.byte(s, vs) === SPACE) vs += 1;
    }
    const nameLength = nameEnd - a + 1;
    if (c === 100 /* d */ && nameLength === 4 && string.sub(s, a, nameEnd) === "data") {
      this.addData(s, vs, b);
    } else if (c === 101 /* e */ && nameLength === 5 && string.sub(s, a, nameEnd) === "event") {
      this.eventName = vs <= b ? string.sub(s, vs, b) : "";
    } else if (c === 105 /* i */ && nameLength === 2 && string.sub(s, a, nameEnd) === "id") {
      const value = vs <= b ? string.sub(s, vs, b) : "";
      if (string.find(value, "\0", 1, true)[0] === undefined) this.lastId = value;
    }
    // `retry` and unknown fields are ignored, as the spec says.
  }

  private addData(s: string, a: number, b: number): void {
    const size = b >= a ? b - a + 1 : 0;
    if (this.dataCount === 0) {
      this.rangeS = s;
      this.rangeA = a;
      this.rangeB = b;
    } else {
      if (this.rangeS !== undefined) this.keepRange();
      this.dataParts[this.dataCount] = size > 0 ? string.sub(s, a, b) : "";
    }
    this.dataCount += 1;
    this.dataBytes += size + 1;
    this.bufferedBytes = this.dataBytes + this.tail.bytes;
    if (this.dataBytes > this.maxEventBytes) this.overflow();
  }

  private dispatch(sink: SseSink): void {
    if (this.discarding) {
      this.discarding = false;
      this.resetEvent();
      return;
    }
    if (this.dataCount === 0) {
      this.eventName = undefined;
      return;
    }
    const name = this.eventName === "" ? undefined : this.eventName;
    const id = this.lastId === "" ? undefined : this.lastId;
    this.dispatched += 1;
    const s = this.rangeS;
    if (s !== undefined) {
      const a = this.rangeA;
      const b = this.rangeB;
      this.resetEvent();
      sink.sseEvent(s, a, b, name, id);
      return;
    }
    const data = this.dataCount === 1 ? (this.dataParts[0] as string) : table.concat(this.dataParts as string[], "\n", 1, this.dataCount);
    this.resetEvent();
    sink.sseEvent(data, 1, data.length, name, id);
  }
}

export function newSseReader(opts?: SseReaderOptions): SseReader {
  return new Reader(opts);
}
