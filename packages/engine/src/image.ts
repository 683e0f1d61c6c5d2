/**
 * Image decoding and torchvision-style augmentation with sharp.
 *
 * Outputs are HWC Float32Arrays (NHWC once batched), normalised as
 * `(x / 255 - mean) / std` like `ToTensor()` + `Normalize(mean, std)`.
 * All errors name the file (or say "raw image") so a corrupt file in a dataset of a
 * million is found at once.
 */
import sharp from 'sharp';
import type { Rng } from './rng.js';

/** ImageNet channel means (RGB), as torchvision's reference scripts. */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB). */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** Raw 8-bit pixels in HWC order. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: number;
}

/** A path to an encoded image file (JPEG/PNG/WebP/...) or already-decoded pixels. */
export type ImageSource = string | RawImage;

/** A crop box in pixels. */
export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

const describe = (src: ImageSource): string => (typeof src === 'string' ? src : `raw ${src.width}x${src.height}x${src.channels} image`);

function open(src: ImageSource): sharp.Sharp {
  if (typeof src === 'string') return sharp(src, { failOn: 'truncated' });
  if (src.data.length !== src.width * src.height * src.channels) {
    throw new Error(`raw image: data has ${src.data.length} bytes, expected ${src.width}x${src.height}x${src.channels}`);
  }
  return sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels as 1 | 3 } });
}

function wrapError(src: ImageSource, e: unknown): Error {
  const msg = (e as Error).message ?? String(e);
  return new Error(`cannot decode image ${describe(src)}: ${msg}`);
}

/** Width and height without decoding the pixels (reads the header only for files). */
export async function imageSize(src: ImageSource): Promise<{ width: number; height: number }> {
  if (typeof src !== 'string') return { width: src.width, height: src.height };
  try {
    const m = await sharp(src).metadata();
    if (!m.width || !m.height) throw new Error('no width/height in header');
    return { width: m.width, height: m.height };
  } catch (e) {
    throw wrapError(src, e);
  }
}

/** Converts a sharp pipeline to raw pixels with the requested channel count. */
async function toRaw(src: ImageSource, pipeline: sharp.Sharp, channels: 1 | 3): Promise<RawImage> {
  try {
    const p = channels === 1 ? pipeline.greyscale() : pipeline.removeAlpha().toColourspace('srgb');
    const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
    let pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // greyscale sources stay 1-channel through toColourspace on some inputs: expand to RGB
    if (channels === 3 && info.channels === 1) pixels = greyToRgb(pixels);
    else if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels, expected ${channels}`);
    return { data: pixels, width: info.width, height: info.height, channels };
  } catch (e) {
    throw wrapError(src, e);
  }
}

function greyToRgb(g: Uint8Array): Uint8Array {
  const out = new Uint8Array(g.length * 3);
  for (let i = 0; i < g.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = g[i]!;
  return out;
}

/** Decodes an image fully (EXIF orientation is ignored, as PIL/torchvision do). */
export async function decodeImage(src: ImageSource, channels: 1 | 3 = 3): Promise<RawImage> {
  return toRaw(src, open(src), channels);
}

/**
 * torchvision `RandomResizedCrop.get_params`: up to 10 tries of an area fraction in `scale`
 * and a log-uniform aspect ratio in `ratio`; falls back to the largest central crop whose
 * aspect ratio is clamped into `ratio`.
 */
export function randomResizedCropBox(
  rng: Rng,
  width: number,
  height: number,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), width: w, height: h };
}

/** Options of the training transform ({@link trainTransform}). */
export interface TrainTransformOptions {
  /** Output side (square), e.g. 224. */
  size: number;
  /** RandomResizedCrop area range (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** RandomResizedCrop aspect range (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
  /** Probability of a horizontal flip (default 0.5). */
  flipProb?: number;
  /** Output channels (default 3). */
  channels?: 1 | 3;
  /** Normalisation mean per channel (default ImageNet). */
  mean?: readonly number[];
  /** Normalisation std per channel (default ImageNet). */
  std?: readonly number[];
}

/**
 * RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip + ToTensor + Normalize.
 * @returns `[size, size, channels]` HWC floats.
 */
export async function trainTransform(src: ImageSource, rng: Rng, opts: TrainTransformOptions): Promise<Float32Array> {
  const { width, height } = await imageSize(src);
  const box = randomResizedCropBox(rng, width, height, opts.scale, opts.ratio);
  const flip = rng.random() < (opts.flipProb ?? 0.5);
  const channels = opts.channels ?? 3;
  if (typeof src !== 'string' && src.channels === channels) {
    const raw = cropResizeBilinear(src, box, opts.size, opts.size, flip);
    return normalize(raw, opts.mean ?? defaultMean(channels), opts.std ?? defaultStd(channels));
  }
  let p = open(src).extract(box).resize(opts.size, opts.size, { fit: 'fill', kernel: 'linear' });
  if (flip) p = p.flop();
  const raw = await toRaw(src, p, channels);
  return normalize(raw, opts.mean ?? defaultMean(channels), opts.std ?? defaultStd(channels));
}

/** Options of the evaluation transform ({@link evalTransform}). */
export interface EvalTransformOptions {
  /** Shorter side after Resize (default `round(crop / 0.875)`, i.e. 256 for 224). */
  resize?: number;
  /** CenterCrop side, e.g. 224. */
  crop: number;
  channels?: 1 | 3;
  mean?: readonly number[];
  std?: readonly number[];
}

/** Resize(shorter side) + CenterCrop + ToTensor + Normalize, as torchvision's eval preset. */
export async function evalTransform(src: ImageSource, opts: EvalTransformOptions): Promise<Float32Array> {
  const { width, height } = await imageSize(src);
  const resize = opts.resize ?? Math.round(opts.crop / 0.875);
  const [rw, rh] = width <= height ? [resize, Math.floor((resize * height) / width)] : [Math.floor((resize * width) / height), resize];
  if (rw < opts.crop || rh < opts.crop) throw new Error(`evalTransform ${describe(src)}: resize ${resize} is smaller than crop ${opts.crop}`);
  const box = { left: Math.round((rw - opts.crop) / 2), top: Math.round((rh - opts.crop) / 2), width: opts.crop, height: opts.crop };
  const channels = opts.channels ?? 3;
  if (typeof src !== 'string' && src.channels === channels && rw === width && rh === height) {
    // no resize needed (e.g. 28x28 Fashion-MNIST at 28): crop in JS, skipping sharp's per-call overhead
    return normalize(cropResizeBilinear(src, box, opts.crop, opts.crop, false), opts.mean ?? defaultMean(channels), opts.std ?? defaultStd(channels));
  }
  const p = open(src).resize(rw, rh, { fit: 'fill', kernel: 'linear' }).extract(box);
  const raw = await toRaw(src, p, channels);
  return normalize(raw, opts.mean ?? defaultMean(channels), opts.std ?? defaultStd(channels));
}

/**
 * Crops `box` from raw pixels and resizes it to `outW` x `outH` with bilinear interpolation
 * (half-pixel centres, edge clamping: PyTorch `interpolate(mode='bilinear', align_corners=False)`
 * without antialiasing), optionally mirrored left-right. Used for in-memory images, where
 * a sharp call costs far more than the arithmetic (28x28 Fashion-MNIST: ~50x faster).
 */
export function cropResizeBilinear(img: RawImage, box: CropBox, outW: number, outH: number, flip: boolean): RawImage {
  const { width: W, height: H, channels: C, data } = img;
  if (box.left < 0 || box.top < 0 || box.left + box.width > W || box.top + box.height > H || box.width <= 0 || box.height <= 0) {
    throw new Error(`crop box ${JSON.stringify(box)} is outside the ${W}x${H} image`);
  }
  const out = new Uint8Array(outW * outH * C);
  const sx = box.width / outW;
  const sy = box.height / outH;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), box.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, box.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), box.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, box.width - 1);
      const wx = fx - x0;
      const ox = flip ? outW - 1 - x : x;
      const r0 = (box.top + y0) * W + box.left;
      const r1 = (box.top + y1) * W + box.left;
      for (let c = 0; c < C; c++) {
        const top = data[(r0 + x0) * C + c]! * (1 - wx) + data[(r0 + x1) * C + c]! * wx;
        const bottom = data[(r1 + x0) * C + c]! * (1 - wx) + data[(r1 + x1) * C + c]! * wx;
        out[(y * outW + ox) * C + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { data: out, width: outW, height: outH, channels: C };
}

function defaultMean(channels: number): readonly number[] {
  return channels === 1 ? [0.5] : IMAGENET_MEAN;
}
function defaultStd(channels: number): readonly number[] {
  return channels === 1 ? [0.5] : IMAGENET_STD;
}

/** `(x / 255 - mean[c]) / std[c]` over HWC pixels. */
export function normalize(img: RawImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const c = img.channels;
  if (mean.length !== c || std.length !== c) {
    throw new Error(`normalize: mean/std have ${mean.length}/${std.length} values for a ${c}-channel image`);
  }
  const out = new Float32Array(img.data.length);
  const scale = std.map((s) => 1 / (255 * s));
  const offset = mean.map((m, i) => m / std[i]!);
  for (let i = 0; i < img.data.length; i++) {
    const ch = i % c;
    out[i] = img.data[i]! * scale[ch]! - offset[ch]!;
  }
  return out;
}
