import { describe, expect, it } from "vitest";
import { connectedComponents, diffMask, dilate, mergeNearby, MotionDetector, motionBoxes, rgbToGray } from "./detectors/motion.ts";
import type { Frame } from "./types.ts";

/** A grey frame with filled rectangles [x, y, w, h, value]. */
function grayFrame(width: number, height: number, rects: [number, number, number, number, number][], background = 0): Uint8Array {
  const out = new Uint8Array(width * height).fill(background);
  for (const [x, y, w, h, v] of rects) {
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) out[yy * width + xx] = v;
  }
  return out;
}

function rgbFrame(gray: Uint8Array, width: number, height: number, index: number): Frame {
  const rgb = new Uint8Array(gray.length * 3);
  gray.forEach((v, i) => rgb.fill(v, i * 3, i * 3 + 3));
  return { width, height, rgb, index, pts: index / 5, timestamp: Date.now() };
}

function maskFrom(rows: string[]): { mask: Uint8Array; width: number; height: number } {
  const width = rows[0].length;
  return { mask: Uint8Array.from(rows.join("").split(""), (c) => (c === "#" ? 1 : 0)), width, height: rows.length };
}

describe("rgbToGray", () => {
  it("weights the channels like BT.601 luma", () => {
    const gray = rgbToGray(Uint8Array.from([255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]), 5, 1);
    expect(Array.from(gray)).toEqual([255, 76, 149, 28, 0]);
  });

  it("rejects a buffer smaller than the frame", () => {
    expect(() => rgbToGray(new Uint8Array(5), 2, 1)).toThrow(/6 needed/);
  });
});

describe("diffMask", () => {
  it("marks pixels whose difference exceeds the threshold in either direction", () => {
    const { mask, changed } = diffMask(Uint8Array.from([0, 100, 200, 50]), Uint8Array.from([25, 126, 150, 50]), 25);
    expect(Array.from(mask)).toEqual([0, 1, 1, 0]);
    expect(changed).toBe(2);
  });
});

describe("connectedComponents", () => {
  const { mask, width, height } = maskFrom([
    "##......",
    "##......",
    "..#.....",
    "......##",
    ".....###",
  ]);

  it("joins diagonal neighbours with 8-connectivity", () => {
    const comps = connectedComponents(mask, width, height, 8);
    expect(comps).toEqual([
      { x0: 0, y0: 0, x1: 2, y1: 2, pixels: 5 },
      { x0: 5, y0: 3, x1: 7, y1: 4, pixels: 5 },
    ]);
  });

  it("keeps diagonal neighbours apart with 4-connectivity", () => {
    const comps = connectedComponents(mask, width, height, 4);
    expect(comps.map((c) => [c.x0, c.y0, c.x1, c.y1, c.pixels])).toEqual([
      [0, 0, 1, 1, 4],
      [2, 2, 2, 2, 1],
      [5, 3, 7, 4, 5],
    ]);
  });

  it("handles a region covering the whole frame without recursion limits", () => {
    const big = new Uint8Array(400 * 300).fill(1);
    expect(connectedComponents(big, 400, 300)).toEqual([{ x0: 0, y0: 0, x1: 399, y1: 299, pixels: 120000 }]);
  });

  it("finds nothing in an empty mask", () => {
    expect(connectedComponents(new Uint8Array(12), 4, 3)).toEqual([]);
  });
});

describe("dilate and mergeNearby", () => {
  it("grows set pixels by the radius, clipped at the border", () => {
    const { mask, width, height } = maskFrom(["#....", ".....", "....."]);
    const grown = dilate(mask, width, height, 1);
    expect(Array.from(grown)).toEqual([1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("merges boxes within the gap and keeps distant ones", () => {
    const merged = mergeNearby(
      [
        { x0: 0, y0: 0, x1: 4, y1: 4, pixels: 10 },
        { x0: 7, y0: 0, x1: 9, y1: 4, pixels: 5 },
        { x0: 30, y0: 30, x1: 31, y1: 31, pixels: 4 },
      ],
      2,
    );
    expect(merged).toEqual([
      { x0: 0, y0: 0, x1: 9, y1: 4, pixels: 15 },
      { x0: 30, y0: 30, x1: 31, y1: 31, pixels: 4 },
    ]);
    expect(mergeNearby([{ x0: 0, y0: 0, x1: 4, y1: 4, pixels: 10 }, { x0: 8, y0: 0, x1: 9, y1: 4, pixels: 5 }], 2)).toHaveLength(2);
  });
});

describe("motionBoxes", () => {
  const W = 64;
  const H = 48;

  it("boxes a square that moved, in the region it covered, and nothing where it stayed still", () => {
    const before = grayFrame(W, H, [[10, 10, 8, 8, 255], [50, 30, 6, 6, 200]]);
    const after = grayFrame(W, H, [[14, 12, 8, 8, 255], [50, 30, 6, 6, 200]]);
    const boxes = motionBoxes(before, after, W, H, { dilateRadius: 1, mergeGap: 2, minArea: 4 });
    expect(boxes).toHaveLength(1);
    const [b] = boxes;
    expect(b.label).toBe("motion");
    // Union of old and new square (10..21 x 10..19), grown by the 1-pixel dilation at most.
    expect(b.x).toBeGreaterThanOrEqual(9);
    expect(b.y).toBeGreaterThanOrEqual(9);
    expect(b.x + b.w).toBeLessThanOrEqual(23);
    expect(b.y + b.h).toBeLessThanOrEqual(21);
    expect(b.x + b.w).toBeGreaterThanOrEqual(22);
    expect(b.score).toBeGreaterThan(0);
    expect(b.score).toBeLessThanOrEqual(1);
  });

  it("scores a fully changed region as 1 and a sparse one lower", () => {
    const solid = motionBoxes(grayFrame(W, H, []), grayFrame(W, H, [[5, 5, 10, 10, 255]]), W, H, { dilateRadius: 0 });
    expect(solid).toEqual([{ label: "motion", score: 1, x: 5, y: 5, w: 10, h: 10 }]);
    const ring = grayFrame(W, H, [[5, 5, 10, 10, 255], [7, 7, 6, 6, 0]]);
    const [sparse] = motionBoxes(grayFrame(W, H, []), ring, W, H, { dilateRadius: 0 });
    expect(sparse).toMatchObject({ x: 5, y: 5, w: 10, h: 10 });
    expect(sparse.score).toBeCloseTo(64 / 100, 3);
  });

  it("drops changes below the threshold and regions below the minimum area", () => {
    expect(motionBoxes(grayFrame(W, H, [], 100), grayFrame(W, H, [], 120), W, H, { threshold: 25 })).toEqual([]);
    expect(motionBoxes(grayFrame(W, H, []), grayFrame(W, H, [[3, 3, 2, 2, 255]]), W, H, { minArea: 5, dilateRadius: 0 })).toEqual([]);
  });

  it("treats a change of most of the frame as a scene cut, not motion", () => {
    expect(motionBoxes(grayFrame(W, H, [], 0), grayFrame(W, H, [], 255), W, H)).toEqual([]);
  });

  it("returns the largest boxes first and at most maxBoxes", () => {
    const after = grayFrame(W, H, [[2, 2, 4, 4, 255], [20, 2, 10, 10, 255], [40, 30, 6, 6, 255]]);
    const boxes = motionBoxes(grayFrame(W, H, []), after, W, H, { dilateRadius: 0, minArea: 1, maxBoxes: 2 });
    expect(boxes.map((b) => b.w * b.h)).toEqual([100, 36]);
  });
});

describe("MotionDetector", () => {
  it("reports nothing for the first frame and the moving square from the second on", async () => {
    const detector = new MotionDetector({ minArea: 4 });
    const a = grayFrame(32, 24, [[2, 8, 6, 6, 255]]);
    const b = grayFrame(32, 24, [[12, 8, 6, 6, 255]]);
    expect(await detector.detect(rgbFrame(a, 32, 24, 0))).toEqual([]);
    const boxes = await detector.detect(rgbFrame(b, 32, 24, 1));
    expect(boxes.length).toBeGreaterThan(0);
    const left = Math.min(...boxes.map((x) => x.x));
    const right = Math.max(...boxes.map((x) => x.x + x.w));
    expect(left).toBeLessThanOrEqual(3);
    expect(right).toBeGreaterThanOrEqual(17);
    for (const box of boxes) {
      expect(box.y).toBeGreaterThanOrEqual(7);
      expect(box.y + box.h).toBeLessThanOrEqual(15);
    }
    // Unchanged frame: nothing moves.
    expect(await detector.detect(rgbFrame(b, 32, 24, 2))).toEqual([]);
  });

  it("restarts its reference when the frame size changes", async () => {
    const detector = new MotionDetector();
    await detector.detect(rgbFrame(grayFrame(8, 8, []), 8, 8, 0));
    expect(await detector.detect(rgbFrame(grayFrame(16, 8, [[0, 0, 8, 8, 255]]), 16, 8, 1))).toEqual([]);
  });
});
