// Reads one response on its way to the client (decoding it when the upstream compressed anyway)
// and removes the usage chunk the plugin injected. Only the unfinished event is held.

import { newInjectedUsageFilter, type EventFilter } from "../ai-gateway-shared/event_filter";
import { framingFromHeaders, newUsageReader, type FormatOverride, type UsageReader, type UsageReport } from "../ai-gateway-shared/stream_usage";
import { newInflater, type Inflater } from "./inflate";

export interface MeterOptions {
  format: FormatOverride;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** The plugin added include_usage. */
  injected: boolean;
}

export interface MeterPlan {
  decode: boolean;
  /** Content-Encoding and Content-Length must go. */
  sendDecoded: boolean;
  /** Content-Length must go. */
  filter: boolean;
  unreadable: boolean;
}

/** Bounds what a compression bomb costs; past it every byte counts as a character of the estimate. */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

export function planFor(opts: MeterOptions): MeterPlan {
  const enc = opts.contentEncoding === undefined ? "" : string.lower(opts.contentEncoding);
  const compressed = enc !== "" && enc !== "identity";
  const decodable = enc === "gzip" || enc === "x-gzip" || enc === "deflate";
  // Only an SSE stream carries the injected usage chunk.
  const filter = opts.injected && framingFromHeaders(undefined, opts.contentType) === "sse";
  return {
    decode: compressed && decodable,
    // A compressed stream cannot be filtered in place; HTTP always allows identity instead.
    sendDecoded: compressed && decodable && filter,
    filter: filter && (!compressed || decodable),
    unreadable: compressed && !decodable,
  };
}

export interface Meter {
  readonly plan: MeterPlan;
  readonly reader: UsageReader;
  /** Returns the bytes for the client. */
  process(chunk: string, eof: boolean): string;
  finish(): UsageReport;
  readonly stoppedReading: string | undefined;
  removedEvents(): number;
  bufferedBytes(): number;
}

class ResponseMeter implements Meter {
  stoppedReading: string | undefined = undefined;
  readonly plan: MeterPlan;
  private readonly filter: EventFilter | undefined;
  private inflater: Inflater | undefined;
  private finished: UsageReport | undefined;
  private readBytes = 0;
  private unreadBytes = 0;
  private readonly decoded: (string | undefined)[] = [];

  constructor(
    wanted: MeterPlan,
    opts: MeterOptions,
    readonly reader: UsageReader,
    /** False when another plugin feeds the shared reader. */
    private readonly feeds: boolean,
  ) {
    let plan = wanted;
    if (plan.decode) {
      const [inflater, err] = newInflater();
      if (inflater === undefined) {
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
        // An upper bound, so that an answer past the cap is never free.
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

  /** "" while zlib needs more input. */
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

/** Without a shared `reader` the meter reads with one of its own. */
export function newMeter(opts: MeterOptions, reader?: UsageReader, feeds = true): Meter {
  const plan = planFor(opts);
  let r = reader;
  if (r === undefined) {
    r = newUsageReader({ format: opts.format });
    // Decoded bodies reach the reader as identity.
    r.detect(opts.contentType, undefined, plan.decode ? undefined : opts.contentEncoding);
  }
  return new ResponseMeter(plan, opts, r, feeds);
}
