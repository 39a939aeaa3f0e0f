// Reads one response on its way to the client: every chunk goes to the shared usage reader
// (after gzip decoding when the upstream compressed anyway) and, when the plugin injected
// include_usage, through the shared event filter that removes the usage-only chunk. Only the
// unfinished event is ever held, so memory stays bounded whatever the response's length.

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
  /** One body chunk in; the bytes for the client out. */
  process(chunk: string, eof: boolean): string;
  /** The usage so far; final once the body ended (or when the request ends without its end). */
  finish(): UsageReport;
  /** Gzip decoding failed or hit its cap: what was read is partial. */
  readonly decodeError: string | undefined;
  /** Bytes held right now (the unfinished event in the reader and in the filter). */
  bufferedBytes(): number;
}

class ResponseMeter implements Meter {
  decodeError: string | undefined = undefined;
  private readonly reader: UsageReader;
  private readonly filter: EventFilter | undefined;
  private inflater: Inflater | undefined;
  private finished: UsageReport | undefined;
  private readonly pieces: string[] = [];

  readonly plan: MeterPlan;

  constructor(wanted: MeterPlan, opts: MeterOptions) {
    let plan = wanted;
    if (plan.decode) {
      const [inflater, err] = newInflater();
      if (inflater === undefined) {
        // Without zlib the compressed body passes untouched and unread (the count is an estimate).
        this.decodeError = err;
        plan = { decode: false, sendDecoded: false, filter: false, unreadable: true };
      }
      this.inflater = inflater;
    }
    this.plan = plan;
    this.reader = newUsageReader({ format: opts.format });
    // Decoded bodies reach the reader as identity; an unreadable encoding makes it read nothing.
    this.reader.detect(opts.contentType, undefined, plan.decode ? undefined : opts.contentEncoding);
    this.filter = plan.filter ? newInjectedUsageFilter(true) : undefined;
  }

  process(chunk: string, eof: boolean): string {
    const readable = this.plan.decode ? this.decode(chunk) : chunk;
    if (readable !== "") this.reader.feed(readable);
    let out = this.plan.sendDecoded ? readable : chunk;
    if (this.filter !== undefined) {
      out = this.filter.feed(out);
      if (eof) out += this.filter.finish();
    }
    if (eof) this.finish();
    return out;
  }

  finish(): UsageReport {
    if (this.finished === undefined) {
      this.finished = this.reader.finish();
      if (this.inflater !== undefined) this.inflater.close();
    }
    return this.finished;
  }

  bufferedBytes(): number {
    return this.reader.bufferedBytes + (this.filter === undefined ? 0 : this.filter.bufferedBytes);
  }

  /** The decoded bytes of a compressed chunk ("" while zlib needs more input, or once decoding failed). */
  private decode(chunk: string): string {
    const inflater = this.inflater;
    if (inflater === undefined || this.decodeError !== undefined) return "";
    const pieces = this.pieces;
    let n = 0;
    const ok = inflater.feed(chunk, (piece) => {
      n += 1;
      pieces[n - 1] = piece;
    });
    if (!ok) this.decodeError = inflater.error;
    const decoded = n === 1 ? pieces[0] : table.concat(pieces, "", 1, n);
    for (let i = 0; i < n; i++) pieces[i] = undefined as unknown as string;
    return decoded;
  }
}

export function newMeter(opts: MeterOptions): Meter {
  return new ResponseMeter(planFor(opts), opts);
}
