/**
 * One reading of the response per request, whatever number of these plugins run on it: the
 * first to reach header_filter (PRIORITY order) opens and feeds the reader, later ones only look.
 * Asking rather than assuming the feeder keeps this right when plugins sit on different scopes.
 */
import { newUsageReader, type FormatOverride, type UsageReader } from "./stream_usage";

export const RESPONSE_READER_KEY = "ai_gateway_response_reader";

export interface ResponseReader {
  readonly reader: UsageReader;
  readonly feeder: string;
  /** The feeder reads the bytes before it removes events from the client's stream. */
  removedEvents: number;
  /** The feeder failed midway: the counts are partial. */
  stopped: boolean;
}

declare global {
  interface KongSharedCtx {
    [RESPONSE_READER_KEY]?: ResponseReader;
  }
}

export interface ReaderOptions {
  format?: FormatOverride;
  contentType: string | undefined;
  /** Undefined when the feeder decodes the body for the reader. */
  contentEncoding: string | undefined;
  maxJsonBytes?: number;
}

export function responseReader(): ResponseReader | undefined {
  return kong.ctx.shared[RESPONSE_READER_KEY];
}

export function openResponseReader(plugin: string, opts: ReaderOptions): ResponseReader {
  const existing = kong.ctx.shared[RESPONSE_READER_KEY];
  if (existing !== undefined) return existing;
  const reader = newUsageReader({ format: opts.format, maxJsonBytes: opts.maxJsonBytes });
  reader.detect(opts.contentType, undefined, opts.contentEncoding);
  const opened: ResponseReader = { reader, feeder: plugin, removedEvents: 0, stopped: false };
  kong.ctx.shared[RESPONSE_READER_KEY] = opened;
  return opened;
}
