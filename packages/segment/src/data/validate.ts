/**
 * The checks run over every sample of a split when it is opened (`listSamples`, before the first
 * training step and for the validation split too, not only when it is evaluated): the image and
 * the mask exist, the mask is an index PNG that decodes completely and holds only class ids of the
 * dataset or the ignore value, and the mask has its image's size. All problems of the split are
 * collected and thrown together, each naming the file (and the pixel and value for masks).
 */
import { existsSync } from 'node:fs';
import { DatasetProblemsError } from '@refconv/engine';
import type { SegSample } from './dataset.js';
import { imageSizeFromHeader } from './image-size.js';
import { readMask } from './io.js';

export { MAX_LISTED_PROBLEMS } from '@refconv/engine';

/** Every problem found while opening a segmentation split, one line each (each naming the file). */
export class SegDatasetError extends DatasetProblemsError {
  constructor(source: string, problems: string[]) {
    super(source, problems);
    this.name = 'SegDatasetError';
  }
}

/**
 * Checks every sample (see the file comment); returns the problems, one line each.
 * Images are checked by their PNG/JPEG header (size); masks are decoded in full.
 */
export function checkSamples(samples: readonly SegSample[]): string[] {
  const problems: string[] = [];
  for (const s of samples) {
    const imageExists = existsSync(s.image);
    if (!imageExists) problems.push(`image ${s.image} does not exist`);
    if (!existsSync(s.mask)) {
      problems.push(`mask ${s.mask} (of image ${s.image}) does not exist`);
      continue;
    }
    let size: { width: number; height: number } | undefined;
    try {
      size = imageExists ? imageSizeFromHeader(s.image) : undefined;
    } catch (e) {
      problems.push((e as Error).message);
    }
    try {
      const mask = readMask(s.mask, s.maskKind);
      if (size && (size.width !== mask.width || size.height !== mask.height)) {
        problems.push(`mask ${s.mask} is ${mask.width}x${mask.height} but its image ${s.image} is ${size.width}x${size.height}`);
      }
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  return problems;
}

/**
 * Throws a {@link SegDatasetError} naming `source` when {@link checkSamples} finds anything.
 */
export function validateSamples(samples: readonly SegSample[], source: string): void {
  const problems = checkSamples(samples);
  if (problems.length) throw new SegDatasetError(source, problems);
}
