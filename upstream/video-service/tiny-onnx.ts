// Test support: a minimal ONNX model with RT-DETR's HF-style interface, encoded by hand
// (protobuf wire format) so the real onnxruntime-node path can be tested without weights.

function varint(value: number | bigint): number[] {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const intField = (field: number, value: number | bigint) => Buffer.from([...varint(field << 3), ...varint(value)]);
const bytesField = (field: number, data: Buffer | string) => {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length)]), bytes]);
};
const msg = (...parts: Buffer[]) => Buffer.concat(parts);

const FLOAT = 1;
const INT64_ATTR_INTS = 7;
const INT64_ATTR_INT = 2;

function tensor(name: string, dims: number[], values: Float32Array): Buffer {
  return msg(...dims.map((d) => intField(1, d)), intField(2, FLOAT), bytesField(8, name), bytesField(9, Buffer.from(values.buffer, values.byteOffset, values.byteLength)));
}

function valueInfo(name: string, dims: number[]): Buffer {
  const shape = msg(...dims.map((d) => bytesField(1, intField(1, d))));
  const tensorType = msg(intField(1, FLOAT), bytesField(2, shape));
  return msg(bytesField(1, name), bytesField(2, bytesField(1, tensorType)));
}

function node(op: string, inputs: string[], outputs: string[], attributes: Buffer[] = []): Buffer {
  return msg(...inputs.map((i) => bytesField(1, i)), ...outputs.map((o) => bytesField(2, o)), bytesField(3, `${op}_${outputs[0]}`), bytesField(4, op), ...attributes.map((a) => bytesField(5, a)));
}

/**
 * pixel_values [1,3,640,640] -> logits [1,Q,80], pred_boxes [1,Q,4].
 * logits = base + 20 * mean(pixel_values) (a [1] tensor, broadcast): query 0, class `label`, has base -10, every other
 * logit -40; so a white frame (mean 1) scores query 0 at sigmoid(10) and a black frame at sigmoid(-10).
 * pred_boxes are the constant `box` (cx, cy, w, h normalised) for every query.
 */
export function tinyRtDetrModel(options: { queries?: number; label?: number; box?: [number, number, number, number] } = {}): Buffer {
  const q = options.queries ?? 3;
  const label = options.label ?? 0;
  const box = options.box ?? [0.5, 0.5, 0.5, 0.5];
  const base = new Float32Array(q * 80).fill(-40);
  base[label] = -10;
  const boxes = new Float32Array(q * 4);
  for (let i = 0; i < q; i++) boxes.set(box, i * 4);
  const graph = msg(
    bytesField(1, node("ReduceMean", ["pixel_values"], ["mean"], [msg(bytesField(1, "axes"), ...[1, 2, 3].map((a) => intField(8, a)), intField(20, INT64_ATTR_INTS)), msg(bytesField(1, "keepdims"), intField(3, 0), intField(20, INT64_ATTR_INT))])),
    bytesField(1, node("Mul", ["mean", "gain"], ["scaled"])),
    bytesField(1, node("Add", ["scaled", "base_logits"], ["logits"])),
    bytesField(1, node("Identity", ["const_boxes"], ["pred_boxes"])),
    bytesField(2, "tiny-rtdetr"),
    bytesField(5, tensor("gain", [1], Float32Array.of(20))),
    bytesField(5, tensor("base_logits", [1, q, 80], base)),
    bytesField(5, tensor("const_boxes", [1, q, 4], boxes)),
    bytesField(11, valueInfo("pixel_values", [1, 3, 640, 640])),
    bytesField(12, valueInfo("logits", [1, q, 80])),
    bytesField(12, valueInfo("pred_boxes", [1, q, 4])),
  );
  // ir_version 8, opset 13 (ReduceMean still takes axes as an attribute there).
  return msg(intField(1, 8), bytesField(2, "video-service-tests"), bytesField(7, graph), bytesField(8, msg(bytesField(1, ""), intField(2, 13))));
}
