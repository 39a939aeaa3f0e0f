/**
 * Incremental newline-delimited JSON reader (Ollama's application/x-ndjson).
 *
 * Lines end with LF; a CR before the LF is dropped, blank lines are skipped. A chunk boundary
 * may fall anywhere. The unfinished line is kept in a few pieces (pieces.ts) joined when its LF
 * arrives, and a line longer than `maxLineBytes` is
 * dropped (counted in `oversized`) instead of growing a buffer. Lines are returned as text: the
 * caller decides which ones are worth decoding.
 */

import { Pieces } from "./pieces";

export type NdjsonLineHandler = (this: void, line: string) => void;

export interface NdjsonReaderOptions {
  /** Longest line kept, in bytes. Default 1 MiB. */
  maxLineBytes?: number;
}

export interface NdjsonReader {
  /** Reads the next chunk; calls `onLine` for every non-blank line it completes; returns how many. */
  feed(chunk: string, onLine: NdjsonLineHandler): number;
  /** Same as feed, returning the completed lines as a list. */
  feedLines(chunk: string): string[];
  /**
   * End of the stream: a last line without LF is still a line (Ollama ends with "\n", but a
   * plain JSON body may not); calls onLine for it. Returns how many lines it completed.
   */
  finish(onLine?: NdjsonLineHandler): number;
  /** Lines dropped because they were longer than maxLineBytes. */
  readonly oversized: number;
  /** Bytes held for the unfinished line. */
  readonly bufferedBytes: number;
}

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const CR = 13;

class Reader implements NdjsonReader {
  oversized = 0;
  bufferedBytes = 0;
  private readonly maxLineBytes: number;
  private readonly tail = new Pieces();
  /** The unfinished line went over the cap: drop everything up to its LF. */
  private discarding = false;

  constructor(opts: NdjsonReaderOptions | undefined) {
    this.maxLineBytes = (opts && opts.maxLineBytes) || DEFAULT_MAX_LINE_BYTES;
  }

  feed(chunk: string, onLine: NdjsonLineHandler): number {
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
        if (this.emit(head + string.sub(chunk, 1, e - 1), 1, onLine)) lines += 1;
      }
      pos = e + 1;
    }
    while (pos <= n) {
      const [e] = string.find(chunk, "\n", pos, true);
      if (e === undefined) {
        this.keep(chunk, pos, n);
        break;
      }
      if (e > pos && this.emit(chunk, pos, onLine, e - 1)) lines += 1;
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

  finish(onLine?: NdjsonLineHandler): number {
    let lines = 0;
    if (this.tail.bytes > 0 && !this.discarding) {
      const rest = this.tail.take();
      if (onLine !== undefined && this.emit(rest, 1, onLine)) lines = 1;
    }
    this.clear();
    this.discarding = false;
    return lines;
  }

  /** Calls onLine with s[a..b] (b defaults to the end) unless it is blank; drops a trailing CR. */
  private emit(s: string, a: number, onLine: NdjsonLineHandler, b?: number): boolean {
    let last = b === undefined ? s.length : b;
    if (last >= a && string.byte(s, last) === CR) last -= 1;
    if (last < a) return false;
    const line = a === 1 && last === s.length ? s : string.sub(s, a, last);
    // Blank lines (only whitespace) are skipped; a line starting with "{" is not one.
    if (string.byte(line, 1) !== 123 /* { */ && string.find(line, "^%s*$")[0] !== undefined) return false;
    onLine(line);
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

/** A new reader for one response body. */
export function newNdjsonReader(opts?: NdjsonReaderOptions): NdjsonReader {
  return new Reader(opts);
}
