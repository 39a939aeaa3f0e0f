// Shared by the video-service vitest suites (upstream/video-service, spec/video); not a test file itself.
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import WebSocket from "ws";

const run = promisify(execFile);

/** Fails (never skips) with what to install when a binary the suite needs is missing. */
export function requireBinary(name: string, install: string): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not installed; the video-service tests need it (${install})`);
}

export function requireFfmpeg(): string {
  const path = requireBinary("ffmpeg", "apt-get install -y --no-install-recommends ffmpeg");
  execFileSync(path, ["-hide_banner", "-version"], { stdio: "ignore" });
  return path;
}

/**
 * The moving square in the generated video, in the coordinates of a 320x180 analysis frame:
 * 40x40 pixels, top at y=70, left edge at x = 20 + 60 t (t in seconds).
 */
export const SQUARE = {
  size: 40,
  y: 70,
  x(t: number): number {
    return 20 + 60 * t;
  },
};

/**
 * Writes a 640x360, 25 fps video of a white 80x80 square moving right over black
 * (twice SQUARE's coordinates). `.ts` gives MPEG-TS, which plays from any byte (for HTTP drop tests).
 */
export async function makeTestVideo(path: string, seconds = 4): Promise<string> {
  const graph = `color=c=black:s=640x360:r=25:d=${seconds}[bg];color=c=white:s=80x80:r=25[sq];[bg][sq]overlay=x='40+120*t':y=140:shortest=1`;
  const container = path.endsWith(".ts") ? ["-f", "mpegts"] : ["-movflags", "+faststart"];
  await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", ...container, path]);
  return path;
}

/** Grey noise (incompressible once drawn to PNG): large messages for backpressure tests. */
export async function makeNoiseVideo(path: string, seconds = 3): Promise<string> {
  await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", `nullsrc=s=320x180:r=30:d=${seconds},geq=lum='random(1)*255':cb=128:cr=128`, "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", path]);
  return path;
}

export async function waitFor<T>(what: string, check: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface WsMessage {
  type: string;
  [key: string]: unknown;
}

/** A WebSocket client that records every JSON message it receives. */
export class Collector {
  readonly messages: WsMessage[] = [];
  closeCode: number | null = null;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket upgrade answered HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) =>
      ws.once("close", (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
    ws.on("message", (data) => this.messages.push(JSON.parse(data.toString()) as WsMessage));
  }

  static async open(url: string): Promise<Collector> {
    const c = new Collector(new WebSocket(url));
    await c.opened;
    return c;
  }

  detections(streamId?: string): WsMessage[] {
    return this.messages.filter((m) => m.type === "detections" && (streamId === undefined || m.stream_id === streamId));
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000, "test done");
    return this.closed;
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
