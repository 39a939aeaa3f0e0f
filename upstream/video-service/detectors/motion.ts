import type { Box, Detector, Frame } from "../types.ts";

/** A connected region of set mask pixels: inclusive bounds and pixel count. */
export interface Component {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  pixels: number;
}

export interface MotionOptions {
  /** Grey-level difference (0..255) above which a pixel counts as changed. */
  threshold?: number;
  /** Smallest region kept, in changed pixels. */
  minArea?: number;
  /** Dilation radius in pixels; joins the fragments one moving object leaves in the difference. */
  dilateRadius?: number;
  /** Boxes whose gap is at most this many pixels are merged into one. */
  mergeGap?: number;
  maxBoxes?: number;
  /** When more of the frame than this changes (scene cut, exposure jump) the frame only becomes the new reference. */
  maxChangedFraction?: number;
  connectivity?: 4 | 8;
}

const DEFAULTS: Required<MotionOptions> = {
  threshold: 25,
  minArea: 16,
  dilateRadius: 1,
  mergeGap: 4,
  maxBoxes: 32,
  maxChangedFraction: 0.8,
  connectivity: 8,
};

/** ITU-R BT.601 luma in integer arithmetic. */
export function rgbToGray(rgb: Uint8Array, width: number, height: number, out = new Uint8Array(width * height)): Uint8Array {
  const n = width * height;
  if (rgb.length < n * 3) throw new RangeError(`rgb buffer holds ${rgb.length} bytes, ${n * 3} needed`);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (rgb[j] * 77 + rgb[j + 1] * 150 + rgb[j + 2] * 29) >> 8;
  }
  return out;
}

/** 1 where |a - b| > threshold. Returns the mask and how many pixels are set. */
export function diffMask(a: Uint8Array, b: Uint8Array, threshold: number): { mask: Uint8Array; changed: number } {
  if (a.length !== b.length) throw new RangeError("frames differ in size");
  const mask = new Uint8Array(a.length);
  let changed = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (d > threshold || -d > threshold) {
      mask[i] = 1;
      changed++;
    }
  }
  return { mask, changed };
}

/** Square dilation as two separable passes (rows, then columns), O(pixels * radius). */
export function dilate(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  if (radius <= 0) return mask;
  const rows = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (!mask[row + x]) continue;
      const from = Math.max(0, x - radius);
      const to = Math.min(width - 1, x + radius);
      for (let k = from; k <= to; k++) rows[row + k] = 1;
    }
  }
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (!rows[row + x]) continue;
      const from = Math.max(0, y - radius);
      const to = Math.min(height - 1, y + radius);
      for (let k = from; k <= to; k++) out[k * width + x] = 1;
    }
  }
  return out;
}

/**
 * Connected regions of a 0/1 mask by flood fill with an explicit stack
 * (bounded by the pixel count; no recursion depth to overflow).
 */
export function connectedComponents(mask: Uint8Array, width: number, height: number, connectivity: 4 | 8 = 8): Component[] {
  if (mask.length !== width * height) throw new RangeError("mask size does not match width*height");
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  const components: Component[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    const c: Component = { x0: width, y0: height, x1: -1, y1: -1, pixels: 0 };
    while (top > 0) {
      const p = stack[--top];
      const x = p % width;
      const y = (p - x) / width;
      c.pixels++;
      if (x < c.x0) c.x0 = x;
      if (x > c.x1) c.x1 = x;
      if (y < c.y0) c.y0 = y;
      if (y > c.y1) c.y1 = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (connectivity === 4 && dx !== 0 && dy !== 0) continue;
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (mask[q] && !seen[q]) {
            seen[q] = 1;
            stack[top++] = q;
          }
        }
      }
    }
    components.push(c);
  }
  return components;
}

function gapBetween(a: Component, b: Component): number {
  const gx = Math.max(0, Math.max(a.x0, b.x0) - Math.min(a.x1, b.x1) - 1);
  const gy = Math.max(0, Math.max(a.y0, b.y0) - Math.min(a.y1, b.y1) - 1);
  return Math.max(gx, gy);
}

/** Merges components whose bounding boxes are within `gap` pixels, until none are. */
export function mergeNearby(components: Component[], gap: number): Component[] {
  const out = components.map((c) => ({ ...c }));
  let merged = true;
  while (merged) {
    merged = false;
    outer: for (let i = 0; i < out.length; i++) {
      for (let j = i + 1; j < out.length; j++) {
        if (gapBetween(out[i], out[j]) <= gap) {
          const a = out[i];
          const b = out[j];
          out[i] = {
            x0: Math.min(a.x0, b.x0),
            y0: Math.min(a.y0, b.y0),
            x1: Math.max(a.x1, b.x1),
            y1: Math.max(a.y1, b.y1),
            pixels: a.pixels + b.pixels,
          };
          out.splice(j, 1);
          merged = true;
          break outer;
        }
      }
    }
  }
  return out;
}

/**
 * Boxes where `current` differs from `previous`. Pixel counts come from the
 * undilated mask so the score is the changed fraction of each box.
 */
export function motionBoxes(previous: Uint8Array, current: Uint8Array, width: number, height: number, options: MotionOptions = {}): Box[] {
  const o = { ...DEFAULTS, ...options };
  const { mask, changed } = diffMask(previous, current, o.threshold);
  if (changed === 0 || changed > o.maxChangedFraction * width * height) return [];
  const grown = dilate(mask, width, height, o.dilateRadius);
  const regions = mergeNearby(connectedComponents(grown, width, height, o.connectivity), o.mergeGap);
  const boxes: Box[] = [];
  for (const r of regions) {
    let pixels = 0;
    for (let y = r.y0; y <= r.y1; y++) {
      for (let x = r.x0, i = y * width + r.x0; x <= r.x1; x++, i++) pixels += mask[i];
    }
    if (pixels < o.minArea) continue;
    const w = r.x1 - r.x0 + 1;
    const h = r.y1 - r.y0 + 1;
    boxes.push({ label: "motion", score: Math.round((pixels / (w * h)) * 1000) / 1000, x: r.x0, y: r.y0, w, h });
  }
  boxes.sort((a, b) => b.w * b.h - a.w * a.h);
  return boxes.slice(0, o.maxBoxes);
}

/** Frame differencing against the previous analysed frame of the same stream. */
export class MotionDetector implements Detector {
  readonly name = "motion";
  private previous: Uint8Array | null = null;
  private previousSize = "";

  constructor(private readonly options: MotionOptions = {}) {}

  async detect(frame: Frame): Promise<Box[]> {
    const gray = rgbToGray(frame.rgb, frame.width, frame.height);
    const size = `${frame.width}x${frame.height}`;
    const previous = this.previous;
    const comparable = previous !== null && this.previousSize === size;
    this.previous = gray;
    this.previousSize = size;
    return comparable ? motionBoxes(previous, gray, frame.width, frame.height, this.options) : [];
  }
}
