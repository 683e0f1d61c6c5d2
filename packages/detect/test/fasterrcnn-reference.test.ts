/**
 * Faster R-CNN's RPN and RoI-head logic against torchvision's own code
 * (fixtures from tools/make_frcnn_fixtures.py: `filter_proposals`, `assign_targets_to_anchors`,
 * `compute_loss`, `select_training_samples`, `fastrcnn_loss`, `postprocess_detections`, and the
 * losses' autograd gradients). The fixture's sampler permutation is the identity; so is ours here.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  BoxCoder,
  Matcher,
  fastRcnnLoss,
  filterProposals,
  postprocessDetections,
  rpnLoss,
  sampleRpnTargets,
  selectTrainingSamples,
  type ImageTargets,
} from '../src/index.js';
import { expectClose, fixture } from './helpers.js';

interface Fx {
  image_sizes: [number, number][];
  level_sizes: number[];
  anchors: number[];
  objectness: number[];
  deltas: number[];
  gt_boxes: number[][];
  gt_labels: number[][];
  rpn: { pre_nms_top_n: number; post_nms_top_n: number; nms_thresh: number; batch_size_per_image: number; positive_fraction: number };
  proposals: number[][];
  loss_objectness: number;
  loss_rpn_box_reg: number;
  grad_objectness: number[];
  grad_deltas: number[];
  roi: { batch_size_per_image: number; positive_fraction: number };
  roi_boxes: number[][];
  roi_labels: number[];
  roi_regression_targets: number[];
  class_logits: number[];
  box_regression: number[];
  loss_classifier: number;
  loss_box_reg: number;
  grad_class_logits: number[];
  grad_box_regression: number[];
  test_logits: number[];
  test_box_regression: number[];
  det_boxes: number[];
  det_scores: number[];
  det_labels: number[];
}

const fx = fixture<Fx>('fasterrcnn.json');
const identity = { permutation: (n: number) => Array.from({ length: n }, (_, i) => i) };
const rpnCoder = new BoxCoder([1, 1, 1, 1]);
const boxCoder = new BoxCoder([10, 10, 5, 5]);
const T = fx.anchors.length / 4;
const targets: ImageTargets[] = fx.gt_boxes.map((b, i) => ({ boxes: Float32Array.from(b), labels: Int32Array.from(fx.gt_labels[i]!) }));

describe('RPN vs torchvision', () => {
  it('filter_proposals: per-level top-k, decode, clip, small-box removal, per-level NMS, post-NMS top-k', () => {
    const proposals = tf.tidy(() =>
      filterProposals(fx.objectness, tf.tensor3d(fx.deltas, [2, T, 4]), tf.tensor2d(fx.anchors, [T, 4]), fx.level_sizes, fx.image_sizes, rpnCoder, {
        preNmsTopN: fx.rpn.pre_nms_top_n,
        postNmsTopN: fx.rpn.post_nms_top_n,
        nmsThreshold: fx.rpn.nms_thresh,
      }),
    );
    expect(proposals.map((p) => p.length / 4)).toEqual(fx.proposals.map((p) => p.length / 4));
    proposals.forEach((p, i) => expectClose(p, fx.proposals[i]!, 1e-4, 1e-5));
  });

  it('anchor targets, sampling and compute_loss: values and gradients', () => {
    const samples = sampleRpnTargets(Float32Array.from(fx.anchors), targets, new Matcher({ highThreshold: 0.7, lowThreshold: 0.3, allowLowQualityMatches: true }), fx.rpn.batch_size_per_image, fx.rpn.positive_fraction, identity);
    expect(samples.rows).toHaveLength(2 * fx.rpn.batch_size_per_image);
    const objectness = tf.tensor2d(fx.objectness, [2, T]);
    const deltas = tf.tensor3d(fx.deltas, [2, T, 4]);
    const anchors = tf.tensor2d(fx.anchors, [T, 4]);
    const losses = tf.tidy(() => {
      const l = rpnLoss(objectness, deltas, anchors, samples, rpnCoder);
      return [l.loss_objectness.dataSync()[0]!, l.loss_rpn_box_reg.dataSync()[0]!];
    });
    expectClose(losses, [fx.loss_objectness, fx.loss_rpn_box_reg], 1e-6, 1e-5);
    const [gObj, gDeltas] = tf.tidy(() =>
      tf.grads((o: tf.Tensor, d: tf.Tensor) => {
        const l = rpnLoss(o as tf.Tensor2D, d as tf.Tensor3D, anchors, samples, rpnCoder);
        return l.loss_objectness.add(l.loss_rpn_box_reg);
      })([objectness, deltas]).map((g) => g.dataSync()),
    );
    expectClose(gObj!, fx.grad_objectness, 1e-7, 1e-4);
    expectClose(gDeltas!, fx.grad_deltas, 1e-7, 1e-4);
    tf.dispose([objectness, deltas, anchors]);
  });
});

describe('RoI heads vs torchvision', () => {
  const samples = selectTrainingSamples(
    fx.proposals.map((p) => Float32Array.from(p)),
    targets,
    new Matcher({ highThreshold: 0.5, lowThreshold: 0.5 }),
    boxCoder,
    fx.roi.batch_size_per_image,
    fx.roi.positive_fraction,
    identity,
  );

  it('select_training_samples: gt appended, matched, sampled in candidate order, regression targets', () => {
    samples.boxes.forEach((b, i) => expectClose(b, fx.roi_boxes[i]!, 1e-6, 0));
    expect(Array.from(samples.labels)).toEqual(fx.roi_labels);
    expect(fx.roi_labels.some((l) => l > 0)).toBe(true);
    expectClose(samples.regressionTargets, fx.roi_regression_targets, 1e-4, 1e-4);
  });

  it('fastrcnn_loss: values and gradients', () => {
    const R = fx.roi_labels.length;
    const logits = tf.tensor2d(fx.class_logits, [R, 3]);
    const reg = tf.tensor2d(fx.box_regression, [R, 12]);
    const values = tf.tidy(() => {
      const l = fastRcnnLoss(logits, reg, samples);
      return [l.loss_classifier.dataSync()[0]!, l.loss_box_reg.dataSync()[0]!];
    });
    expectClose(values, [fx.loss_classifier, fx.loss_box_reg], 1e-6, 1e-5);
    const [gCls, gReg] = tf.tidy(() =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => {
        const l = fastRcnnLoss(a as tf.Tensor2D, b as tf.Tensor2D, samples);
        return l.loss_classifier.add(l.loss_box_reg);
      })([logits, reg]).map((g) => g.dataSync()),
    );
    expectClose(gCls!, fx.grad_class_logits, 1e-7, 1e-4);
    expectClose(gReg!, fx.grad_box_regression, 1e-7, 1e-4);
    tf.dispose([logits, reg]);
  });

  it('postprocess_detections: softmax, per-class decode, clip, threshold, per-class NMS', () => {
    const n = fx.proposals[0]!.length / 4;
    const logits = tf.tensor2d(fx.test_logits, [n, 3]);
    const reg = tf.tensor2d(fx.test_box_regression, [n, 12]);
    const det = postprocessDetections(logits, reg, Float32Array.from(fx.proposals[0]!), fx.image_sizes[0]!, fx.image_sizes[0]!, boxCoder, { scoreThreshold: 0.05, nmsThreshold: 0.5, detectionsPerImage: 100 });
    expect(det.scores.length).toBe(fx.det_scores.length);
    expectClose(det.scores, fx.det_scores, 1e-6, 1e-5);
    expectClose(det.boxes, fx.det_boxes, 1e-4, 1e-5);
    expect(Array.from(det.labels)).toEqual(fx.det_labels);
    tf.dispose([logits, reg]);
  });
});
