import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocketServer } from "ws";
import { API_PREFIX, ApiError, sendError, VideoApi } from "./api.ts";
import { selectDetector } from "./detectors/select.ts";
import type { BackoffOptions } from "./source.ts";
import type { DetectorFactory } from "./types.ts";
import { WsHub } from "./ws-hub.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const PUBLIC_DIR = join(HERE, "public");
export const DEFAULT_MODEL_PATH = join(HERE, "..", "..", "models", "rt-detr.onnx");
const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
};
const WS_PATHS = new Set(["/ws", `${API_PREFIX}/ws`]);

export interface VideoServiceOptions {
  port?: number;
  host?: string;
  /** Path to the RT-DETR ONNX model; null forces the motion detector. Default models/rt-detr.onnx. */
  modelPath?: string | null;
  /** A ready detector (tests); skips model selection. */
  detector?: DetectorFactory;
  ffmpegPath?: string;
  backoff?: BackoffOptions;
  stallTimeoutMs?: number;
  maxStreams?: number;
  wsMaxBufferedBytes?: number;
  fileRoot?: string | null;
  log?: (line: string) => void;
}

export interface VideoService {
  url: string;
  port: number;
  api: VideoApi;
  hub: WsHub;
  detector: DetectorFactory;
  close(): Promise<void>;
}

async function serveStatic(res: ServerResponse, path: string, method: string): Promise<boolean> {
  const entry = STATIC[path];
  if (!entry) return false;
  if (method !== "GET" && method !== "HEAD") {
    sendError(res, new ApiError(405, `${method} is not allowed on ${path}`), { allow: "GET, HEAD" });
    return true;
  }
  const body = await readFile(join(PUBLIC_DIR, entry.file));
  res.writeHead(200, { "content-type": entry.type, "content-length": body.length, "cache-control": "no-cache" });
  res.end(method === "HEAD" ? undefined : body);
  return true;
}

export async function startVideoService(options: VideoServiceOptions = {}): Promise<VideoService> {
  const log = options.log ?? ((line: string) => console.error(`[video-service] ${line}`));
  const detector =
    options.detector ?? (await selectDetector({ modelPath: options.modelPath === undefined ? DEFAULT_MODEL_PATH : options.modelPath }));
  log(`detector ${detector.name}: ${detector.reason}`);
  const hub = new WsHub({ maxBufferedBytes: options.wsMaxBufferedBytes });
  const api = new VideoApi({
    detector,
    hub,
    maxStreams: options.maxStreams,
    ffmpegPath: options.ffmpegPath,
    backoff: options.backoff,
    stallTimeoutMs: options.stallTimeoutMs,
    fileRoot: options.fileRoot,
    log,
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    try {
      if (await api.handle(req, res, path)) return;
      if (await serveStatic(res, path, req.method ?? "GET")) return;
      sendError(res, new ApiError(404, `no route for ${req.method} ${path}`));
    } catch (err) {
      log(`internal error on ${req.method} ${path}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) sendError(res, new ApiError(500, "internal error"));
      else res.destroy();
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!WS_PATHS.has(url.pathname)) {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + JSON.stringify({ error: { message: `no WebSocket at ${url.pathname}`, field: null } }));
      return;
    }
    const streamId = url.searchParams.get("stream_id") || null;
    wss.handleUpgrade(req, socket, head, (ws) => {
      hub.attach(ws, req, streamId, {
        type: "hello",
        detector: detector.name,
        detector_reason: detector.reason,
        stream_id: streamId,
        streams: [...api.streams.values()].map((p) => ({ stream_id: p.id, state: p.state })),
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = !options.host || options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      await api.stopAll();
      hub.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await detector.close?.();
    })());

  return { url: `http://${shownHost}:${port}`, port, api, hub, detector, close };
}
