/** One decoded frame, packed RGB (3 bytes per pixel, row-major), at the analysis size. */
export interface Frame {
  width: number;
  height: number;
  rgb: Uint8Array;
  /** Frame number in the stream, counted across reconnects. */
  index: number;
  /** Seconds since the start of the current ffmpeg connection (frame count / fps). */
  pts: number;
  /** Wall-clock time the frame was read, epoch milliseconds. */
  timestamp: number;
}

/** A detection in frame pixel coordinates (x, y = top-left corner). */
export interface Box {
  label: string;
  score: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Detector {
  name: string;
  detect(frame: Frame): Promise<Box[]>;
}

/**
 * Makes one Detector per stream: motion keeps the previous frame per stream,
 * RT-DETR shares one inference session between streams.
 */
export interface DetectorFactory {
  name: string;
  /** Why this detector is active (e.g. why RT-DETR is not), shown in /status. */
  reason: string;
  /** Frame size the source should scale to for this detector. */
  frameWidth: number;
  frameHeight: number;
  create(): Detector;
  close?(): Promise<void>;
}
