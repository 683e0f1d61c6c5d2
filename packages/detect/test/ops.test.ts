import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  AnchorGenerator,
  BELOW_LOW_THRESHOLD,
  BETWEEN_THRESHOLDS,
  BoxCoder,
  Matcher,
  RETINANET_ANCHOR_SIZES,
  batchedNms,
  boxArea,
  boxConvert,
  boxIou,
  boxIouHost,
  cellAnchors,
  clipBoxesToImage,
  generalizedBoxIou,
  generalizedBoxIouLoss,
  nms,
  sigmoidFocalLoss,
  smoothL1Loss,
} from '../src/index.js';
import { expectClose, fixture } from './helpers.js';

const fx = fixture<Record<string, number[] & number[][]>>('box_ops.json');
const t2 = (v: number[]) => tf.tensor2d(v, [v.length / 4, 4]);

describe('box ops, hand-computed', () => {
  it('IoU and GIoU of two unit-offset squares', () => {
    // [0,0,2,2] vs [1,1,3,3]: inter 1, union 7; hull 9 -> giou = 1/7 - 2/9
    const a = t2([0, 0, 2, 2]);
    const b = t2([1, 1, 3, 3]);
    expectClose(boxIou(a, b).dataSync(), [1 / 7]);
    expectClose(generalizedBoxIou(a, b).dataSync(), [1 / 7 - 2 / 9]);
    expectClose(generalizedBoxIouLoss(a, b).dataSync(), [1 - (1 / 7 - 2 / 9)], 1e-5);
  });

  it('NMS keeps the best of an overlapping pair and a disjoint box', () => {
    const boxes = [0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30];
    // IoU(0,1) = 81 / 119 = 0.68
    expect(nms(boxes, [0.9, 0.95, 0.1], 0.5)).toEqual([1, 2]);
    expect(nms(boxes, [0.9, 0.95, 0.1], 0.7)).toEqual([1, 0, 2]);
    // different classes never suppress each other
    expect(batchedNms(boxes, [0.9, 0.95, 0.1], [0, 1, 0], 0.5)).toEqual([1, 0, 2]);
  });

  it('BoxCoder round trip and a hand-computed code', () => {
    const coder = new BoxCoder([10, 10, 5, 5]);
    const anchor = t2([0, 0, 10, 20]);
    const gt = t2([5, 0, 15, 40]); // centre (10,20) vs (5,10); w same, h doubled
    expectClose(coder.encode(gt, anchor).dataSync(), [10 * 0.5, 10 * 0.5, 0, 5 * Math.log(2)], 1e-5);
    expectClose(coder.decode(coder.encode(gt, anchor), anchor).dataSync(), [5, 0, 15, 40], 1e-4);
  });

  it('Matcher thresholds and low-quality matches, hand-computed', () => {
    // 2 gts x 4 predictions
    const q = [0.9, 0.45, 0.2, 0.1, 0.3, 0.5, 0.3, 0.35];
    const m = new Matcher({ highThreshold: 0.5, lowThreshold: 0.4 });
    expect(Array.from(m.match(q, 2, 4))).toEqual([0, 1, BELOW_LOW_THRESHOLD, BELOW_LOW_THRESHOLD]);
    const strict = new Matcher({ highThreshold: 0.95, lowThreshold: 0.4, allowLowQualityMatches: true });
    // gt0's best is pred0 (0.9), gt1's best is pred1 (0.5) -> both restored; pred1's argmax is gt1
    expect(Array.from(strict.match(q, 2, 4))).toEqual([0, 1, BELOW_LOW_THRESHOLD, BELOW_LOW_THRESHOLD]);
    const noLow = new Matcher({ highThreshold: 0.95, lowThreshold: 0.4 });
    expect(Array.from(noLow.match(q, 2, 4))).toEqual([BETWEEN_THRESHOLDS, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD, BELOW_LOW_THRESHOLD]);
    expect(() => m.match([], 0, 4)).toThrow(/no ground-truth/);
  });

  it('cell anchors of size 32 at ratios 0.5/1/2, written out', () => {
    // h = 32*sqrt(r), w = 32/sqrt(r): r=0.5 -> w 45.25, h 22.63 -> half 22.63/11.31 rounded
    expect(Array.from(cellAnchors([32], [0.5, 1, 2]))).toEqual([-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23]);
    expect(RETINANET_ANCHOR_SIZES[0]).toEqual([32, 40, 50]);
  });

  it('anchors are shifted by the stride, row-major with anchors innermost', () => {
    const gen = new AnchorGenerator([[16]], [[1]]);
    const a = Array.from(gen.generate([32, 64], [[2, 4]]));
    expect(a.slice(0, 8)).toEqual([-8, -8, 8, 8, 8, -8, 24, 8]); // (y0,x0), (y0,x1)
    expect(a.slice(16, 20)).toEqual([-8, 8, 8, 24]); // (y1,x0)
  });

  it('smooth-L1 with beta 1, hand-computed', () => {
    expectClose(smoothL1Loss(tf.tensor1d([0.5, 3]), tf.tensor1d([0, 0])).dataSync(), [0.125, 2.5]);
  });
});

describe('box ops vs torchvision fixtures', () => {
  const a = t2(fx.boxes_a);
  const b = t2(fx.boxes_b);
  it('iou, giou, area, convert, clip', () => {
    expectClose(boxIou(a, b).dataSync(), fx.box_iou, 1e-5);
    expectClose(boxIouHost(fx.boxes_a, fx.boxes_b), fx.box_iou, 1e-5);
    expectClose(generalizedBoxIou(a, b).dataSync(), fx.generalized_box_iou, 1e-5);
    expectClose(boxArea(a).dataSync(), fx.box_area, 1e-3);
    expectClose(boxConvert(a, 'xyxy', 'cxcywh').dataSync(), fx.xyxy_to_cxcywh);
    expectClose(boxConvert(a, 'xyxy', 'xywh').dataSync(), fx.xyxy_to_xywh);
    expectClose(boxConvert(boxConvert(a, 'xyxy', 'cxcywh'), 'cxcywh', 'xywh').dataSync(), fx.xyxy_to_xywh);
    expectClose(boxConvert(boxConvert(a, 'xyxy', 'xywh'), 'xywh', 'xyxy').dataSync(), fx.boxes_a);
    expectClose(clipBoxesToImage(a, [40, 60]).dataSync(), fx.clip_60x40);
  });

  it('nms and batched nms', () => {
    expect(nms(fx.nms_boxes, fx.nms_scores, 0.5)).toEqual(fx['nms_keep_0.5']);
    expect(nms(fx.nms_boxes, fx.nms_scores, 0.3)).toEqual(fx['nms_keep_0.3']);
    expect(batchedNms(fx.nms_boxes, fx.nms_scores, fx.nms_labels, 0.5)).toEqual(fx['batched_nms_keep_0.5']);
  });

  it('BoxCoder encode/decode with weights and the xform clip', () => {
    const gt = t2(fx.coder_gt);
    const anchors = t2(fx.coder_anchors);
    expectClose(new BoxCoder().encode(gt, anchors).dataSync(), fx.encode_w1111);
    expectClose(new BoxCoder().decode(t2(fx.codes_w1111), anchors).dataSync(), fx.decode_w1111, 1e-3);
    const w = new BoxCoder([10, 10, 5, 5]);
    expectClose(w.encode(gt, anchors).dataSync(), fx.encode_w10_10_5_5);
    expectClose(w.decode(t2(fx.codes_w10_10_5_5), anchors).dataSync(), fx.decode_w10_10_5_5, 1e-3);
  });

  it('Matcher', () => {
    const [m, n] = fx.matcher_shape as unknown as [number, number];
    const q = new Float32Array(fx.matcher_quality);
    expect(Array.from(new Matcher({ highThreshold: 0.5, lowThreshold: 0.4, allowLowQualityMatches: true }).match(q, m, n))).toEqual(
      fx['matcher_0.5_0.4_lowq'],
    );
    expect(Array.from(new Matcher({ highThreshold: 0.7, lowThreshold: 0.3 }).match(q, m, n))).toEqual(fx['matcher_0.7_0.3']);
  });

  it('AnchorGenerator with RetinaNet sizes', () => {
    const gen = new AnchorGenerator();
    expect(gen.numAnchorsPerLocation()).toEqual([9, 9, 9, 9, 9]);
    fx.cell_anchors.forEach((c, i) => expect(Array.from(cellAnchors(RETINANET_ANCHOR_SIZES[i]!, [0.5, 1, 2]))).toEqual(c));
    const grids = fx.anchor_grids as unknown as [number, number][];
    expect(Array.from(gen.generate([96, 128], grids))).toEqual(fx.anchors);
  });

  it('focal loss value and gradient', () => {
    const x = tf.tensor2d(fx.focal_logits, [5, 3]);
    const y = tf.tensor2d(fx.focal_targets, [5, 3]);
    expectClose(sigmoidFocalLoss(x, y).dataSync(), fx.focal_loss, 1e-5);
    const g = tf.grad((v: tf.Tensor) => sigmoidFocalLoss(v, y, { reduction: 'sum' }))(x);
    expectClose(g.dataSync(), fx.focal_loss_grad, 1e-5);
  });

  it('smooth-L1 and GIoU loss with gradient', () => {
    const x = tf.tensor2d(fx.sl1_input, [6, 4]);
    const y = tf.tensor2d(fx.sl1_target, [6, 4]);
    expectClose(smoothL1Loss(x, y, { beta: 1 / 9 }).dataSync(), fx['smooth_l1_beta_1/9']);
    expectClose(smoothL1Loss(x, y).dataSync(), fx.smooth_l1_beta_1);
    const p1 = t2(fx.giou_boxes1);
    const p2 = t2(fx.giou_boxes2);
    expectClose(generalizedBoxIouLoss(p1, p2).dataSync(), fx.giou_loss, 1e-5);
    const g = tf.grad((v: tf.Tensor) => generalizedBoxIouLoss(v as tf.Tensor2D, p2, { reduction: 'sum' }))(p1);
    expectClose(g.dataSync(), fx.giou_loss_grad, 1e-5, 1e-3);
  });
});

describe('smooth-L1 gradient', () => {
  it('is (x - t) / beta inside and sign(x - t) outside the beta band', () => {
    const x = tf.tensor1d([0.05, -0.05, 0.5, -2]);
    const g = tf.grad((v: tf.Tensor) => smoothL1Loss(v, tf.zeros([4]), { beta: 0.1, reduction: 'sum' }))(x);
    expectClose(g.dataSync(), [0.5, -0.5, 1, -1], 1e-5);
  });
});
