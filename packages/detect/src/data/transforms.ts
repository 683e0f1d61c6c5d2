/**
 * Detection transforms (torchvision `GeneralizedRCNNTransform` + `RandomHorizontalFlip`):
 * resize so the shorter side is `minSize` unless the longer side would exceed `maxSize`,
 * optional horizontal flip, ImageNet normalisation; boxes follow the image and are clipped.
 * Batching pads every image at the bottom/right with zeros to a common size divisible by 32.
 */
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { IMAGENET_MEAN, IMAGENET_STD } from '@refconv/engine';

/** Resize settings. */
export interface ResizeOptions {
  /** Target shorter side (torchvision `min_size`). */
  minSize: number;
  /** Cap of the longer side (torchvision `max_size`). */
  maxSize: number;
}

/** An image ready for batching, with its boxes in the resized frame. */
export interface PreparedImage {
  /** HWC float32, normalised. */
  pixels: Float32Array;
  height: number;
  width: number;
  /** Size of the original image, `[h, w]`, to map detections back. */
  originalSize: [number, number];
  /** `[N * 4]` xyxy boxes in resized pixels, clipped to the image. */
  boxes: Float32Array;
}

/** Output size of the resize: `floor(side * scale)`, `scale = min(minSize / short, maxSize / long)`. */
export function resizedSize(height: number, width: number, opts: ResizeOptions): [number, number] {
  const scale = Math.min(opts.minSize / Math.min(height, width), opts.maxSize / Math.max(height, width));
  return [Math.floor(height * scale), Math.floor(width * scale)];
}

/**
 * Moves `[N * 4]` xyxy boxes from an `from` `[h, w]` frame to a `to` frame (per-axis ratio),
 * optionally mirrored horizontally, clipped to the new frame.
 */
export function transformBoxes(boxes: Float32Array, from: [number, number], to: [number, number], flip = false): Float32Array {
  const ry = to[0] / from[0];
  const rx = to[1] / from[1];
  const out = new Float32Array(boxes.length);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let i = 0; i < boxes.length; i += 4) {
    let x1 = boxes[i]! * rx;
    let x2 = boxes[i + 2]! * rx;
    if (flip) [x1, x2] = [to[1] - x2, to[1] - x1];
    out[i] = clip(x1, to[1]);
    out[i + 1] = clip(boxes[i + 1]! * ry, to[0]);
    out[i + 2] = clip(x2, to[1]);
    out[i + 3] = clip(boxes[i + 3]! * ry, to[0]);
  }
  return out;
}

/** Decodes, resizes (bilinear), optionally flips and normalises one image; errors name the file. */
export async function prepareImage(file: string, boxes: Float32Array, opts: ResizeOptions & { flip?: boolean }): Promise<PreparedImage> {
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    const meta = await sharp(file).metadata();
    if (!meta.width || !meta.height) throw new Error('no width/height in header');
    const [h, w] = resizedSize(meta.height, meta.width, opts);
    let img = sharp(file, { failOn: 'truncated' }).removeAlpha().toColourspace('srgb').resize(w, h, { fit: 'fill', kernel: 'linear' });
    if (opts.flip) img = img.flop();
    raw = await img.raw().toBuffer({ resolveWithObject: true });
    if (raw.info.channels !== 3) throw new Error(`decoded to ${raw.info.channels} channels`);
    const pixels = normalizeRgb(raw.data, IMAGENET_MEAN, IMAGENET_STD);
    return { pixels, height: h, width: w, originalSize: [meta.height, meta.width], boxes: transformBoxes(boxes, [meta.height, meta.width], [h, w], opts.flip) };
  } catch (e) {
    throw new Error(`cannot read image ${file}: ${(e as Error).message}`);
  }
}

function normalizeRgb(data: Uint8Array, mean: readonly number[], std: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i]! / 255 - mean[i % 3]!) / std[i % 3]!;
  return out;
}

/** Rounds up to a multiple of `d`. */
export const roundUp = (v: number, d: number): number => Math.ceil(v / d) * d;

/** Pads images to a common `[H, W]` divisible by `divisor` (bottom/right, zeros) and stacks them `[B, H, W, 3]`. */
export function batchImages(images: PreparedImage[], divisor = 32): tf.Tensor4D {
  if (images.length === 0) throw new Error('batchImages: empty batch');
  const H = roundUp(Math.max(...images.map((i) => i.height)), divisor);
  const W = roundUp(Math.max(...images.map((i) => i.width)), divisor);
  const data = new Float32Array(images.length * H * W * 3);
  images.forEach((img, b) => {
    for (let y = 0; y < img.height; y++) {
      data.set(img.pixels.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((b * H + y) * W) * 3);
    }
  });
  return tf.tensor4d(data, [images.length, H, W, 3]);
}
