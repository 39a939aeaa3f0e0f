import { spawn, type ChildProcessByStdio } from "node:child_process";
import { isAbsolute, resolve, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable } from "node:stream";
import type { Frame } from "./types.ts";

export type SourceKind = "rtsp" | "http" | "file";

export interface SourceInput {
  kind: SourceKind;
  /** What ffmpeg opens: the URL, or `file:` + absolute path (so ':' in a name is never read as a protocol). */
  input: string;
  /** Identity for "already being analysed": the URL as given, or the absolute path. */
  key: string;
}

/** Parses a stream_url; returns an error message instead of throwing. */
export function parseStreamUrl(raw: string, cwd = process.cwd(), fileRoot: string | null = null): SourceInput | { error: string } {
  const value = raw.trim();
  if (value === "") return { error: "stream_url must not be empty" };
  if (/[\u0000-\u001f]/.test(value)) return { error: "stream_url must not contain control characters" };
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  let path: string;
  if (scheme === "rtsp" || scheme === "rtsps" || scheme === "http" || scheme === "https") {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { error: "stream_url is not a valid URL" };
    }
    if (!url.hostname) return { error: "stream_url has no host" };
    return { kind: scheme.startsWith("rtsp") ? "rtsp" : "http", input: value, key: value };
  } else if (scheme === "file") {
    try {
      path = fileURLToPath(value);
    } catch {
      return { error: "stream_url is not a valid file:// URL" };
    }
  } else if (scheme !== undefined && scheme.length > 1) {
    // One letter is a Windows drive, which is a path; anything else is a protocol ffmpeg must not be handed.
    return { error: `stream_url scheme ${scheme}: is not supported (use rtsp://, http(s)://, file:// or a file path)` };
  } else {
    path = value;
  }
  const absolute = isAbsolute(path) ? resolve(path) : resolve(cwd, path);
  if (fileRoot !== null) {
    const rel = relative(resolve(fileRoot), absolute);
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return { error: `stream_url file paths must lie under ${fileRoot}` };
  }
  return { kind: "file", input: `file:${absolute}`, key: absolute };
}

/** Hides the password in URLs with credentials (rtsp://user:pass@cam) for /status and logs. */
export function redactUrl(value: string): string {
  return value.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^/@\s]*)@/, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : userinfo}@`;
  });
}

const PROTOCOLS: Record<SourceKind, string> = {
  // Whitelists keep a playlist or SDP from making ffmpeg open local files or other protocols.
  rtsp: "rtsp,rtsps,rtp,srtp,tcp,udp,tls",
  http: "http,https,tcp,tls,crypto",
  file: "file",
};

/** ffmpeg arguments: decode, sample at fps, scale, raw packed RGB on stdout. */
export function ffmpegArgs(source: SourceInput, fps: number, width: number, height: number): string[] {
  const args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-protocol_whitelist", PROTOCOLS[source.kind]];
  switch (source.kind) {
    case "rtsp":
      // TCP interleaving survives NAT and lossy links; -timeout (microseconds) ends a silent socket.
      args.push("-rtsp_transport", "tcp", "-timeout", "5000000");
      break;
    case "http":
      // -re paces files served over HTTP like a live source.
      args.push("-rw_timeout", "5000000", "-re");
      break;
    case "file":
      // A file plays in real time and loops, like a camera that never ends.
      args.push("-re", "-stream_loop", "-1");
      break;
  }
  args.push("-i", source.input, "-an", "-sn", "-dn", "-vf", `fps=${fps},scale=${width}:${height}`, "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1");
  return args;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 15_000, factor: 2 };

/** Delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(options.maxMs, Math.round(options.initialMs * options.factor ** attempt));
}

export type SourceState = "connecting" | "running" | "reconnecting" | "stopped";

export interface SourceOptions {
  source: SourceInput;
  fps: number;
  width: number;
  height: number;
  ffmpegPath?: string;
  backoff?: BackoffOptions;
  /** No frame for this long (also while connecting) restarts ffmpeg. */
  stallTimeoutMs?: number;
  onFrame(frame: Frame): void;
  onState?(state: SourceState): void;
}

const STDERR_KEEP = 4096;

/**
 * ffmpeg child process -> fixed-size frames. When ffmpeg exits (source gone, stream ended,
 * stalled) it is started again after an exponential backoff that resets once frames flow.
 */
export class FrameSource {
  state: SourceState = "connecting";
  framesRead = 0;
  reconnects = 0;
  lastError: string | null = null;
  nextRetryAt: number | null = null;
  private attempt = 0;
  private proc: ChildProcessByStdio<null, Readable, Readable> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private lastProgress = 0;
  private stopped = false;
  private closed: Promise<void> = Promise.resolve();
  private readonly frameBytes: number;

  constructor(private readonly options: SourceOptions) {
    this.frameBytes = options.width * options.height * 3;
  }

  start(): void {
    this.connect();
    const stallMs = this.options.stallTimeoutMs ?? 20_000;
    this.stallTimer = setInterval(() => {
      if (this.proc && Date.now() - this.lastProgress > stallMs) {
        this.lastError = `no frame for ${Math.round(stallMs / 1000)}s`;
        this.proc.kill("SIGKILL");
      }
    }, Math.min(1000, stallMs));
    this.stallTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.retryTimer = null;
    this.nextRetryAt = null;
    const proc = this.proc;
    if (proc) {
      proc.kill("SIGTERM");
      const kill = setTimeout(() => proc.kill("SIGKILL"), 2000);
      await this.closed;
      clearTimeout(kill);
    }
    this.setState("stopped");
  }

  private setState(state: SourceState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState?.(state);
  }

  private connect(): void {
    if (this.stopped) return;
    this.retryTimer = null;
    this.nextRetryAt = null;
    this.setState("connecting");
    this.lastProgress = Date.now();
    const { source, fps, width, height } = this.options;
    const proc = spawn(this.options.ffmpegPath ?? "ffmpeg", ffmpegArgs(source, fps, width, height), { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    let stderr = "";
    let pending = Buffer.allocUnsafe(this.frameBytes);
    let filled = 0;
    let connectionFrames = 0;
    let finished = false;
    let resolveClosed!: () => void;
    this.closed = new Promise((r) => (resolveClosed = r));

    proc.stdout.on("data", (chunk: Buffer) => {
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(this.frameBytes - filled, chunk.length - offset);
        chunk.copy(pending, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled === this.frameBytes) {
          const frame: Frame = {
            width,
            height,
            rgb: pending,
            index: this.framesRead++,
            pts: connectionFrames++ / fps,
            timestamp: Date.now(),
          };
          pending = Buffer.allocUnsafe(this.frameBytes);
          filled = 0;
          this.lastProgress = frame.timestamp;
          this.attempt = 0;
          this.setState("running");
          if (!this.stopped) this.options.onFrame(frame);
        }
      }
    });
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (text: string) => {
      stderr = (stderr + text).slice(-STDERR_KEEP);
    });

    const finish = (reason: string) => {
      if (finished) return;
      finished = true;
      if (this.proc === proc) this.proc = null;
      resolveClosed();
      if (this.stopped) return;
      const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
      // A stall kill sets lastError first; keep that, it says more than "killed".
      if (!(reason.includes("SIGKILL") && this.lastError?.startsWith("no frame"))) {
        this.lastError = lines.length > 0 ? `${lines[lines.length - 1]} (${reason})` : reason;
      }
      this.scheduleReconnect();
    };
    proc.on("error", (err: NodeJS.ErrnoException) => {
      finish(err.code === "ENOENT" ? `ffmpeg not found (${this.options.ffmpegPath ?? "ffmpeg"})` : `ffmpeg failed to start: ${err.message}`);
    });
    proc.on("close", (code, signal) => {
      finish(signal ? `ffmpeg killed by ${signal}` : code === 0 ? "source ended" : `ffmpeg exited with code ${code}`);
    });
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt++, this.options.backoff);
    this.reconnects++;
    this.nextRetryAt = Date.now() + delay;
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
