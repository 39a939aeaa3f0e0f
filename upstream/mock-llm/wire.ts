/**
 * Writes a response's events to the connection with the wire-level faults applied: CRLF line endings,
 * `: ping` comments between SSE events, gzip with a sync flush per write (so every event leaves at
 * once), and split writes that cut events at odd offsets, through multi-byte UTF-8 characters, as
 * separate TCP segments.
 */
import type { ServerResponse } from "node:http";
import { constants as zlibConstants, createGzip, type Gzip } from "node:zlib";

export interface WireOptions {
  gzip: boolean;
  crlf: boolean;
  split: boolean;
  keepaliveComments: boolean;
}

/** Pause between split pieces; long enough that loopback delivers them as separate reads. */
export const SPLIT_PIECE_DELAY_MS = 2;

export const KEEPALIVE_COMMENT = ": ping\n\n";

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Offsets where `split` cuts one event: inside the first and the last multi-byte UTF-8 character,
 * three bytes in (inside `data:` / `event:` / `{"`), the middle, and before the last byte (between the
 * two newlines of the blank line, or between CR and LF with CRLF endings).
 */
export function splitOffsets(bytes: Uint8Array): number[] {
  const cuts = new Set<number>([3, Math.floor(bytes.length / 2), bytes.length - 1]);
  let first = -1;
  let last = -1;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] & 0xc0) === 0xc0) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first >= 0) cuts.add(first + 1);
  if (last >= 0) cuts.add(last + 1);
  return [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
}

export function splitPieces(bytes: Buffer): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const cut of splitOffsets(bytes)) {
    pieces.push(bytes.subarray(start, cut));
    start = cut;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

export class Wire {
  /** Payload bytes written, before compression. */
  bytesSent = 0;
  private eventsWritten = 0;
  private readonly gzip: Gzip | undefined;
  private lastWrite: Promise<void> = Promise.resolve();
  /** Settles when the connection closes: a write on a closing connection may never call back. */
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: WireOptions,
    private readonly signal: AbortSignal,
    private readonly sse: boolean,
  ) {
    this.closedPromise = new Promise((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    if (options.gzip) {
      this.gzip = createGzip();
      this.gzip.on("data", (chunk: Buffer) => this.writeRaw(chunk));
      this.gzip.on("error", () => this.res.destroy());
    }
  }

  get closed(): boolean {
    return this.signal.aborted || this.res.destroyed;
  }

  private writeRaw(chunk: Buffer): void {
    if (this.closed) return;
    const written = new Promise<void>((resolve) => {
      this.res.write(chunk, () => resolve());
    });
    this.lastWrite = Promise.race([written, this.closedPromise]);
  }

  private async drain(): Promise<void> {
    if (!this.res.writableNeedDrain || this.closed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.res.off("drain", done);
        this.signal.removeEventListener("abort", done);
        resolve();
      };
      this.res.on("drain", done);
      this.signal.addEventListener("abort", done);
    });
  }

  private async writePiece(piece: Buffer): Promise<void> {
    if (this.closed) return;
    if (this.gzip) {
      const gzip = this.gzip;
      gzip.write(piece);
      await new Promise<void>((resolve) => gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    } else {
      this.writeRaw(piece);
    }
    await this.drain();
  }

  /** Writes one event (or a whole non-streamed body) with the options applied. */
  async send(text: string): Promise<void> {
    if (this.closed) return;
    let payload = text;
    if (this.sse && this.options.keepaliveComments && this.eventsWritten > 0) payload = KEEPALIVE_COMMENT + payload;
    if (this.options.crlf) payload = payload.replace(/\r?\n/g, "\r\n");
    const bytes = Buffer.from(payload, "utf8");
    this.bytesSent += bytes.length;
    this.eventsWritten++;
    const pieces = this.options.split ? splitPieces(bytes) : [bytes];
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) await sleep(SPLIT_PIECE_DELAY_MS, this.signal);
      await this.writePiece(pieces[i]);
    }
  }

  /** Ends the response normally; resolves when it is handed to the socket (or the connection closed). */
  async end(): Promise<void> {
    if (this.closed) return;
    if (this.gzip) {
      const gzip = this.gzip;
      await new Promise<void>((resolve) => {
        gzip.once("end", () => resolve());
        gzip.end();
      });
    }
    const ended = new Promise<void>((resolve) => {
      this.res.end(() => resolve());
    });
    await Promise.race([ended, this.closedPromise]);
  }

  /** Cuts the connection once what was written has reached the socket: no terminator, no last chunk. */
  async cut(): Promise<void> {
    await this.lastWrite;
    this.res.socket?.destroy();
    this.res.destroy();
  }
}
