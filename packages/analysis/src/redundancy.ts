/**
 * Channel redundancy of convolution layers, in feature space and in weight space.
 *
 * Feature space, for one image and one layer with output maps F `[H, W, C]` (the conv's output,
 * before BN and activation), C >= 2:
 * - `p_c = softmax over the H*W positions of F[:, :, c]` (each channel's spatial distribution);
 *   `D(c, d) = (KL(p_c || p_d) + KL(p_d || p_c)) / 2` (natural log, nats); **kl** = mean of D over the
 *   C*(C-1) ordered pairs c != d (= over the unordered pairs). Higher = channels attend to
 *   different places = less redundant.
 * - **cos** = mean over pairs c != d of `|<f_c, f_d>| / (||f_c|| ||f_d||)`, f_c = F[:, :, c]
 *   flattened (a pair with an all-zero map counts as 0). Higher = more redundant.
 * Both are averaged over the images of the batch.
 *
 * Weight space, for a kernel `[K, K, Cin, Cout]`: the Cout output kernels `w[:, :, :, o]`
 * flattened to K*K*Cin vectors; for a depthwise kernel `[K, K, C, mult]` the C*mult 2-D kernels
 * (K*K vectors). **weightCos** = mean over pairs of their absolute cosine similarity.
 */
import * as tf from '@tensorflow/tfjs';

/** Feature-space redundancy of one layer. */
export interface FeatureRedundancy {
  /** Mean pairwise symmetric KL between channels' spatial softmax distributions (nats). */
  kl: number;
  /** Mean pairwise |cosine| between channels' flattened maps. */
  cos: number;
}

/**
 * Per-image mean pairwise symmetric KL and |cosine| of a batch of feature maps, summed over the
 * images (divide by B for the mean; summing lets callers accumulate over chunks).
 *
 * @param maps `[B, H, W, C]`, C >= 2.
 * @returns sums over the B images of the per-image means (plain numbers; no tensor is kept).
 */
export function featureRedundancySums(maps: tf.Tensor4D): { klSum: number; cosSum: number; images: number } {
  const [b, h, w, c] = maps.shape;
  if (c < 2) throw new Error(`channel redundancy needs >= 2 channels, got maps of shape [${maps.shape}]`);
  const pairs = c * (c - 1);
  return tf.tidy(() => {
    const x = tf.transpose(tf.reshape(maps, [b, h * w, c]), [0, 2, 1]) as tf.Tensor3D; // [B, C, HW]
    const logP = tf.logSoftmax(x, -1);
    const p = tf.exp(logP);
    const negEnt = tf.sum(tf.mul(p, logP), -1); // [B, C]: sum_x p log p
    const cross = tf.matMul(p, logP, false, true); // [B, C, C]: [c][d] = sum_x p_c log p_d
    // sum over c != d of (KL(c||d) + KL(d||c))/2 = sum_{c,d} (negEnt_c - cross_cd) (diagonal terms are KL(c||c) = 0 exactly in math; subtract them numerically)
    const klAll = tf.sub(tf.expandDims(negEnt, 2), cross); // [B, C, C]: KL(p_c || p_d)
    const diag = tf.sub(negEnt, tf.sum(tf.mul(cross, tf.eye(c).expandDims(0)), -1)); // KL(c||c) as computed
    const klPerImage = tf.div(tf.sub(tf.sum(klAll, [1, 2]), tf.sum(diag, 1)), pairs);
    const norm = tf.sqrt(tf.sum(tf.square(x), -1, true)); // [B, C, 1]
    const xn = tf.divNoNan(x, norm);
    const g = tf.abs(tf.matMul(xn, xn, false, true)); // [B, C, C]
    const gDiag = tf.sum(tf.mul(g, tf.eye(c).expandDims(0)), [1, 2]);
    const cosPerImage = tf.div(tf.sub(tf.sum(g, [1, 2]), gDiag), pairs);
    return { klSum: tf.sum(klPerImage).dataSync()[0]!, cosSum: tf.sum(cosPerImage).dataSync()[0]!, images: b };
  });
}

/** Mean feature-space redundancy of `[B, H, W, C]` maps over the B images. */
export function featureRedundancy(maps: tf.Tensor4D): FeatureRedundancy {
  const s = featureRedundancySums(maps);
  return { kl: s.klSum / s.images, cos: s.cosSum / s.images };
}

/**
 * Mean pairwise |cosine| between a kernel's output kernels (see the module doc).
 *
 * @param kernel `[K, K, Cin, Cout]` values, or `[K, K, C, mult]` when `depthwise`.
 * @returns NaN when there are fewer than 2 output kernels.
 */
export function weightRedundancy(kernel: Float32Array, shape: [number, number, number, number], depthwise: boolean): number {
  const [k, k2, a, b] = shape;
  if (kernel.length !== k * k2 * a * b) throw new Error(`weightRedundancy: ${kernel.length} values for shape [${shape}]`);
  const n = depthwise ? a * b : b;
  if (n < 2) return NaN;
  return tf.tidy(() => {
    const w = tf.tensor4d(kernel, shape);
    // rows = output kernels
    const v = depthwise ? tf.transpose(tf.reshape(w, [k * k2, a * b])) : tf.transpose(tf.reshape(w, [k * k2 * a, b]));
    const vn = tf.divNoNan(v, tf.norm(v, 'euclidean', 1, true));
    const g = tf.abs(tf.matMul(vn, vn, false, true));
    const off = tf.sub(tf.sum(g), tf.sum(tf.mul(g, tf.eye(n))));
    return off.dataSync()[0]! / (n * (n - 1));
  });
}
