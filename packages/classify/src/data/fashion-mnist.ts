/** Fashion-MNIST (Xiao et al. 2017) in its original IDX files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClassificationData, Split } from './dataset.js';
import { readIdx } from './idx.js';

/** Class names in label order, as in the dataset's README. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Per-channel mean/std of the Fashion-MNIST training images (pixel / 255). */
export const FASHION_MNIST_MEAN = [0.286];
export const FASHION_MNIST_STD = [0.353];

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/** The copy shipped in this repository (`datasets/fashion-mnist`). */
export const SHIPPED_FASHION_MNIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../datasets/fashion-mnist');
/** The Debian package's location. */
export const SYSTEM_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

function findFile(dir: string, base: string): string | undefined {
  for (const name of [base, `${base}.gz`]) {
    const f = path.join(dir, name);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** Whether `dir` holds the four Fashion-MNIST IDX files (compressed or not). */
export function isFashionMnistDir(dir: string): boolean {
  return Object.values(FILES).every((b) => findFile(dir, b) !== undefined);
}

function idxSplit(imagesFile: string, labelsFile: string): { split: Split; size: number } {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.shape.length !== 3) throw new Error(`${imagesFile}: expected [N, H, W] images, got [${images.shape}]`);
  if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new Error(`${labelsFile}: ${labels.shape[0]} labels for ${images.shape[0]} images in ${imagesFile}`);
  }
  const [n, h, w] = images.shape as [number, number, number];
  const bad = labels.data.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0) throw new Error(`${labelsFile}: label ${labels.data[bad]} at index ${bad} is outside 0..9`);
  const px = h * w;
  return {
    size: n,
    split: {
      size: n,
      source: (i) => ({ data: images.data.subarray(i * px, (i + 1) * px), width: w, height: h, channels: 1 }),
      label: (i) => labels.data[i]!,
      describe: (i) => `${path.basename(imagesFile)}[${i}]`,
    },
  };
}

/**
 * Loads Fashion-MNIST from `dir` (the four IDX files, `.gz` or not). The test set is the
 * validation split, as usual.
 */
export function loadFashionMnist(dir: string): ClassificationData {
  const missing = Object.values(FILES).filter((b) => !findFile(dir, b));
  if (missing.length) throw new Error(`${dir} is not a Fashion-MNIST folder: missing ${missing.map((m) => `${m}[.gz]`).join(', ')}`);
  const train = idxSplit(findFile(dir, FILES.trainImages)!, findFile(dir, FILES.trainLabels)!);
  const val = idxSplit(findFile(dir, FILES.testImages)!, findFile(dir, FILES.testLabels)!);
  return { name: 'fashion-mnist', root: dir, classNames: FASHION_MNIST_CLASSES, channels: 1, nativeSize: 28, train: train.split, val: val.split };
}
