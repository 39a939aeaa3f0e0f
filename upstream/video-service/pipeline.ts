import { drawBoxes } from "./draw.ts";
import { encodePng } from "./png.ts";
import { FrameSource, redactUrl, type BackoffOptions, type SourceInput, type SourceState } from "./source.ts";
import type { Box, Detector, Frame } from "./types.ts";
import type { WsHub } from "./ws-hub.ts";

export interface DetectionMessage {
  type: "detections";
  stream_id: string;
  frame: number;
  /** Wall-clock time the frame was read, epoch milliseconds. */
  timestamp: number;
  /** Seconds into the current connection to the source. */
  pts: number;
  detector: string;
  width: number;
  height: number;
  boxes: Box[];
  /** With enable_drawing: the analysed frame with the boxes drawn in, as a PNG data URL. */
  image?: string;
}

export interface PipelineOptions {
  id: string;
  rawUrl: string;
  source: SourceInput;
  fps: number;
  enableDrawing: boolean;
  detector: Detector;
  frameWidth: number;
  frameHeight: number;
  hub: WsHub;
  ffmpegPath?: string;
  backoff?: BackoffOptions;
  stallTimeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * One analysed stream: frames from ffmpeg, one detection at a time. A frame that
 * arrives while the detector is busy is skipped, so a slow detector lowers the
 * analysed rate instead of queueing frames.
 */
export class StreamPipeline {
  readonly startedAt = new Date();
  framesAnalysed = 0;
  framesSkipped = 0;
  detectorErrors = 0;
  lastDetectorError: string | null = null;
  lastFrameAt: number | null = null;
  private busy = false;
  private stopped = false;
  private readonly source: FrameSource;

  constructor(private readonly options: PipelineOptions) {
    this.source = new FrameSource({
      source: options.source,
      fps: options.fps,
      width: options.frameWidth,
      height: options.frameHeight,
      ffmpegPath: options.ffmpegPath,
      backoff: options.backoff,
      stallTimeoutMs: options.stallTimeoutMs,
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.onState(state),
    });
  }

  get id(): string {
    return this.options.id;
  }

  get key(): string {
    return this.options.source.key;
  }

  get state(): SourceState {
    return this.source.state;
  }

  start(): void {
    this.source.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.source.stop();
  }

  private onState(state: SourceState): void {
    if (state === "reconnecting") {
      this.options.log?.(`stream ${this.id}: ${this.source.lastError ?? "source lost"}; retry ${this.source.reconnects} in ${Math.max(0, (this.source.nextRetryAt ?? Date.now()) - Date.now())} ms`);
    }
    this.options.hub.notify(this.id, {
      type: "stream",
      stream_id: this.id,
      state,
      reconnects: this.source.reconnects,
      last_error: this.source.lastError,
    });
  }

  private onFrame(frame: Frame): void {
    if (this.busy) {
      this.framesSkipped++;
      return;
    }
    this.busy = true;
    const detector = this.options.detector;
    detector
      .detect(frame)
      .then((boxes) => {
        if (this.stopped) return;
        this.framesAnalysed++;
        this.lastFrameAt = frame.timestamp;
        const message: DetectionMessage = {
          type: "detections",
          stream_id: this.id,
          frame: frame.index,
          timestamp: frame.timestamp,
          pts: Math.round(frame.pts * 1000) / 1000,
          detector: detector.name,
          width: frame.width,
          height: frame.height,
          boxes,
        };
        if (this.options.enableDrawing) {
          const drawn = drawBoxes(frame.rgb, frame.width, frame.height, boxes);
          message.image = `data:image/png;base64,${encodePng(drawn, frame.width, frame.height).toString("base64")}`;
        }
        this.options.hub.broadcast(this.id, message);
      })
      .catch((err: unknown) => {
        this.detectorErrors++;
        this.lastDetectorError = err instanceof Error ? err.message : String(err);
      })
      .finally(() => {
        this.busy = false;
      });
  }

  status(): Record<string, unknown> {
    const s = this.source;
    return {
      stream_id: this.id,
      stream_url: redactUrl(this.options.rawUrl),
      source_kind: this.options.source.kind,
      state: s.state,
      fps: this.options.fps,
      enable_drawing: this.options.enableDrawing,
      detector: this.options.detector.name,
      frames_read: s.framesRead,
      frames_analysed: this.framesAnalysed,
      frames_skipped: this.framesSkipped,
      messages_dropped: this.options.hub.droppedByStream.get(this.id) ?? 0,
      reconnects: s.reconnects,
      next_retry_in_ms: s.nextRetryAt === null ? null : Math.max(0, s.nextRetryAt - Date.now()),
      last_error: s.lastError,
      detector_errors: this.detectorErrors,
      last_detector_error: this.lastDetectorError,
      started_at: this.startedAt.toISOString(),
      last_frame_at: this.lastFrameAt === null ? null : new Date(this.lastFrameAt).toISOString(),
    };
  }
}
