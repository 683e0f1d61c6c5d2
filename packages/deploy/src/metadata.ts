/**
 * The model metadata the exporter stores and the classification preprocessing it describes, with no
 * Node or tfjs dependency: the same code runs in `predictOnnx` (Node) and in the browser page
 * (`web/main.ts`), so both feed onnxruntime the same numbers.
 *
 * Preprocessing (classify's eval transform, `evalTransform` in `@refconv/engine`): Resize the
 * shorter side to `refconv.resize` (the longer side scaled and floored), CenterCrop to the input
 * size, then `pixel / (255 std) - mean / std` per channel.
 */

/** Preprocessing and labels stored in the model's `metadata_props`. */
export interface DeployMetadata {
  /** Per-channel mean subtracted from the `[0, 1]` image, e.g. ImageNet `[0.485, 0.456, 0.406]`. */
  mean?: number[];
  /** Per-channel std the image is divided by after the mean. */
  std?: number[];
  /** Input size `[H, W]`; defaults to the model's input shape. */
  inputSize?: [number, number];
  /** Class names, index = logit index. */
  classNames?: string[];
  /** Architecture name (free text, e.g. `resnet18`). */
  arch?: string;
  /** Any further key/value pairs (values stored as given). */
  extra?: Record<string, string>;
}

/** Metadata read back from a file: the parsed keys, the input layout and every raw property. */
export type ModelMetadata = DeployMetadata & { layout: 'NCHW' | 'NHWC'; props: Record<string, string> };

/** Metadata keys written by `exportOnnx`. */
export const META_KEYS = {
  mean: 'refconv.mean',
  std: 'refconv.std',
  inputSize: 'refconv.input_size',
  classNames: 'refconv.class_names',
  layout: 'refconv.layout',
  arch: 'refconv.arch',
} as const;

/** Metadata key of the Resize (shorter side) before the center crop. */
export const RESIZE_KEY = 'refconv.resize';

/** Parses the `refconv.*` properties of a model (`metadata_props` as key -> value). */
export function parseMetadataProps(props: Record<string, string>): ModelMetadata {
  const parse = <T>(k: string): T | undefined => {
    if (props[k] === undefined) return undefined;
    try {
      return JSON.parse(props[k]) as T;
    } catch {
      throw new Error(`model metadata '${k}' is not valid JSON: ${props[k].slice(0, 80)}`);
    }
  };
  return {
    layout: (props[META_KEYS.layout] as 'NCHW' | 'NHWC' | undefined) ?? 'NCHW',
    mean: parse<number[]>(META_KEYS.mean),
    std: parse<number[]>(META_KEYS.std),
    inputSize: parse<[number, number]>(META_KEYS.inputSize),
    classNames: parse<string[]>(META_KEYS.classNames),
    arch: props[META_KEYS.arch],
    props,
  };
}

/** The classification preprocessing a model's metadata asks for. */
export interface ClassifierPreprocessing {
  /** Crop (= input) size, square. */
  crop: number;
  /** Shorter side after the resize. */
  resize: number;
  mean: number[];
  std: number[];
  /** Input channels (1 grey or 3 RGB), the length of mean / std. */
  channels: number;
  layout: 'NCHW' | 'NHWC';
}

/** Reads the preprocessing from metadata; an error says what is missing. */
export function classifierPreprocessing(md: ModelMetadata): ClassifierPreprocessing {
  if (!md.inputSize || !md.mean || !md.std) throw new Error('the model has no refconv.input_size / refconv.mean / refconv.std metadata; export it with @refconv/deploy');
  const [h, w] = md.inputSize;
  if (h !== w) throw new Error(`non-square input size ${h}x${w} is not supported by the center-crop preprocessing`);
  if (md.mean.length !== md.std.length) throw new Error(`refconv.mean has ${md.mean.length} values but refconv.std ${md.std.length}`);
  const resize = md.props[RESIZE_KEY] ? Number(md.props[RESIZE_KEY]) : Math.round(h / 0.875);
  return { crop: h, resize, mean: md.mean, std: md.std, channels: md.mean.length, layout: md.layout };
}

/** Size after the shorter-side resize and the center-crop box, as `evalTransform` computes them. */
export function resizeCropGeometry(width: number, height: number, resize: number, crop: number): { rw: number; rh: number; left: number; top: number } {
  const [rw, rh] = width <= height ? [resize, Math.floor((resize * height) / width)] : [Math.floor((resize * width) / height), resize];
  if (rw < crop || rh < crop) throw new Error(`resize ${resize} is smaller than crop ${crop}`);
  return { rw, rh, left: Math.round((rw - crop) / 2), top: Math.round((rh - crop) / 2) };
}

/**
 * Browser-side preprocessing of decoded RGBA pixels (canvas `ImageData`) into one model input
 * `[1, C, H, W]` or `[1, H, W, C]`. When the image already has the resized size (shorter side =
 * `resize`) the pixels are only cropped, so the input equals `predictOnnx`'s (sharp) exactly; otherwise
 * it is resized here by {@link resizeTriangle}, close to but not bit-equal with sharp (which also
 * shrinks JPEGs while decoding). Grey models take the BT.709 luma of RGB.
 */
export function preprocessRgba(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, p: ClassifierPreprocessing): { data: Float32Array; dims: number[] } {
  const { rw, rh, left, top } = resizeCropGeometry(width, height, p.resize, p.crop);
  const c = p.channels;
  if (c !== 1 && c !== 3) throw new Error(`models with ${c} input channels are not supported (1 or 3)`);
  const src = rw !== width || rh !== height ? resizeTriangle(rgba, width, height, rw, rh) : rgba;
  const n = p.crop;
  const data = new Float32Array(c * n * n);
  const scale = p.std.map((s) => 1 / (255 * s));
  const offset = p.mean.map((m, i) => m / p.std[i]);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const o = ((top + y) * rw + left + x) * 4;
      const px = c === 3 ? [src[o], src[o + 1], src[o + 2]] : [Math.round(0.2126 * src[o] + 0.7152 * src[o + 1] + 0.0722 * src[o + 2])];
      for (let ch = 0; ch < c; ch++) {
        const v = px[ch] * scale[ch] - offset[ch];
        data[p.layout === 'NHWC' ? (y * n + x) * c + ch : ch * n * n + y * n + x] = v;
      }
    }
  }
  return { data, dims: p.layout === 'NHWC' ? [1, n, n, c] : [1, c, n, n] };
}

/**
 * Antialiased bilinear resize of RGBA pixels: a separable triangle filter whose support grows with the
 * shrink factor (as PIL's / libvips' `linear` reduce; plain half-pixel bilinear when enlarging),
 * weights normalised at the borders, one rounding to 8 bit at the end.
 */
export function resizeTriangle(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, outW: number, outH: number): Uint8ClampedArray {
  const weights = (inSize: number, outSize: number): { start: number[]; w: Float64Array[] } => {
    const scale = inSize / outSize;
    const fs = Math.max(scale, 1);
    const start: number[] = [];
    const w: Float64Array[] = [];
    for (let o = 0; o < outSize; o++) {
      const center = (o + 0.5) * scale;
      const lo = Math.max(Math.floor(center - fs + 0.5), 0);
      const hi = Math.min(Math.floor(center + fs + 0.5), inSize);
      const ws = new Float64Array(Math.max(hi - lo, 1));
      let sum = 0;
      for (let i = lo; i < hi; i++) sum += ws[i - lo] = Math.max(0, 1 - Math.abs((i - center + 0.5) / fs));
      if (sum > 0) for (let i = 0; i < ws.length; i++) ws[i] /= sum;
      else ws[0] = 1;
      start.push(lo);
      w.push(ws);
    }
    return { start, w };
  };
  const H = weights(width, outW);
  const V = weights(height, outH);
  const tmp = new Float64Array(outW * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      const ws = H.w[x];
      const x0 = H.start[x];
      for (let k = 0; k < 4; k++) {
        let acc = 0;
        for (let i = 0; i < ws.length; i++) acc += ws[i] * rgba[(y * width + x0 + i) * 4 + k];
        tmp[(y * outW + x) * 4 + k] = acc;
      }
    }
  }
  const out = new Uint8ClampedArray(outW * outH * 4);
  for (let y = 0; y < outH; y++) {
    const ws = V.w[y];
    const y0 = V.start[y];
    for (let x = 0; x < outW; x++) {
      for (let k = 0; k < 4; k++) {
        let acc = 0;
        for (let i = 0; i < ws.length; i++) acc += ws[i] * tmp[((y0 + i) * outW + x) * 4 + k];
        out[(y * outW + x) * 4 + k] = Math.round(acc);
      }
    }
  }
  return out;
}

/** One class of a top-k list. */
export interface TopClass {
  index: number;
  name: string;
  probability: number;
  logit: number;
}

/** Softmax over one row of logits and its top-k (ties: lower index first). */
export function softmaxTopK(row: ArrayLike<number>, k: number, names?: string[]): TopClass[] {
  const v = Array.from(row);
  const mx = Math.max(...v);
  const e = v.map((x) => Math.exp(x - mx));
  const s = e.reduce((a, b) => a + b, 0);
  const order = v.map((_, j) => j).sort((a, b) => v[b] - v[a] || a - b).slice(0, Math.min(k, v.length));
  return order.map((j) => ({ index: j, name: names?.[j] ?? String(j), probability: e[j] / s, logit: v[j] }));
}
