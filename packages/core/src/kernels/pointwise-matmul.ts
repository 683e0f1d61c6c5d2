/**
 * 1x1 convolutions as matrix products: the route the kernel self-check (kernel-check.ts) switches
 * 1x1 convs to when a host's oneDNN 1x1 conv kernel is wrong or crashes, since MatMul runs on a
 * different kernel (oneDNN's matmul, or Eigen's contraction).
 *
 * For a 1x1 kernel W [1, 1, Cin, Cout] and stride s, with 'same' or 'valid' padding (identical for
 * k = 1: no padding), y = x[:, ::s, ::s, :] . W. Layouts are NHWC.
 */
import * as tf from '@tensorflow/tfjs';

/** Whether a kernel shape [kh, kw, ...] is 1x1. */
export const isPointwise = (shape: readonly number[]): boolean => shape[0] === 1 && shape[1] === 1;

/** x sampled at the stride: [N, ceil(H/s), ceil(W/s), C]. */
function sampled(x: tf.Tensor4D, [sh, sw]: [number, number]): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x;
  const [n, h, w, c] = x.shape;
  return tf.stridedSlice(x, [0, 0, 0, 0], [n, h, w, c], [1, sh, sw, 1]) as tf.Tensor4D;
}

/** y = conv2d(x, W) for a 1x1 kernel W [1, 1, Cin, Cout]. */
export function pointwiseConv(x: tf.Tensor4D, filter: tf.Tensor4D, strides: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const xs = sampled(x, strides);
    const [n, ho, wo, cin] = xs.shape;
    const cout = filter.shape[3];
    return tf.reshape(tf.matMul(tf.reshape(xs, [-1, cin]), tf.reshape(filter, [cin, cout])), [n, ho, wo, cout]) as tf.Tensor4D;
  });
}

/** dL/dW [1, 1, Cin, Cout] of y = conv2d(x, W) for a 1x1 kernel: x_s^T . dy. */
export function pointwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, strides: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const xs = sampled(x, strides);
    const cin = xs.shape[3];
    const cout = dy.shape[3];
    return tf.reshape(tf.matMul(tf.reshape(xs, [-1, cin]), tf.reshape(dy, [-1, cout]), true, false), [1, 1, cin, cout]) as tf.Tensor4D;
  });
}

/**
 * dL/dx of y = conv2d(x, W) for a 1x1 kernel: dy . W^T at the sampled positions, zero elsewhere
 * (spread out by the stride, then cropped to x's shape).
 */
export function pointwiseInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], [sh, sw]: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, ho, wo, cout] = dy.shape;
    const cin = filter.shape[2];
    const g = tf.reshape(tf.matMul(tf.reshape(dy, [-1, cout]), tf.reshape(filter, [cin, cout]), false, true), [n, ho, wo, cin]);
    if (sh === 1 && sw === 1) return g as tf.Tensor4D;
    const spread = tf.pad(tf.reshape(g, [n, ho, 1, wo, 1, cin]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    return tf.slice(tf.reshape(spread, [n, ho * sh, wo * sw, cin]), [0, 0, 0, 0], [n, inputShape[1]!, inputShape[2]!, cin]) as tf.Tensor4D;
  });
}
