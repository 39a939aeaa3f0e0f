import { describe, expect, it } from "vitest";
import { BOX_RGB, drawBoxes } from "./draw.ts";
import { decodePng, encodePng } from "./png.ts";

describe("PNG", () => {
  it("round-trips an RGB frame", () => {
    const w = 7;
    const h = 5;
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) & 0xff);
    const png = encodePng(rgb, w, h);
    expect(png.subarray(1, 4).toString("ascii")).toBe("PNG");
    const back = decodePng(png);
    expect([back.width, back.height]).toEqual([w, h]);
    for (let i = 0; i < w * h; i++) {
      expect(Array.from(back.rgba.subarray(i * 4, i * 4 + 4))).toEqual([rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 255]);
    }
  });

  it("rejects what it cannot decode", () => {
    expect(() => decodePng(Buffer.from("GIF89a"))).toThrow(/not a PNG/);
  });
});

describe("drawBoxes", () => {
  it("draws the outline in the box colour, leaves the inside and the input alone, and clips at the border", () => {
    const w = 10;
    const h = 8;
    const rgb = new Uint8Array(w * h * 3);
    const out = drawBoxes(rgb, w, h, [{ label: "motion", score: 1, x: 2, y: 1, w: 5, h: 4 }, { label: "motion", score: 1, x: 8, y: 6, w: 10, h: 10 }], BOX_RGB, 1);
    const at = (x: number, y: number) => Array.from(out.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
    expect(at(2, 1)).toEqual([...BOX_RGB]);
    expect(at(6, 4)).toEqual([...BOX_RGB]);
    expect(at(4, 1)).toEqual([...BOX_RGB]);
    expect(at(4, 2)).toEqual([0, 0, 0]);
    expect(at(7, 1)).toEqual([0, 0, 0]);
    expect(at(8, 6)).toEqual([...BOX_RGB]);
    expect(rgb.every((v) => v === 0)).toBe(true);
  });
});
