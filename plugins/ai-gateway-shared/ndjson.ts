/**
 * Incremental newline-delimited JSON reader (Ollama's application/x-ndjson). A line inside one
 * chunk reaches its sink as a range, never copied; a line over `maxLineBytes` is dropped, not buffered.
 */

import { Rope } from "./rope";

export type NdjsonLineHandler = (this: void, line: string) => void;

/** `s` is only valid during the call. */
export interface NdjsonSink {
  jsonLine(s: string, a: number, b: number): void;
}

export interface NdjsonReaderOptions {
  maxLineBytes?: number;
}

export interface NdjsonReader {
  /** Returns how many non-blank lines the chunk completed. */
  read(chunk: string, sink: NdjsonSink): number;
  feed(chunk: string, onLine: NdjsonLineHandler): number;
  feedLines(chunk: string): string[];
  /** A last line without LF is still a line: a plain JSON body may not end with one. */
  finish(onLine?: NdjsonSink | NdjsonLineHandler): number;
  readonly oversized: number;
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const CR = 13;

class HandlerSink implements NdjsonSink {
  handler: NdjsonLineHandler | undefined = undefined;

  jsonLine(s: string, a: number, b: number): void {
    (this.handler as NdjsonLineHandler)(a === 1 && b === s.length ? s : string.sub(s, a, b));
  }
}

class Reader implements NdjsonReader {
  oversized = 0;
  bufferedBytes = 0;
  private readonly maxLineBytes: number;
  private readonly tail = new Rope();
  private handlerSink: HandlerSink | undefined = undefined;

  private sinkFor(handler: NdjsonLineHandler): HandlerSink {
    let sink = this.handlerSink;
    if (sink === undefined) {
      sink = new HandlerSink();
      this.handlerSink = sink;
    }
    sink.handler = handler;
    return sink;
  }
  private discarding = false;

  constructor(opts: NdjsonReaderOptions | undefined) {
    this.maxLineBytes = (opts && opts.maxLineBytes) || DEFAULT_MAX_LINE_BYTES;
  }

  feed(chunk: string, onLine: NdjsonLineHandler): number {
    const sink = this.sinkFor(onLine);
    return this.read(chunk, sink);
  }

  read(chunk: string, sink: NdjsonSink): number {
    const n = chunk.length;
    let pos = 1;
    let lines = 0;
    if (this.tail.bytes > 0 || this.discarding) {
      const [e] = string.find(chunk, "\n", 1, true);
      if (e === undefined) {
        this.keep(chunk, 1, n);
        return 0;
      }
      if (this.discarding) {
        this.discarding = false;
      } else {
        const head = this.tail.take();
        this.bufferedBytes = 0;
        const line = head + string.sub(chunk, 1, e - 1);
        if (this.emit(line, 1, line.length, sink)) lines += 1;
      }
      pos = e + 1;
    }
    while (pos <= n) {
      const [e] = string.find(chunk, "\n", pos, true);
      if (e === undefined) {
        this.keep(chunk, pos, n);
        break;
      }
      if (e > pos && this.emit(chunk, pos, e - 1, sink)) lines += 1;
      pos = e + 1;
    }
    return lines;
  }

  feedLines(chunk: string): string[] {
    const lines: string[] = [];
    this.feed(chunk, (line) => {
      lines.push(line);
    });
    return lines;
  }

  finish(onLine?: NdjsonSink | NdjsonLineHandler): number {
    let lines = 0;
    if (this.tail.bytes > 0 && !this.discarding) {
      const rest = this.tail.take();
      let sink: NdjsonSink | undefined;
      if (typeof onLine === "function") {
        sink = this.sinkFor(onLine);
      } else {
        sink = onLine;
      }
      if (sink !== undefined && this.emit(rest, 1, rest.length, sink)) lines = 1;
    }
    this.clear();
    this.discarding = false;
    return lines;
  }

  private emit(s: string, a: number, b: number, sink: NdjsonSink): boolean {
    let last = b;
    if (last >= a && string.byte(s, last) === CR) last -= 1;
    if (last < a) return false;
    // A line starting with "{" is not blank: no search.
    if (string.byte(s, a) !== 123 /* { */) {
      const [text] = string.find(s, "%S", a);
      if (text === undefined || text > last) return false;
    }
    sink.jsonLine(s, a, last);
    return true;
  }

  private keep(chunk: string, pos: number, n: number): void {
    if (pos > n || this.discarding) return;
    const size = n - pos + 1;
    if (this.bufferedBytes + size > this.maxLineBytes) {
      this.clear();
      this.discarding = true;
      this.oversized += 1;
      return;
    }
    this.tail.push(pos === 1 ? chunk : string.sub(chunk, pos, n));
    this.bufferedBytes = this.tail.bytes;
  }

  private clear(): void {
    this.tail.clear();
    this.bufferedBytes = 0;
  }
}

export function newNdjsonReader(opts?: NdjsonReaderOptions): NdjsonReader {
  return new Reader(opts);
}
