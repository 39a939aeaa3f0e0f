import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COCO_CATEGORY_IDS, COCO_LABELS, cocoLabel } from "./detectors/coco-labels.ts";
import {
  decodeCombined,
  decodeLabelled,
  decodeOutputs,
  decodeQueries,
  detectLayout,
  loadRtDetr,
  preprocess,
  RTDETR_INPUT_SIZE,
  sigmoid,
  type OrtModule,
  type OrtSession,
  type OrtTensor,
} from "./detectors/rtdetr.ts";
import { selectDetector } from "./detectors/select.ts";
import { tinyRtDetrModel } from "./tiny-onnx.ts";

const ortInstalled = await import("onnxruntime-node" as string).then(
  () => true,
  () => false,
);
if (!ortInstalled) console.log("onnxruntime-node is not installed: the real-runtime RT-DETR test does not run here (the fallback tests do)");

const logit = (p: number) => Math.log(p / (1 - p));

describe("COCO labels", () => {
  it("has the 80 classes with their category ids", () => {
    expect(COCO_LABELS).toHaveLength(80);
    expect(new Set(COCO_LABELS).size).toBe(80);
    expect(COCO_CATEGORY_IDS).toHaveLength(80);
    expect(cocoLabel(0)).toBe("person");
    expect(cocoLabel(2)).toBe("car");
    expect(cocoLabel(79)).toBe("toothbrush");
    expect(cocoLabel(1, "category-id")).toBe("person");
    expect(cocoLabel(13, "category-id")).toBe("stop sign");
    expect(cocoLabel(90, "category-id")).toBe("toothbrush");
    expect(cocoLabel(12, "category-id")).toBe("class 12");
    expect(cocoLabel(80)).toBe("class 80");
  });
});

describe("preprocess", () => {
  it("produces float32 NCHW 1x3x640x640 scaled to 0..1", () => {
    const rgb = new Uint8Array(32 * 18 * 3);
    for (let i = 0; i < 32 * 18; i++) rgb.set([255, 128, 0], i * 3);
    const t = preprocess(rgb, 32, 18);
    expect(t).toBeInstanceOf(Float32Array);
    expect(t.length).toBe(3 * RTDETR_INPUT_SIZE * RTDETR_INPUT_SIZE);
    const plane = RTDETR_INPUT_SIZE * RTDETR_INPUT_SIZE;
    for (const i of [0, 12345, plane - 1]) {
      expect(t[i]).toBeCloseTo(1, 6);
      expect(t[plane + i]).toBeCloseTo(128 / 255, 6);
      expect(t[2 * plane + i]).toBe(0);
    }
  });

  it("resizes bilinearly with aligned pixel centres and keeps the channels apart", () => {
    // 2x1 image: left pixel red, right pixel blue; resized to 4x4.
    const t = preprocess(Uint8Array.from([255, 0, 0, 0, 0, 255]), 2, 1, 4);
    const red = Array.from(t.subarray(0, 4));
    const blue = Array.from(t.subarray(32, 36));
    expect(red.map((v) => Math.round(v * 100) / 100)).toEqual([1, 0.75, 0.25, 0]);
    expect(blue.map((v) => Math.round(v * 100) / 100)).toEqual([0, 0.25, 0.75, 1]);
    expect(Array.from(t.subarray(16, 32)).every((v) => v === 0)).toBe(true);
    // Every row of a 1-pixel-high source is the same.
    expect(Array.from(t.subarray(12, 16))).toEqual(red);
  });
});

describe("decodeQueries", () => {
  const opts = { width: 320, height: 180, scoreThreshold: 0.5 };

  it("keeps queries above the threshold with their best class, scaled to the frame", () => {
    // Query 0: a person (class 0) centred in the frame; query 1: below threshold; query 2: a car.
    const boxes = Float32Array.from([0.5, 0.5, 0.25, 0.5, 0.1, 0.1, 0.1, 0.1, 0.75, 0.25, 0.1, 0.2]);
    const scores = new Float32Array(3 * 80);
    scores[0] = 0.9;
    scores[80 + 5] = 0.3;
    scores[160 + 2] = 0.6;
    scores[160 + 7] = 0.55;
    const out = decodeQueries(boxes, scores, 3, 80, opts);
    expect(out).toEqual([
      { label: "person", score: 0.9, x: 120, y: 45, w: 80, h: 90 },
      { label: "car", score: 0.6, x: 224, y: 27, w: 32, h: 36 },
    ]);
  });

  it("applies the sigmoid to logits", () => {
    const scores = new Float32Array(80).fill(-10);
    scores[16] = logit(0.8);
    const [box] = decodeQueries(Float32Array.from([0.5, 0.5, 0.5, 0.5]), scores, 1, 80, { ...opts, logits: true });
    expect(box.label).toBe("dog");
    expect(box.score).toBeCloseTo(0.8, 3);
    expect(sigmoid(0)).toBe(0.5);
    expect(decodeQueries(Float32Array.from([0.5, 0.5, 0.5, 0.5]), new Float32Array(80).fill(logit(0.4)), 1, 80, { ...opts, logits: true })).toEqual([]);
  });

  it("clips boxes to the frame and drops ones entirely outside", () => {
    const scores = Float32Array.from([0.9, 0.9]);
    const out = decodeQueries(Float32Array.from([0.0, 0.0, 0.5, 0.5, 1.5, 0.5, 0.2, 0.2]), scores, 2, 1, opts);
    expect(out).toEqual([{ label: "person", score: 0.9, x: 0, y: 0, w: 80, h: 45 }]);
  });

  it("sorts by score and caps the count", () => {
    const n = 5;
    const boxes = new Float32Array(n * 4).fill(0.5);
    const scores = Float32Array.from([0.6, 0.95, 0.7, 0.99, 0.8]);
    const out = decodeQueries(boxes, scores, n, 1, { ...opts, maxDetections: 3 });
    expect(out.map((b) => b.score)).toEqual([0.99, 0.95, 0.8]);
  });

  it("rejects tensors shorter than their stated shape", () => {
    expect(() => decodeQueries(new Float32Array(7), new Float32Array(160), 2, 80, opts)).toThrow(/boxes hold 7/);
    expect(() => decodeQueries(new Float32Array(8), new Float32Array(100), 2, 80, opts)).toThrow(/scores hold 100/);
  });
});

describe("decodeCombined and decodeLabelled", () => {
  it("reads Ultralytics-style [Q, 4+C] rows", () => {
    const stride = 84;
    const out = new Float32Array(2 * stride);
    out.set([0.25, 0.5, 0.5, 1.0], 0);
    out[4 + 0] = 0.7;
    out.set([0.5, 0.5, 0.1, 0.1], stride);
    out[stride + 4 + 3] = 0.2;
    expect(decodeCombined(out, 2, stride, { width: 640, height: 360 })).toEqual([{ label: "person", score: 0.7, x: 0, y: 0, w: 320, h: 360 }]);
  });

  it("reads rtdetr_pytorch-style labels (COCO category ids) and pixel xyxy boxes", () => {
    const out = decodeLabelled(BigInt64Array.from([3n, 18n, 1n]), Float32Array.from([10, 20, 110, 70, 0, 0, 5, 5, 300, 100, 400, 200]), Float32Array.from([0.91, 0.2, 0.66]), {
      width: 320,
      height: 180,
    });
    expect(out).toEqual([
      { label: "car", score: 0.91, x: 10, y: 20, w: 100, h: 50 },
      { label: "person", score: 0.66, x: 300, y: 100, w: 20, h: 80 },
    ]);
  });
});

describe("detectLayout", () => {
  it("recognises the three export layouts", () => {
    expect(detectLayout(["images", "orig_target_sizes"], ["labels", "boxes", "scores"])).toEqual({
      imageInput: "images",
      sizeInput: "orig_target_sizes",
      output: { kind: "labelled", labels: "labels", boxes: "boxes", scores: "scores" },
    });
    expect(detectLayout(["pixel_values"], ["logits", "pred_boxes"]).output).toEqual({ kind: "logits", logits: "logits", boxes: "pred_boxes" });
    expect(detectLayout(["images"], ["output0"])).toEqual({ imageInput: "images", sizeInput: null, output: { kind: "combined", output: "output0" } });
  });

  it("says which names it could not use", () => {
    expect(() => detectLayout(["image", "im_shape", "scale_factor"], ["out"])).toThrow(/unsupported RT-DETR inputs \[image, im_shape, scale_factor\]/);
    expect(() => detectLayout(["images"], ["a", "b"])).toThrow(/unsupported RT-DETR outputs \[a, b\]/);
    expect(() => detectLayout(["images"], ["labels", "boxes", "scores"])).toThrow(/orig_target_sizes/);
  });
});

describe("decodeOutputs", () => {
  it("transposes [1, 4+C, Q] output to rows per query", () => {
    const q = 300;
    const rows = 84;
    const data = new Float32Array(rows * q);
    // Query 7 holds the only detection: a "bus" (class 5) at the frame centre.
    const put = (row: number, value: number) => (data[row * q + 7] = value);
    put(0, 0.5);
    put(1, 0.5);
    put(2, 0.2);
    put(3, 0.2);
    put(4 + 5, 0.88);
    const out = decodeOutputs({ kind: "combined", output: "output0" }, { output0: { data, dims: [1, rows, q] } }, { width: 100, height: 100 });
    expect(out).toEqual([{ label: "bus", score: 0.88, x: 40, y: 40, w: 20, h: 20 }]);
  });

  it("fails clearly on an output it cannot read", () => {
    expect(() => decodeOutputs({ kind: "logits", logits: "logits", boxes: "pred_boxes" }, { logits: { data: new Float32Array(4), dims: [4] }, pred_boxes: { data: new Float32Array(4), dims: [1, 4] } }, { width: 1, height: 1 })).toThrow(/not \[1,Q,C\]/);
    expect(() => decodeOutputs({ kind: "combined", output: "output0" }, {}, { width: 1, height: 1 })).toThrow(/output0 missing/);
  });
});

/** A stand-in for onnxruntime-node: records the feeds and answers with HF-style logits/pred_boxes. */
function fakeRuntime(feedsSeen: Record<string, OrtTensor>[]): OrtModule {
  class Tensor implements OrtTensor {
    constructor(
      readonly type: string,
      readonly data: Float32Array | BigInt64Array,
      readonly dims: readonly number[],
    ) {}
  }
  const session: OrtSession = {
    inputNames: ["pixel_values"],
    outputNames: ["logits", "pred_boxes"],
    async run(feeds) {
      feedsSeen.push(feeds);
      const logits = new Float32Array(2 * 80).fill(-8);
      logits[0] = logit(0.9); // query 0: person
      return {
        logits: { data: logits, dims: [1, 2, 80] },
        pred_boxes: { data: Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1]), dims: [1, 2, 4] },
      };
    },
  };
  return { InferenceSession: { create: async () => session }, Tensor };
}

describe("RT-DETR loading and selection", () => {
  let dir: string;
  let modelPath: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rtdetr-test-"));
    modelPath = join(dir, "rt-detr.onnx");
    await writeFile(modelPath, "not a real model");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs a frame through the session: preprocessed NCHW input in, frame-scaled boxes out", async () => {
    const feeds: Record<string, OrtTensor>[] = [];
    const factory = await loadRtDetr(modelPath, { frameWidth: 64, frameHeight: 36 }, async () => fakeRuntime(feeds));
    expect(factory.name).toBe("rt-detr");
    const detector = factory.create();
    const rgb = new Uint8Array(64 * 36 * 3).fill(255);
    const boxes = await detector.detect({ width: 64, height: 36, rgb, index: 0, pts: 0, timestamp: 0 });
    expect(boxes).toEqual([{ label: "person", score: 0.9, x: 16, y: 9, w: 32, h: 18 }]);
    expect(feeds).toHaveLength(1);
    const input = feeds[0].pixel_values;
    expect(input.dims).toEqual([1, 3, 640, 640]);
    expect(input.data.length).toBe(3 * 640 * 640);
    expect(input.data[0]).toBeCloseTo(1, 6);
  });

  it("falls back to motion, with the reason, when the model file is missing", async () => {
    const factory = await selectDetector({ modelPath: join(dir, "missing.onnx") });
    expect(factory.name).toBe("motion");
    expect(factory.reason).toMatch(/no RT-DETR model at .*missing\.onnx/);
  });

  it("falls back to motion, with the reason, when onnxruntime-node cannot be imported", async () => {
    const factory = await selectDetector({
      modelPath,
      importRuntime: async () => {
        throw new Error("Cannot find package 'onnxruntime-node'");
      },
    });
    expect(factory.name).toBe("motion");
    expect(factory.reason).toMatch(/onnxruntime-node is not available \(Cannot find package/);
  });

  it("falls back to motion, with the reason, when the model does not load", async () => {
    const broken: OrtModule = {
      InferenceSession: {
        create: async () => {
          throw new Error("protobuf parsing failed");
        },
      },
      Tensor: fakeRuntime([]).Tensor,
    };
    const factory = await selectDetector({ modelPath, importRuntime: async () => broken });
    expect(factory.name).toBe("motion");
    expect(factory.reason).toMatch(/cannot load .*rt-detr\.onnx \(protobuf parsing failed\)/);
  });

  it("selects RT-DETR when the model and the runtime load", async () => {
    const factory = await selectDetector({ modelPath, importRuntime: async () => ({ default: fakeRuntime([]) }) });
    expect(factory.name).toBe("rt-detr");
    expect(factory.reason).toMatch(/loaded \(logits outputs\)/);
  });

  it("uses the real onnxruntime-node import path: without the package installed it reports that", async () => {
    const factory = await selectDetector({ modelPath });
    if (ortInstalled) {
      // The file is not a model, so the runtime itself must reject it.
      expect(factory.reason).toMatch(/cannot load/);
    } else {
      console.log("onnxruntime-node is not installed here: checking the fallback message only");
      expect(factory.reason).toMatch(/onnxruntime-node is not available/);
    }
    expect(factory.name).toBe("motion");
  });

  it.runIf(ortInstalled)("runs a real ONNX model with RT-DETR's interface through onnxruntime-node", async () => {
    const tiny = join(dir, "tiny.onnx");
    await writeFile(tiny, tinyRtDetrModel({ label: 2, box: [0.25, 0.5, 0.2, 0.4] }));
    const factory = await selectDetector({ modelPath: tiny, rtdetr: { frameWidth: 320, frameHeight: 180 } });
    expect(factory.reason).toMatch(/loaded \(logits outputs\)/);
    expect(factory.name).toBe("rt-detr");
    const detector = factory.create();
    const frame = (value: number) => ({ width: 320, height: 180, rgb: new Uint8Array(320 * 180 * 3).fill(value), index: 0, pts: 0, timestamp: 0 });
    // The model scores query 0 from the mean of its input: white frame -> a car, black frame -> nothing.
    expect(await detector.detect(frame(255))).toEqual([{ label: "car", score: 1, x: 48, y: 54, w: 64, h: 72 }]);
    expect(await detector.detect(frame(0))).toEqual([]);
    await factory.close?.();
  });
});
