import type { Box, Detector, DetectorFactory, Frame } from "../types.ts";
import { cocoLabel, type LabelScheme } from "./coco-labels.ts";

/** RT-DETR's input side; the exports this service reads all take a plain (not letterboxed) 640x640 resize. */
export const RTDETR_INPUT_SIZE = 640;

/**
 * Packed RGB at any size -> float32 NCHW [1,3,size,size] in 0..1, bilinear resize
 * (pixel centres aligned, like cv2.resize / PIL).
 */
export function preprocess(rgb: Uint8Array, width: number, height: number, size = RTDETR_INPUT_SIZE): Float32Array {
  if (rgb.length < width * height * 3) throw new RangeError("rgb buffer smaller than width*height*3");
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  const sx = width / size;
  const sy = height / size;
  const x0s = new Int32Array(size);
  const x1s = new Int32Array(size);
  const fxs = new Float32Array(size);
  for (let x = 0; x < size; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), width - 1);
    x0s[x] = Math.floor(fx);
    x1s[x] = Math.min(x0s[x] + 1, width - 1);
    fxs[x] = fx - x0s[x];
  }
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    const r0 = y0 * width * 3;
    const r1 = y1 * width * 3;
    for (let x = 0; x < size; x++) {
      const a = r0 + x0s[x] * 3;
      const b = r0 + x1s[x] * 3;
      const c = r1 + x0s[x] * 3;
      const d = r1 + x1s[x] * 3;
      const wx = fxs[x];
      const o = y * size + x;
      for (let ch = 0; ch < 3; ch++) {
        const top = rgb[a + ch] + (rgb[b + ch] - rgb[a + ch]) * wx;
        const bottom = rgb[c + ch] + (rgb[d + ch] - rgb[c + ch]) * wx;
        out[ch * plane + o] = (top + (bottom - top) * wy) / 255;
      }
    }
  }
  return out;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export interface DecodeOptions {
  /** Frame size the boxes are scaled to. */
  width: number;
  height: number;
  scoreThreshold?: number;
  maxDetections?: number;
  labelScheme?: LabelScheme;
}

/** Clips an x1,y1,x2,y2 box to the frame and returns it as x,y,w,h, or null when nothing is left. */
function toFrameBox(label: string, score: number, x1: number, y1: number, x2: number, y2: number, width: number, height: number): Box | null {
  const left = Math.max(0, Math.min(width, x1));
  const top = Math.max(0, Math.min(height, y1));
  const right = Math.max(0, Math.min(width, x2));
  const bottom = Math.max(0, Math.min(height, y2));
  if (!(right > left && bottom > top)) return null;
  const r = (v: number) => Math.round(v * 10) / 10;
  return { label, score: Math.round(score * 1000) / 1000, x: r(left), y: r(top), w: r(right - left), h: r(bottom - top) };
}

function finish(boxes: Box[], maxDetections: number): Box[] {
  boxes.sort((a, b) => b.score - a.score);
  return boxes.slice(0, maxDetections);
}

/**
 * Per-query decoding: boxes [Q*4] as normalised cx,cy,w,h and class scores [Q*C]
 * (logits when `logits` is true). Each query keeps its best class; DETR needs no NMS.
 */
export function decodeQueries(
  boxes: ArrayLike<number>,
  classScores: ArrayLike<number>,
  numQueries: number,
  numClasses: number,
  options: DecodeOptions & { logits?: boolean },
): Box[] {
  if (boxes.length < numQueries * 4) throw new RangeError(`boxes hold ${boxes.length} values, ${numQueries * 4} needed`);
  if (classScores.length < numQueries * numClasses) throw new RangeError(`scores hold ${classScores.length} values, ${numQueries * numClasses} needed`);
  const threshold = options.scoreThreshold ?? 0.5;
  const out: Box[] = [];
  for (let q = 0; q < numQueries; q++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      const s = classScores[q * numClasses + c];
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    const score = options.logits ? sigmoid(bestScore) : bestScore;
    if (!(score >= threshold)) continue;
    const cx = boxes[q * 4] * options.width;
    const cy = boxes[q * 4 + 1] * options.height;
    const w = boxes[q * 4 + 2] * options.width;
    const h = boxes[q * 4 + 3] * options.height;
    const box = toFrameBox(cocoLabel(best, options.labelScheme ?? "index"), score, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, options.width, options.height);
    if (box) out.push(box);
  }
  return finish(out, options.maxDetections ?? 100);
}

/** One tensor [Q, 4+C] per image: cx,cy,w,h (normalised) then C class scores (already sigmoid), as Ultralytics exports RT-DETR. */
export function decodeCombined(output: ArrayLike<number>, numQueries: number, stride: number, options: DecodeOptions): Box[] {
  if (stride < 5) throw new RangeError(`row width ${stride} leaves no class scores`);
  const numClasses = stride - 4;
  const boxes = new Float32Array(numQueries * 4);
  const scores = new Float32Array(numQueries * numClasses);
  for (let q = 0; q < numQueries; q++) {
    for (let k = 0; k < 4; k++) boxes[q * 4 + k] = output[q * stride + k];
    for (let c = 0; c < numClasses; c++) scores[q * numClasses + c] = output[q * stride + 4 + c];
  }
  return decodeQueries(boxes, scores, numQueries, numClasses, options);
}

/**
 * Post-processed exports (rtdetr_pytorch / RT-DETRv2 `export_onnx.py`): labels [Q], boxes [Q*4] as
 * x1,y1,x2,y2 already in pixels of the `orig_target_sizes` fed in (the frame size), scores [Q].
 */
export function decodeLabelled(labels: ArrayLike<number | bigint>, boxes: ArrayLike<number>, scores: ArrayLike<number>, options: DecodeOptions): Box[] {
  const n = Math.min(labels.length, scores.length, Math.floor(boxes.length / 4));
  const threshold = options.scoreThreshold ?? 0.5;
  const out: Box[] = [];
  for (let q = 0; q < n; q++) {
    const score = scores[q];
    if (!(score >= threshold)) continue;
    const label = cocoLabel(Number(labels[q]), options.labelScheme ?? "category-id");
    const box = toFrameBox(label, score, boxes[q * 4], boxes[q * 4 + 1], boxes[q * 4 + 2], boxes[q * 4 + 3], options.width, options.height);
    if (box) out.push(box);
  }
  return finish(out, options.maxDetections ?? 100);
}

// --- onnxruntime-node, loaded at run time so the service works without it ---

export interface OrtTensor {
  data: ArrayLike<number | bigint>;
  dims: readonly number[];
}

export interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}

export interface OrtModule {
  InferenceSession: { create(path: string, options?: object): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
}

export type OutputLayout =
  | { kind: "logits"; logits: string; boxes: string }
  | { kind: "combined"; output: string }
  | { kind: "labelled"; labels: string; boxes: string; scores: string };

export interface ModelLayout {
  imageInput: string;
  /** rtdetr_pytorch exports take the original [w, h] to scale boxes to. */
  sizeInput: string | null;
  output: OutputLayout;
}

const IMAGE_INPUT_NAMES = ["images", "image", "pixel_values", "input"];

/** Which RT-DETR export this is, from its input and output names; throws with the names when it is none we read. */
export function detectLayout(inputNames: readonly string[], outputNames: readonly string[]): ModelLayout {
  const sizeInput = inputNames.find((n) => n === "orig_target_sizes") ?? null;
  const imageInput = inputNames.find((n) => IMAGE_INPUT_NAMES.includes(n)) ?? inputNames.find((n) => n !== sizeInput);
  const extraInputs = inputNames.filter((n) => n !== imageInput && n !== sizeInput);
  if (!imageInput || extraInputs.length > 0) {
    throw new Error(`unsupported RT-DETR inputs [${inputNames.join(", ")}]: expected an image input${sizeInput ? "" : " (and optionally orig_target_sizes)"}`);
  }
  const has = (n: string) => outputNames.includes(n);
  let output: OutputLayout;
  if (has("labels") && has("boxes") && has("scores")) {
    output = { kind: "labelled", labels: "labels", boxes: "boxes", scores: "scores" };
  } else if (has("logits") && has("pred_boxes")) {
    output = { kind: "logits", logits: "logits", boxes: "pred_boxes" };
  } else if (outputNames.length === 1) {
    output = { kind: "combined", output: outputNames[0] };
  } else {
    throw new Error(`unsupported RT-DETR outputs [${outputNames.join(", ")}]: expected labels/boxes/scores, logits/pred_boxes, or one [1,Q,4+C] tensor`);
  }
  if (output.kind === "labelled" && !sizeInput) throw new Error("RT-DETR export with labels/boxes/scores outputs but no orig_target_sizes input");
  return { imageInput, sizeInput, output };
}

/** Turns one inference result into boxes for a frame of width x height. */
export function decodeOutputs(layout: OutputLayout, outputs: Record<string, OrtTensor>, options: DecodeOptions): Box[] {
  const get = (name: string): OrtTensor => {
    const t = outputs[name];
    if (!t) throw new Error(`model output ${name} missing`);
    return t;
  };
  const floats = (t: OrtTensor): ArrayLike<number> => t.data as ArrayLike<number>;
  switch (layout.kind) {
    case "logits": {
      const logits = get(layout.logits);
      const boxes = get(layout.boxes);
      const [, q, c] = logits.dims;
      if (logits.dims.length !== 3 || boxes.dims[boxes.dims.length - 1] !== 4) {
        throw new Error(`logits dims [${logits.dims}] / pred_boxes dims [${boxes.dims}] are not [1,Q,C] / [1,Q,4]`);
      }
      return decodeQueries(floats(boxes), floats(logits), q, c, { ...options, logits: true });
    }
    case "combined": {
      const out = get(layout.output);
      if (out.dims.length !== 3) throw new Error(`output dims [${out.dims}] are not [1,Q,4+C]`);
      let [, q, stride] = out.dims;
      let data = floats(out);
      // Some exports put the queries last ([1,4+C,Q]); DETR heads have more queries than 4+C rows.
      if (q < stride) {
        data = transpose(data, q, stride);
        [q, stride] = [stride, q];
      }
      return decodeCombined(data, q, stride, options);
    }
    case "labelled":
      return decodeLabelled(get(layout.labels).data, floats(get(layout.boxes)), floats(get(layout.scores)), options);
  }
}

function transpose(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

export interface RtDetrOptions {
  scoreThreshold?: number;
  maxDetections?: number;
  frameWidth?: number;
  frameHeight?: number;
}

/** One inference session shared by every stream (the model is large; sessions are safe to run concurrently). */
export class RtDetrFactory implements DetectorFactory {
  readonly name = "rt-detr";
  readonly frameWidth: number;
  readonly frameHeight: number;

  constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    private readonly layout: ModelLayout,
    readonly reason: string,
    private readonly options: RtDetrOptions = {},
  ) {
    this.frameWidth = options.frameWidth ?? 640;
    this.frameHeight = options.frameHeight ?? 360;
  }

  create(): Detector {
    return { name: this.name, detect: (frame) => this.detect(frame) };
  }

  async detect(frame: Frame): Promise<Box[]> {
    const input = preprocess(frame.rgb, frame.width, frame.height);
    const feeds: Record<string, OrtTensor> = {
      [this.layout.imageInput]: new this.ort.Tensor("float32", input, [1, 3, RTDETR_INPUT_SIZE, RTDETR_INPUT_SIZE]),
    };
    if (this.layout.sizeInput) {
      feeds[this.layout.sizeInput] = new this.ort.Tensor("int64", BigInt64Array.from([BigInt(frame.width), BigInt(frame.height)]), [1, 2]);
    }
    const outputs = await this.session.run(feeds);
    return decodeOutputs(this.layout.output, outputs, {
      width: frame.width,
      height: frame.height,
      scoreThreshold: this.options.scoreThreshold,
      maxDetections: this.options.maxDetections,
    });
  }

  async close(): Promise<void> {
    await this.session.release?.();
  }
}

/** Loads onnxruntime-node and the model; throws an Error saying which step failed. */
export async function loadRtDetr(modelPath: string, options: RtDetrOptions = {}, importRuntime: () => Promise<unknown> = importOnnxRuntime): Promise<RtDetrFactory> {
  let ort: OrtModule;
  try {
    const mod = (await importRuntime()) as Partial<OrtModule> & { default?: Partial<OrtModule> };
    const resolved = mod.InferenceSession ? mod : mod.default;
    if (!resolved?.InferenceSession || !resolved.Tensor) throw new Error("module has no InferenceSession/Tensor");
    ort = resolved as OrtModule;
  } catch (err) {
    throw new Error(`onnxruntime-node is not available (${errorMessage(err)})`);
  }
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(modelPath, { executionProviders: ["cpu"], graphOptimizationLevel: "all" });
  } catch (err) {
    throw new Error(`cannot load ${modelPath} (${errorMessage(err)})`);
  }
  let layout: ModelLayout;
  try {
    layout = detectLayout(session.inputNames, session.outputNames);
  } catch (err) {
    await session.release?.();
    throw err;
  }
  return new RtDetrFactory(ort, session, layout, `${modelPath} loaded (${layout.output.kind} outputs)`, options);
}

function importOnnxRuntime(): Promise<unknown> {
  // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
  const specifier = "onnxruntime-node";
  return import(specifier);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
