/**
 * Inference over whole images (or sliding windows), optional multi-scale + flip, and the
 * split-level evaluation that accumulates one confusion matrix over every pixel at the
 * ground truth's own resolution.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { createProgress, prefetch } from '@refconv/engine';
import { IGNORE_INDEX, type DatasetInfo, type SegSample } from './data/datasets.js';
import { loadSample, type RgbImage } from './data/io.js';
import { normalise, resizeRgb } from './data/transforms.js';
import { ConfusionMatrix, type SegMetrics } from './metrics.js';
import { mainLogits, type Predictor, type SizedModels } from './model/segmenter.js';

/** How to turn an image into class scores. */
export interface InferenceOptions {
  /** `whole`: one pass over the (resized) image; `slide`: overlapping crops, averaged. */
  mode: 'whole' | 'slide';
  /** Resize factor applied before inference (the training resolution; 1 = native). */
  baseScale: number;
  /** Extra scale factors averaged together (multi-scale test; default [1]). */
  scales: number[];
  /** Also run on the horizontally flipped image and average. */
  flip: boolean;
  /** Sliding window `[h, w]` and step `[h, w]` in resized pixels (slide mode). */
  crop?: [number, number];
  stride?: [number, number];
  mean: readonly number[];
  std: readonly number[];
}

function toInput(img: RgbImage, mean: readonly number[], std: readonly number[]): tf.Tensor4D {
  return tf.tensor4d(normalise(img, mean, std), [1, img.height, img.width, 3]);
}

/**
 * Logits `[1, h, w, K]` of the sliding-window pass (mmsegmentation's `slide_inference` grid).
 * An image smaller than the window is zero-padded (after normalisation) to the window size and
 * the logits cropped back, so every window runs through the one model built at `crop`.
 */
function slideLogits(model: Predictor, input: tf.Tensor4D, crop: [number, number], stride: [number, number]): tf.Tensor4D {
  const [, h0, w0] = input.shape;
  const h = Math.max(h0, crop[0]);
  const w = Math.max(w0, crop[1]);
  const x = h === h0 && w === w0 ? input : tf.pad(input, [[0, 0], [0, h - h0], [0, w - w0], [0, 0]]);
  const rows = Math.max(h - crop[0] + stride[0] - 1, 0);
  const cols = Math.max(w - crop[1] + stride[1] - 1, 0);
  const gridH = Math.floor(rows / stride[0]) + 1;
  const gridW = Math.floor(cols / stride[1]) + 1;
  let sum: tf.Tensor4D | undefined;
  const count = new Float32Array(h * w);
  for (let i = 0; i < gridH; i++) {
    for (let j = 0; j < gridW; j++) {
      const y2 = Math.min(i * stride[0] + crop[0], h);
      const x2 = Math.min(j * stride[1] + crop[1], w);
      const y1 = Math.max(y2 - crop[0], 0);
      const x1 = Math.max(x2 - crop[1], 0);
      const next = tf.tidy(() => {
        const patch = tf.slice(x, [0, y1, x1, 0], [1, y2 - y1, x2 - x1, 3]);
        const logits = mainLogits(model.predict(patch) as tf.Tensor);
        const padded = tf.pad(logits, [[0, 0], [y1, h - y2], [x1, w - x2], [0, 0]]);
        return sum ? tf.add(sum, padded) : padded;
      }) as tf.Tensor4D;
      sum?.dispose();
      sum = next;
      for (let y = y1; y < y2; y++) for (let xx = x1; xx < x2; xx++) count[y * w + xx] = count[y * w + xx]! + 1;
    }
  }
  const out = tf.tidy(() => tf.slice(tf.div(sum!, tf.tensor4d(count, [1, h, w, 1])), [0, 0, 0, 0], [1, h0, w0, -1])) as tf.Tensor4D;
  sum!.dispose();
  if (x !== input) x.dispose();
  return out;
}

/**
 * Class probabilities `[H, W, K]` at the image's own resolution: softmax of the logits of each
 * scale (and flip), resized bilinearly to `H x W` and averaged.
 */
export async function predictProbs(models: SizedModels, image: RgbImage, opts: InferenceOptions): Promise<tf.Tensor3D> {
  let acc: tf.Tensor3D | undefined;
  let n = 0;
  for (const s of opts.scales) {
    const w = Math.max(8, Math.round(image.width * opts.baseScale * s));
    const h = Math.max(8, Math.round(image.height * opts.baseScale * s));
    const resized = await resizeRgb(image, w, h);
    const crop = opts.crop ?? [h, w];
    const model = opts.mode === 'slide' ? await models.predictor(crop[0], crop[1]) : await models.predictor(h, w);
    const next = tf.tidy(() => {
      const x = toInput(resized, opts.mean, opts.std);
      const run = (inp: tf.Tensor4D) =>
        opts.mode === 'slide'
          ? slideLogits(model, inp, crop, opts.stride ?? crop)
          : mainLogits(model.predict(inp));
      let probs = tf.softmax(run(x));
      if (opts.flip) probs = tf.add(probs, tf.reverse(tf.softmax(run(tf.reverse(x, 2))), 2));
      const full = tf.image.resizeBilinear(probs as tf.Tensor4D, [image.height, image.width], false, true).squeeze([0]) as tf.Tensor3D;
      return acc ? tf.add(acc, full) : full;
    }) as tf.Tensor3D;
    acc?.dispose();
    acc = next;
    n += opts.flip ? 2 : 1;
  }
  const out = tf.tidy(() => tf.div(acc!, n)) as tf.Tensor3D;
  acc!.dispose();
  return out;
}

/** Arg-max class map `[H * W]` of {@link predictProbs}. */
export async function predictClasses(models: SizedModels, image: RgbImage, opts: InferenceOptions): Promise<Uint8Array> {
  const probs = await predictProbs(models, image, opts);
  const arg = tf.argMax(probs, -1);
  const out = Uint8Array.from(arg.dataSync());
  tf.dispose([probs, arg]);
  return out;
}

function colourise(classes: Uint8Array, palette: DatasetInfo['palette']): Uint8Array {
  const rgb = new Uint8Array(classes.length * 3);
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i]!;
    const colour = c === IGNORE_INDEX ? [0, 0, 0] : palette[c];
    if (!colour) throw new Error(`colourise: class ${c} has no palette colour (palette has ${palette.length})`);
    rgb.set(colour, i * 3);
  }
  return rgb;
}

/**
 * Writes `image | ground truth | prediction` side by side (colourised with the dataset
 * palette, ignore in black) as a PNG, for looking at what the model gets wrong.
 */
export async function writePanel(file: string, image: RgbImage, gt: Uint8Array, pred: Uint8Array, palette: DatasetInfo['palette']): Promise<void> {
  const { width, height } = image;
  const raw = { width, height, channels: 3 as const };
  const parts = [image.data, colourise(gt, palette), colourise(pred, palette)];
  await sharp({ create: { width: width * 3, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite(parts.map((data, i) => ({ input: Buffer.from(data), raw, left: i * width, top: 0 })))
    .removeAlpha()
    .png()
    .toFile(file);
}

/** Writes a class map as an RGB PNG in the dataset's palette (ignore = black). */
export async function writeColourised(file: string, classes: Uint8Array, width: number, height: number, palette: DatasetInfo['palette']): Promise<void> {
  await sharp(colourise(classes, palette), { raw: { width, height, channels: 3 } }).png().toFile(file);
}

/** Options of {@link evaluateSplit}. */
export interface EvaluateOptions extends InferenceOptions {
  info: DatasetInfo;
  /** Write `<id>.png` colourised predictions here. */
  saveDir?: string;
  /** With `saveDir`, also write `<id>_panel.png` (image | ground truth | prediction) for the first N images. */
  panels?: number;
  /** Show a progress bar / log lines (default true). */
  progress?: boolean;
  /** Label of the progress display. */
  label?: string;
}

/** Evaluates the models over `samples`: one confusion matrix over the whole split. */
export async function evaluateSplit(models: SizedModels, samples: SegSample[], opts: EvaluateOptions): Promise<{ metrics: SegMetrics; confusion: ConfusionMatrix }> {
  const cm = new ConfusionMatrix(opts.info.classNames.length);
  if (opts.saveDir) mkdirSync(opts.saveDir, { recursive: true });
  const bar = opts.progress === false ? undefined : createProgress({ label: opts.label ?? 'eval', total: samples.length });
  let index = 0;
  for await (const s of prefetch(samples.length, (i) => loadSample(samples[i]!), 2)) {
    const pred = await predictClasses(models, s.image, opts);
    cm.update(s.mask.data, pred, s.sample.mask);
    if (opts.saveDir) await writeColourised(join(opts.saveDir, `${s.sample.id}.png`), pred, s.image.width, s.image.height, opts.info.palette);
    if (opts.saveDir && index < (opts.panels ?? 0)) await writePanel(join(opts.saveDir, `${s.sample.id}_panel.png`), s.image, s.mask.data, pred, opts.info.palette);
    index++;
    bar?.tick(1, 1);
  }
  const metrics = cm.compute();
  bar?.finish({ mIoU: metrics.mIoU });
  return { metrics, confusion: cm };
}
