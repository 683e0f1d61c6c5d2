/** Runs a detector over a dataset and scores it with @refconv/coco-eval (pycocotools' COCOeval). */
import * as tf from '@tensorflow/tfjs';
import { COCO, COCOeval, type CocoDataset, type DetectionResult } from '@refconv/coco-eval';
import { compileForInference } from '@refconv/core';
import { createProgress } from '@refconv/engine';
import { toCocoGroundTruth, type DetectionDataset, type DetectionRecord } from '../data/dataset.js';
import type { ResizeOptions } from '../data/transforms.js';
import type { Detector } from '../models/detector.js';
import type { Detections } from '../models/detector.js';
import { batchTensor, iterateBatches } from './loader.js';

/** The 12 COCO bbox statistics, pycocotools' order. */
export const COCO_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;

/** What {@link evaluateDetector} returns. */
export interface EvaluationResult {
  /** The 12 stats (fractions; -1 where undefined, as pycocotools). */
  stats: number[];
  /** pycocotools' printed summary lines. */
  summary: string[];
  /** Detections in the COCO results format. */
  results: DetectionResult[];
  /** Raw detections per record, in dataset order. */
  detections: Detections[];
}

/** Converts one image's detections to COCO results (xyxy -> xywh, label -> category id). */
export function toCocoResults(record: DetectionRecord, d: Detections, categoryIds: number[]): DetectionResult[] {
  return Array.from(d.scores, (score, i) => {
    const [x1, y1, x2, y2] = d.boxes.subarray(4 * i, 4 * i + 4);
    const r2 = (v: number) => Math.round(v * 100) / 100;
    return { image_id: record.imageId, category_id: categoryIds[d.labels[i]!]!, bbox: [r2(x1!), r2(y1!), r2(x2! - x1!), r2(y2! - y1!)], score: Math.round(score * 1e5) / 1e5 };
  });
}

/** Options of {@link detectDataset} / {@link evaluateDetector}. */
export interface DetectOptions {
  batchSize?: number;
  progress?: boolean;
  /**
   * `graph` (default): the detector's network compiled for inference (`compileForInference` from
   * @refconv/core: fused, BN folded, TensorFlow's graph runtime, verified against the eager model
   * on this host, falling back to it with a warning); `eager`: the tfjs model op by op.
   */
  runtime?: 'graph' | 'eager';
}

/** Runs the detector over `ds` (in order) and returns its detections. */
export async function detectDataset(det: Detector, ds: DetectionDataset, resize: ResizeOptions, opts: DetectOptions = {}): Promise<Detections[]> {
  const batchSize = opts.batchSize ?? 2;
  const order = ds.records.map((_, i) => i);
  const compiled = opts.runtime === 'eager' || det.inference ? undefined : await compileForInference(det.model);
  if (compiled) det.inference = compiled;
  const bar = opts.progress === false ? undefined : createProgress({ label: 'eval', total: Math.ceil(order.length / batchSize) });
  const out: Detections[] = [];
  try {
    for await (const batch of iterateBatches(ds.records, order, batchSize, resize)) {
      const x = batchTensor(batch);
      try {
        out.push(...det.detect(x, batch.geometry));
      } finally {
        x.dispose();
      }
      bar?.tick(1, batch.records.length);
    }
  } finally {
    if (compiled) {
      det.inference = undefined;
      compiled.dispose();
    }
  }
  bar?.finish();
  return out;
}

/** Scores detections with COCOeval (bbox) against the dataset's ground truth. */
export function cocoEvaluate(ds: DetectionDataset, detections: Detections[]): Omit<EvaluationResult, 'detections'> {
  const gt = new COCO(toCocoGroundTruth(ds) as unknown as CocoDataset);
  const results = ds.records.flatMap((r, i) => toCocoResults(r, detections[i]!, ds.categories.ids));
  const dt = gt.loadRes(results, { allowEmpty: true });
  const E = new COCOeval(gt, dt, 'bbox');
  E.evaluate();
  E.accumulate();
  const summary: string[] = [];
  const stats = E.summarize({ log: (l) => summary.push(l) });
  return { stats, summary, results };
}

/** {@link detectDataset} then {@link cocoEvaluate}. */
export async function evaluateDetector(det: Detector, ds: DetectionDataset, resize: ResizeOptions, opts: DetectOptions = {}): Promise<EvaluationResult> {
  const detections = await detectDataset(det, ds, resize, opts);
  return { ...cocoEvaluate(ds, detections), detections };
}

/** Number of tensors alive, for leak checks around evaluation. */
export const liveTensors = (): number => tf.memory().numTensors;
