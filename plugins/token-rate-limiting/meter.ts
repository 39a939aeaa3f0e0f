// Reads one response on its way to the client: every chunk goes to the usage reader (decoded
// first when the upstream compressed anyway) and, when the plugin injected include_usage,
// through the event filter that removes the usage-only chunk. Only the unfinished event is ever
// held, so memory stays bounded whatever the response's length.

import { newInjectedUsageFilter, type EventFilter } from "../ai-gateway-shared/event_filter";
import { framingFromHeaders, newUsageReader, type FormatOverride, type UsageReader, type UsageReport } from "../ai-gateway-shared/stream_usage";
import { newInflater, type Inflater } from "./inflate";

export interface MeterOptions {
  format: FormatOverride;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** The plugin added include_usage: remove the extra chunk from the client's stream. */
  injected: boolean;
}

/** How the meter handles the body, decided from the response headers. */
export interface MeterPlan {
  /** Decode gzip/deflate for reading. */
  decode: boolean;
  /** Send the decoded body to the client (its Content-Encoding must go, and Content-Length). */
  sendDecoded: boolean;
  /** Filter the client's stream (Content-Length must go). */
  filter: boolean;
  /** The body cannot be read (unknown encoding): the count will be an estimate. */
  unreadable: boolean;
}

/**
 * Decoded bytes read at most. Past it the body is not read any more (so a compression bomb
 * costs no more than this), the count becomes an estimate that takes every further byte for a
 * character, and the client's bytes go on as before: compressed as they came, or, where the
 * client gets the decoded stream, still decoded and filtered.
 */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

export function planFor(opts: MeterOptions): MeterPlan {
  const enc = opts.contentEncoding === undefined ? "" : string.lower(opts.contentEncoding);
  const compressed = enc !== "" && enc !== "identity";
  const decodable = enc === "gzip" || enc === "x-gzip" || enc === "deflate";
  // Only an SSE stream carries the injected usage chunk (by its Content-Type, as the reader decides).
  const filter = opts.injected && framingFromHeaders(undefined, opts.contentType) === "sse";
  return {
    decode: compressed && decodable,
    // A compressed stream cannot be filtered in place: the client gets it decoded, which HTTP
    // always allows (identity is acceptable unless the client refused it explicitly).
    sendDecoded: compressed && decodable && filter,
    filter: filter && (!compressed || decodable),
    unreadable: compressed && !decodable,
  };
}

export interface Meter {
  readonly plan: MeterPlan;
  readonly reader: UsageReader;
  /** One body chunk in; the bytes for the client out. */
  process(chunk: string, eof: boolean): string;
  /** The usage so far; final once the body ended (or when the request ends without its end). */
  finish(): UsageReport;
  /** Why the body stopped being read before its end (zlib failed or unavailable, the cap). */
  readonly stoppedReading: string | undefined;
  /** Events removed from the client's stream. */
  removedEvents(): number;
  /** Bytes held right now (the unfinished event in the reader and in the filter). */
  bufferedBytes(): number;
}

class ResponseMeter implements Meter {
  stoppedReading: string | undefined = undefined;
  readonly plan: MeterPlan;
  private readonly filter: EventFilter | undefined;
  private inflater: Inflater | undefined;
  private finished: UsageReport | undefined;
  /** Decoded bytes read so far. */
  private readBytes = 0;
  /** Bytes that passed unread once reading stopped (counted as characters of the estimate). */
  private unreadBytes = 0;
  private readonly decoded: (string | undefined)[] = [];

  constructor(
    wanted: MeterPlan,
    opts: MeterOptions,
    readonly reader: UsageReader,
    /** This meter feeds the reader (it may be shared with a plugin that feeds it). */
    private readonly feeds: boolean,
  ) {
    let plan = wanted;
    if (plan.decode) {
      const [inflater, err] = newInflater();
      if (inflater === undefined) {
        // Without zlib the compressed body passes untouched and unread (the count is an estimate).
        this.stoppedReading = err;
        plan = { decode: false, sendDecoded: false, filter: false, unreadable: true };
      }
      this.inflater = inflater;
    }
    this.plan = plan;
    this.filter = plan.filter ? newInjectedUsageFilter(true) : undefined;
  }

  removedEvents(): number {
    return this.filter === undefined ? 0 : this.filter.dropped;
  }

  process(chunk: string, eof: boolean): string {
    let out = chunk;
    if (!this.plan.decode) {
      // The common answer: identity bytes, read as they pass.
      if (this.feeds) this.read(chunk);
    } else {
      const decoded = this.decode(chunk);
      if (this.feeds && decoded !== "") this.read(decoded);
      if (this.plan.sendDecoded) out = decoded;
    }
    const filter = this.filter;
    if (filter !== undefined) {
      out = filter.feed(out);
      if (eof) out += filter.finish();
    }
    if (eof) this.finish();
    return out;
  }

  finish(): UsageReport {
    let report = this.finished;
    if (report === undefined) {
      report = this.feeds ? this.reader.finish() : this.reader.report();
      if (this.unreadBytes > 0) {
        // Unread text cannot be measured: every unread byte counts as text (an upper bound, so
        // that an answer past the cap is never counted as free).
        report = { ...report, text_bytes: report.text_bytes + this.unreadBytes, incomplete: true };
      }
      this.finished = report;
      if (this.inflater !== undefined) this.inflater.close();
    }
    return report;
  }

  bufferedBytes(): number {
    return this.reader.bufferedBytes + (this.filter === undefined ? 0 : this.filter.bufferedBytes);
  }

  private read(bytes: string): void {
    if (this.stoppedReading !== undefined) {
      this.unreadBytes += bytes.length;
      return;
    }
    this.readBytes += bytes.length;
    if (this.readBytes > MAX_READ_BYTES) {
      this.stoppedReading = `body larger than ${MAX_READ_BYTES} bytes: not read further`;
      this.unreadBytes += bytes.length;
      return;
    }
    this.reader.feed(bytes);
  }

  /**
   * The decoded bytes of a compressed chunk ("" while zlib needs more input). Once reading
   * stopped and the client gets the compressed bytes, nothing is decoded any more.
   */
  private decode(chunk: string): string {
    const inflater = this.inflater;
    if (inflater === undefined) return "";
    if (this.stoppedReading !== undefined && !this.plan.sendDecoded) {
      this.unreadBytes += chunk.length;
      return "";
    }
    const pieces = this.decoded;
    let n = 0;
    const ok = inflater.feed(chunk, (piece) => {
      n += 1;
      pieces[n - 1] = piece;
    });
    if (!ok && this.stoppedReading === undefined) this.stoppedReading = inflater.error;
    const decoded = n === 1 ? (pieces[0] as string) : table.concat(pieces as string[], "", 1, n);
    for (let i = 0; i < n; i++) pieces[i] = undefined;
    return decoded;
  }
}

/**
 * A meter for one response. `reader` is the response's shared reader (response_reader.ts) and
 * `feeds` whether this meter feeds it; without one the meter reads with a reader of its own.
 */
export function newMeter(opts: MeterOptions, reader?: UsageReader, feeds = true): Meter {
  const plan = planFor(opts);
  let r = reader;
  if (r === undefined) {
    r = newUsageReader({ format: opts.format });
    // Decoded bodies reach the reader as identity; an unreadable encoding makes it read nothing.
    r.detect(opts.contentType, undefined, plan.decode ? undefined : opts.contentEncoding);
  }
  return new ResponseMeter(plan, opts, r, feeds);
}
