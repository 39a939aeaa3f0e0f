import { access } from "node:fs/promises";
import type { DetectorFactory } from "../types.ts";
import { MotionDetector, type MotionOptions } from "./motion.ts";
import { errorMessage, loadRtDetr, type RtDetrOptions } from "./rtdetr.ts";

export function motionFactory(reason: string, options: MotionOptions & { frameWidth?: number; frameHeight?: number } = {}): DetectorFactory {
  return {
    name: "motion",
    reason,
    frameWidth: options.frameWidth ?? 320,
    frameHeight: options.frameHeight ?? 180,
    create: () => new MotionDetector(options),
  };
}

export interface SelectOptions {
  /** models/rt-detr.onnx by default; null forces the motion detector. */
  modelPath: string | null;
  rtdetr?: RtDetrOptions;
  motion?: MotionOptions & { frameWidth?: number; frameHeight?: number };
  importRuntime?: () => Promise<unknown>;
}

/** RT-DETR when the model and onnxruntime-node both load; otherwise motion, with the reason why. */
export async function selectDetector(options: SelectOptions): Promise<DetectorFactory> {
  if (options.modelPath === null) return motionFactory("motion detector requested", options.motion);
  try {
    await access(options.modelPath);
  } catch {
    return motionFactory(`no RT-DETR model at ${options.modelPath}`, options.motion);
  }
  try {
    return await loadRtDetr(options.modelPath, options.rtdetr, options.importRuntime);
  } catch (err) {
    return motionFactory(`RT-DETR unavailable: ${errorMessage(err)}`, options.motion);
  }
}
