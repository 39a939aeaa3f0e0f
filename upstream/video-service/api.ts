import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StreamPipeline } from "./pipeline.ts";
import { parseStreamUrl, type BackoffOptions, type SourceInput } from "./source.ts";
import type { DetectorFactory } from "./types.ts";
import type { WsHub } from "./ws-hub.ts";

export const API_PREFIX = "/api/v1/video";
const MAX_BODY_BYTES = 64 * 1024;
const MAX_URL_LENGTH = 4096;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface StartRequest {
  streamUrl: string;
  source: SourceInput;
  enableDrawing: boolean;
  fps: number;
}

export interface ValidationContext {
  cwd?: string;
  /** When set, file sources must lie under this directory. */
  fileRoot?: string | null;
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "request body must be a JSON object");
  return body as Record<string, unknown>;
}

function rejectUnknown(body: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!known.includes(key)) throw new ApiError(400, `unknown field ${key}`, key);
  }
}

/** Checks a POST /start body; throws ApiError(400) naming the field. */
export function validateStart(body: unknown, ctx: ValidationContext = {}): StartRequest {
  const o = requireObject(body);
  rejectUnknown(o, ["stream_url", "enable_drawing", "fps"]);
  const url = o.stream_url;
  if (url === undefined || url === null) throw new ApiError(400, "stream_url is required", "stream_url");
  if (typeof url !== "string") throw new ApiError(400, "stream_url must be a string", "stream_url");
  if (url.length > MAX_URL_LENGTH) throw new ApiError(400, `stream_url must be at most ${MAX_URL_LENGTH} characters`, "stream_url");
  const source = parseStreamUrl(url, ctx.cwd, ctx.fileRoot ?? null);
  if ("error" in source) throw new ApiError(400, source.error, "stream_url");
  const drawing = o.enable_drawing ?? false;
  if (typeof drawing !== "boolean") throw new ApiError(400, "enable_drawing must be a boolean", "enable_drawing");
  const fps = o.fps ?? 5;
  if (typeof fps !== "number" || !Number.isFinite(fps)) throw new ApiError(400, "fps must be a number", "fps");
  if (fps < 1 || fps > 30) throw new ApiError(400, "fps must be between 1 and 30", "fps");
  return { streamUrl: url.trim(), source, enableDrawing: drawing, fps };
}

/** Checks a POST /stop body: exactly one of stream_id, stream_url. */
export function validateStop(body: unknown): { streamId: string } | { streamUrl: string } {
  const o = requireObject(body);
  rejectUnknown(o, ["stream_id", "stream_url"]);
  const { stream_id: id, stream_url: url } = o;
  if (id !== undefined && url !== undefined) throw new ApiError(400, "give stream_id or stream_url, not both", "stream_id");
  if (id !== undefined) {
    if (typeof id !== "string" || id === "") throw new ApiError(400, "stream_id must be a non-empty string", "stream_id");
    return { streamId: id };
  }
  if (url !== undefined) {
    if (typeof url !== "string" || url.trim() === "") throw new ApiError(400, "stream_url must be a non-empty string", "stream_url");
    return { streamUrl: url };
  }
  throw new ApiError(400, "stream_id or stream_url is required", "stream_id");
}

/** Reads at most MAX_BODY_BYTES and parses JSON; an empty body is {}. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "request body is not valid JSON");
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, { error: { message: err.message, field: err.field, ...err.extra } }, headers);
}

export interface VideoApiOptions {
  detector: DetectorFactory;
  hub: WsHub;
  maxStreams?: number;
  ffmpegPath?: string;
  backoff?: BackoffOptions;
  stallTimeoutMs?: number;
  fileRoot?: string | null;
  log?: (line: string) => void;
}

/** The control API and the set of running streams. */
export class VideoApi {
  readonly streams = new Map<string, StreamPipeline>();
  private readonly startedAt = Date.now();

  constructor(private readonly options: VideoApiOptions) {}

  /** Handles the API routes; returns false when the path is not one of them. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const route = path.startsWith(`${API_PREFIX}/`) ? path.slice(API_PREFIX.length) : path;
    const methods: Record<string, string[]> = { "/start": ["POST"], "/stop": ["POST"], "/status": ["GET", "HEAD"], "/health": ["GET", "HEAD"] };
    const allowed = methods[route];
    if (!allowed) return false;
    const method = req.method ?? "GET";
    try {
      if (!allowed.includes(method)) {
        throw new ApiError(405, `${method} is not allowed on ${path}`, null, {});
      }
      switch (route) {
        case "/health":
          sendJson(res, 200, this.health());
          break;
        case "/status":
          sendJson(res, 200, this.status());
          break;
        case "/start":
          sendJson(res, 201, await this.start(validateStart(await readJson(req), { fileRoot: this.options.fileRoot })));
          break;
        case "/stop":
          sendJson(res, 200, await this.stop(validateStop(await readJson(req))));
          break;
      }
    } catch (err) {
      const apiErr = err instanceof ApiError ? err : new ApiError(500, "internal error");
      if (!(err instanceof ApiError)) this.options.log?.(`internal error on ${method} ${path}: ${err instanceof Error ? err.stack : String(err)}`);
      sendError(res, apiErr, apiErr.status === 405 ? { allow: allowed.join(", ") } : {});
    }
    return true;
  }

  async start(request: StartRequest): Promise<Record<string, unknown>> {
    for (const existing of this.streams.values()) {
      if (existing.key === request.source.key) {
        throw new ApiError(409, "stream_url is already being analysed", "stream_url", { stream_id: existing.id });
      }
    }
    const max = this.options.maxStreams ?? 16;
    if (this.streams.size >= max) throw new ApiError(503, `at most ${max} streams can be analysed at once`, null);
    const factory = this.options.detector;
    const pipeline = new StreamPipeline({
      id: randomUUID(),
      rawUrl: request.streamUrl,
      source: request.source,
      fps: request.fps,
      enableDrawing: request.enableDrawing,
      detector: factory.create(),
      frameWidth: factory.frameWidth,
      frameHeight: factory.frameHeight,
      hub: this.options.hub,
      ffmpegPath: this.options.ffmpegPath,
      backoff: this.options.backoff,
      stallTimeoutMs: this.options.stallTimeoutMs,
      log: this.options.log,
    });
    this.streams.set(pipeline.id, pipeline);
    pipeline.start();
    this.options.log?.(`stream ${pipeline.id} started (${request.source.kind}, ${request.fps} fps, detector ${factory.name})`);
    return { ...pipeline.status(), ws_path: `/ws?stream_id=${pipeline.id}` };
  }

  async stop(which: { streamId: string } | { streamUrl: string }): Promise<Record<string, unknown>> {
    let pipeline: StreamPipeline | undefined;
    if ("streamId" in which) {
      pipeline = this.streams.get(which.streamId);
      if (!pipeline) throw new ApiError(404, `no stream with id ${which.streamId}`, "stream_id");
    } else {
      const parsed = parseStreamUrl(which.streamUrl, undefined, null);
      const key = "error" in parsed ? which.streamUrl.trim() : parsed.key;
      pipeline = [...this.streams.values()].find((p) => p.key === key);
      if (!pipeline) throw new ApiError(404, "that stream_url is not being analysed", "stream_url");
    }
    this.streams.delete(pipeline.id);
    await pipeline.stop();
    this.options.hub.closeSubscribers(pipeline.id);
    this.options.log?.(`stream ${pipeline.id} stopped`);
    return { ...pipeline.status(), stopped: true };
  }

  async stopAll(): Promise<void> {
    const all = [...this.streams.values()];
    this.streams.clear();
    await Promise.all(all.map((p) => p.stop()));
  }

  health(): Record<string, unknown> {
    return { status: "ok", detector: this.options.detector.name, streams: this.streams.size, uptime_s: Math.round((Date.now() - this.startedAt) / 1000) };
  }

  status(): Record<string, unknown> {
    const hub = this.options.hub;
    const factory = this.options.detector;
    return {
      detector: { name: factory.name, reason: factory.reason, frame_width: factory.frameWidth, frame_height: factory.frameHeight },
      streams: [...this.streams.values()].map((p) => p.status()),
      websocket: {
        clients: [...hub.clients].map((c) => ({ id: c.id, stream_id: c.streamId, sent: c.sent, dropped: c.dropped, buffered_bytes: c.sink.bufferedAmount })),
        messages_dropped: hub.droppedTotal,
      },
    };
  }
}
