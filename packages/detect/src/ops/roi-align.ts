/**
 * RoIAlign (He et al. 2017; torchvision `ops.roi_align` semantics, NHWC) built from `tf.gather`
 * so that gradients flow to the features (GatherV2's gradient is an UnsortedSegmentSum;
 * `tf.image.cropAndResize` has none in tfjs). Sample positions and bilinear weights depend only
 * on the boxes, which get no gradient (as in torchvision), so they are computed on the host.
 */
import * as tf from '@tensorflow/tfjs';

/** Options of {@link roiAlign}. */
export interface RoiAlignOptions {
  /** Output bins `[height, width]` (torchvision box head: 7x7). */
  outputSize: [number, number];
  /** Feature stride as a scale, e.g. 1/8 for P3. */
  spatialScale: number;
  /** Samples per bin along each axis (torchvision `MultiScaleRoIAlign`: 2). Must be > 0 here. */
  samplingRatio: number;
  /** Shift boxes by -0.5 pixel (RoIAlign v2); torchvision's detection default is false. */
  aligned?: boolean;
}

/**
 * Sample indices (into the `[N * H * W]` flattened feature positions) and weights: 4 corners
 * per sample, `samplingRatio^2` samples per bin, divided by the sample count. Samples outside
 * `[-1, size]` contribute 0, as torchvision's kernel.
 */
export function roiAlignSamples(
  rois: ArrayLike<number>,
  featureShape: [number, number, number],
  opts: RoiAlignOptions,
): { indices: Int32Array; weights: Float32Array; perBin: number } {
  const [n, height, width] = featureShape;
  const [PH, PW] = opts.outputSize;
  const S = opts.samplingRatio;
  if (!(S > 0 && Number.isInteger(S))) throw new Error(`roiAlign: samplingRatio must be a positive integer here, got ${S}`);
  const K = rois.length / 5;
  if (!Number.isInteger(K)) throw new Error(`roiAlign: rois must be [K, 5] (batch index, x1, y1, x2, y2), got ${rois.length} numbers`);
  const perBin = S * S * 4;
  const indices = new Int32Array(K * PH * PW * perBin);
  const weights = new Float32Array(K * PH * PW * perBin);
  const offset = opts.aligned ? 0.5 : 0;
  let o = 0;
  for (let k = 0; k < K; k++) {
    const b = rois[5 * k]!;
    if (!(Number.isInteger(b) && b >= 0 && b < n)) throw new Error(`roiAlign: roi ${k} has batch index ${b}, but the batch has ${n} images`);
    const x0 = rois[5 * k + 1]! * opts.spatialScale - offset;
    const y0 = rois[5 * k + 2]! * opts.spatialScale - offset;
    let rw = rois[5 * k + 3]! * opts.spatialScale - offset - x0;
    let rh = rois[5 * k + 4]! * opts.spatialScale - offset - y0;
    if (!opts.aligned) {
      rw = Math.max(rw, 1);
      rh = Math.max(rh, 1);
    }
    const bh = rh / PH;
    const bw = rw / PW;
    for (let ph = 0; ph < PH; ph++) {
      for (let pw = 0; pw < PW; pw++) {
        for (let iy = 0; iy < S; iy++) {
          const y = y0 + ph * bh + ((iy + 0.5) * bh) / S;
          for (let ix = 0; ix < S; ix++) {
            const x = x0 + pw * bw + ((ix + 0.5) * bw) / S;
            o = writeCorners(indices, weights, o, b * height * width, y, x, height, width, 1 / (S * S));
          }
        }
      }
    }
  }
  return { indices, weights, perBin };
}

/** The 4 bilinear corners of one sample (torchvision's `bilinear_interpolate`). */
function writeCorners(idx: Int32Array, w: Float32Array, o: number, base: number, y: number, x: number, H: number, W: number, scale: number): number {
  if (y < -1 || y > H || x < -1 || x > W) {
    for (let c = 0; c < 4; c++) (idx[o + c] = base), (w[o + c] = 0);
    return o + 4;
  }
  y = Math.max(y, 0);
  x = Math.max(x, 0);
  let yl = Math.floor(y);
  let xl = Math.floor(x);
  let yh = yl + 1;
  let xh = xl + 1;
  if (yl >= H - 1) (yl = yh = H - 1), (y = yl);
  if (xl >= W - 1) (xl = xh = W - 1), (x = xl);
  const ly = y - yl;
  const lx = x - xl;
  const corners: [number, number, number][] = [
    [yl, xl, (1 - ly) * (1 - lx)],
    [yl, xh, (1 - ly) * lx],
    [yh, xl, ly * (1 - lx)],
    [yh, xh, ly * lx],
  ];
  for (const [cy, cx, cw] of corners) {
    idx[o] = base + cy * W + cx;
    w[o++] = cw * scale;
  }
  return o;
}

/**
 * RoIAlign over NHWC features.
 * @param features `[N, H, W, C]`
 * @param rois flat `[K * 5]`: batch index, then x1, y1, x2, y2 in image pixels
 * @returns `[K, PH, PW, C]`, differentiable with respect to `features`
 */
export function roiAlign(features: tf.Tensor4D, rois: ArrayLike<number>, opts: RoiAlignOptions): tf.Tensor4D {
  const [n, h, w, c] = features.shape;
  const K = rois.length / 5;
  const [PH, PW] = opts.outputSize;
  if (K === 0) return tf.zeros([0, PH, PW, c]);
  const { indices, weights, perBin } = roiAlignSamples(rois, [n, h, w], opts);
  return tf.tidy(() => {
    const flat = features.reshape([n * h * w, c]);
    const picked = tf.gather(flat, tf.tensor1d(indices, 'int32'));
    const weighted = picked.mul(tf.tensor2d(weights, [weights.length, 1]));
    return weighted.reshape([K * PH * PW, perBin, c]).sum(1).reshape([K, PH, PW, c]) as tf.Tensor4D;
  });
}

/**
 * FPN level of each box (torchvision `LevelMapper`, FPN paper eq. 1):
 * `clamp(floor(4 + log2(sqrt(area) / 224) + 1e-6), kMin, kMax)`.
 * @param boxes flat `[K * 4]` xyxy
 * @returns levels in `[kMin, kMax]`
 */
export function assignFpnLevels(boxes: ArrayLike<number>, kMin: number, kMax: number, canonicalScale = 224, canonicalLevel = 4): Int32Array {
  const out = new Int32Array(boxes.length / 4);
  for (let i = 0; i < out.length; i++) {
    const s = Math.sqrt((boxes[4 * i + 2]! - boxes[4 * i]!) * (boxes[4 * i + 3]! - boxes[4 * i + 1]!));
    const lvl = Math.floor(canonicalLevel + Math.log2(s / canonicalScale) + 1e-6);
    out[i] = Math.min(Math.max(lvl, kMin), kMax);
  }
  return out;
}
