/** Reading images (sharp) and label masks (index PNG) with the checks a training run needs. */
import sharp from 'sharp';
import { IGNORE_INDEX, type MaskKind, type SegSample } from './dataset.js';
import { labelTable } from './labels.js';
import { readIndexPng, type IndexMap } from './png.js';

/** An 8-bit RGB image, row-major `[height * width * 3]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes any image sharp reads (JPEG, PNG, ...) to 8-bit RGB; errors name the file. */
export async function readRgb(path: string): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels === 3) return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    // greyscale stays one channel in some sharp versions: replicate to RGB
    const rgb = new Uint8Array(info.width * info.height * 3);
    for (let i = 0; i < info.width * info.height; i++) rgb.fill(data[i * info.channels]!, i * 3, i * 3 + 3);
    return { width: info.width, height: info.height, data: rgb };
  } catch (e) {
    throw new Error(`cannot decode image ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads a mask and maps raw values to train ids (`0..numClasses-1` or 255).
 * @throws naming the file and the value when a raw value is not a class id of the dataset.
 */
export function readMask(path: string, kind: MaskKind): IndexMap {
  const raw = readIndexPng(path);
  return { ...raw, data: mapLabels(raw.data, kind, path) };
}

/** Applies the raw -> train id table of `kind`; `source` names the mask in errors. */
export function mapLabels(raw: Uint8Array, kind: MaskKind, source: string): Uint8Array {
  const table = labelTable(kind);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const t = table[raw[i]!]!;
    if (t < 0) {
      const keys = Array.from(table.keys());
      const classIds = keys.filter((v) => table[v]! >= 0 && table[v] !== IGNORE_INDEX);
      const ignored = keys.filter((v) => table[v] === IGNORE_INDEX);
      throw new Error(
        `${source}: pixel ${i} holds class id ${raw[i]}, outside the ${kind} range ${classIds[0]}..${classIds[classIds.length - 1]} ` +
          `(values read as ignore: ${ignored.join(', ')})`,
      );
    }
    out[i] = t;
  }
  return out;
}

/** An image with its mask in train ids, same size. */
export interface LoadedSample {
  sample: SegSample;
  image: RgbImage;
  mask: IndexMap;
}

/** Loads a sample and checks that image and mask have the same size. */
export async function loadSample(sample: SegSample): Promise<LoadedSample> {
  const [image, mask] = await Promise.all([readRgb(sample.image), Promise.resolve().then(() => readMask(sample.mask, sample.maskKind))]);
  if (image.width !== mask.width || image.height !== mask.height) {
    throw new Error(`mask ${sample.mask} is ${mask.width}x${mask.height} but its image ${sample.image} is ${image.width}x${image.height}`);
  }
  return { sample, image, mask };
}
