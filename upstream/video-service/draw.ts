import type { Box } from "./types.ts";

/** Box outline colour, the same green the web page uses for its overlay. */
export const BOX_RGB: readonly [number, number, number] = [0, 255, 102];

/** A copy of the frame with each box's outline drawn `thickness` pixels wide (clipped to the frame). */
export function drawBoxes(rgb: Uint8Array, width: number, height: number, boxes: readonly Box[], colour = BOX_RGB, thickness = 2): Uint8Array {
  const out = Uint8Array.from(rgb.subarray(0, width * height * 3));
  const paint = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (y * width + x) * 3;
    out[i] = colour[0];
    out[i + 1] = colour[1];
    out[i + 2] = colour[2];
  };
  for (const b of boxes) {
    const x0 = Math.round(b.x);
    const y0 = Math.round(b.y);
    const x1 = Math.round(b.x + b.w) - 1;
    const y1 = Math.round(b.y + b.h) - 1;
    for (let t = 0; t < thickness; t++) {
      for (let x = x0; x <= x1; x++) {
        paint(x, y0 + t);
        paint(x, y1 - t);
      }
      for (let y = y0; y <= y1; y++) {
        paint(x0 + t, y);
        paint(x1 - t, y);
      }
    }
  }
  return out;
}
