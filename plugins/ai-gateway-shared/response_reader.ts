/**
 * One reading of the response per request, whatever number of these plugins run on it.
 *
 * token-rate-limiting (PRIORITY 905) and upstream-disconnect-log (15) both need the usage
 * reader's view of the response. The first of them to reach header_filter (Kong runs filters in
 * PRIORITY order) opens the reader and feeds it in its body_filter; a later one finds it in
 * `kong.ctx.shared` and only looks. Each plugin asks whether it is the feeder, so the stream is
 * read once even when the plugins are configured on different scopes, and a plugin that runs
 * alone reads it itself. When the feeder did not reach header_filter's reading (it refused the
 * request, or its access never ran because another plugin answered first) the next plugin opens
 * the reader instead.
 */
import { newUsageReader, type FormatOverride, type UsageReader } from "./stream_usage";

export const RESPONSE_READER_KEY = "ai_gateway_response_reader";

export interface ResponseReader {
  readonly reader: UsageReader;
  /** The plugin that feeds the reader, once per body chunk. */
  readonly feeder: string;
  /**
   * The feeder reads the upstream's bytes (decoded when compressed) before it changes them:
   * events it removed from the client's stream (an injected usage chunk) are counted here.
   */
  removedEvents: number;
  /** The feeder stopped reading midway (an error): the reader's counts are partial. */
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
  /** The Content-Encoding the reader sees (undefined when the feeder decodes the body for it). */
  contentEncoding: string | undefined;
  maxJsonBytes?: number;
}

/** The response's reader if a plugin opened one. */
export function responseReader(): ResponseReader | undefined {
  return kong.ctx.shared[RESPONSE_READER_KEY];
}

/** The response's reader, opened for `plugin` to feed unless another plugin opened it first. */
export function openResponseReader(plugin: string, opts: ReaderOptions): ResponseReader {
  const existing = kong.ctx.shared[RESPONSE_READER_KEY];
  if (existing !== undefined) return existing;
  const reader = newUsageReader({ format: opts.format, maxJsonBytes: opts.maxJsonBytes });
  reader.detect(opts.contentType, undefined, opts.contentEncoding);
  const opened: ResponseReader = { reader, feeder: plugin, removedEvents: 0, stopped: false };
  kong.ctx.shared[RESPONSE_READER_KEY] = opened;
  return opened;
}
