/**
 * Convolution kernels read from a checkpoint's weights alone (no graph needed), so the kernel
 * analyses work on every checkpoint the classify, detect and segment pipelines write.
 *
 * Layouts (tfjs, NHWC): a regular conv kernel is `[K, K, Cin, Cout]` (`<layer>/kernel`), a
 * depthwise kernel `[K, K, C, mult]` (`<layer>/depthwise_kernel`). A RefConv2D layer stores its
 * frozen basis W_b (`<layer>/basis`, same layout) and its transform (`<layer>/transform`,
 * `[mapK, mapK, N/G, N or 1]`); its effective kernel W_t = W_b + Transform(W_b) is computed with
 * `@refconv/core`'s `refocusKernel`, exactly the kernel `fuse()` writes.
 */
import * as tf from '@tensorflow/tfjs';
import { readSafetensors, refocusKernel, type SafetensorsContents } from '@refconv/core';

/** One convolution of a checkpoint. */
export interface ConvKernel {
  /** Layer name (the weight name without `/kernel`, `/basis`, ...), e.g. `layer1.0.conv1`. */
  layer: string;
  /** `conv` (plain Conv2D), `depthwise` (DepthwiseConv2D) or `refconv` (a RefConv2D of either kind). */
  kind: 'conv' | 'depthwise' | 'refconv';
  /** `[K, K, A, B]`: `[K, K, Cin, Cout]`, or `[K, K, C, mult]` for depthwise kernels. */
  shape: [number, number, number, number];
  /** The kernel the layer convolves with (W_t for RefConv layers), row-major in `shape`. */
  kernel: Float32Array;
  /** RefConv layers only: the frozen basis W_b, same shape. */
  basis?: Float32Array;
}

const OPTIMIZER_PREFIX = '__optimizer__/';

function asF32(file: string, name: string, t: { data: unknown; shape: number[]; dtype: string }): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new Error(`${file}: weight '${name}' is ${t.dtype}, expected F32 for a conv kernel`);
  return t.data;
}

/**
 * Every 4-D convolution kernel of a checkpoint, in file order (optimizer state is skipped).
 *
 * @param source a `.safetensors` path (any pipeline's checkpoint) or already-read contents.
 * @param where name used in error messages (defaults to the path).
 * @throws Error naming the file and layer when a RefConv basis has no transform (or the reverse)
 *   or a kernel is not 4-D.
 */
export function readConvKernels(source: string | SafetensorsContents, where?: string): ConvKernel[] {
  const file = where ?? (typeof source === 'string' ? source : '<weights>');
  const st = typeof source === 'string' ? readSafetensors(source) : source;
  const out: ConvKernel[] = [];
  for (const [name, t] of st) {
    if (name.startsWith(OPTIMIZER_PREFIX)) continue;
    const slash = name.lastIndexOf('/');
    const layer = name.slice(0, slash);
    const leaf = name.slice(slash + 1);
    if (leaf !== 'kernel' && leaf !== 'depthwise_kernel' && leaf !== 'basis') continue;
    if (t.shape.length !== 4) {
      if (leaf === 'kernel') continue; // dense layers' kernels are 2-D
      throw new Error(`${file}: '${name}' has shape [${t.shape}], expected a 4-D conv kernel`);
    }
    const shape = t.shape as [number, number, number, number];
    if (leaf !== 'basis') {
      out.push({ layer, kind: leaf === 'kernel' ? 'conv' : 'depthwise', shape, kernel: asF32(file, name, t) });
      continue;
    }
    const tr = st.get(`${layer}/transform`);
    if (!tr) throw new Error(`${file}: RefConv layer '${layer}' has a basis but no '${layer}/transform'`);
    const basis = asF32(file, name, t);
    const kernel = tf.tidy(() => {
      const b = tf.tensor4d(basis, shape);
      const m = tf.tensor4d(asF32(file, `${layer}/transform`, tr), tr.shape as [number, number, number, number]);
      return refocusKernel(b, m).dataSync() as Float32Array;
    });
    // Whether a RefConv2D wraps a regular or a depthwise conv is not recorded in the weights; the
    // skeleton does not depend on it (it averages |w| over the last two axes either way).
    out.push({ layer, kind: 'refconv', shape, kernel: new Float32Array(kernel), basis: new Float32Array(basis) });
  }
  for (const [name] of st) {
    // optimizer state holds the transforms' momentum but none for the frozen bases
    if (name.startsWith(OPTIMIZER_PREFIX)) continue;
    if (name.endsWith('/transform') && !st.has(name.replace(/\/transform$/, '/basis'))) {
      throw new Error(`${file}: '${name}' has no matching basis '${name.replace(/\/transform$/, '/basis')}'`);
    }
  }
  return out;
}

/** Reads element `[y, x, a, b]` of a `[K, K, A, B]` row-major kernel. */
export function kernelAt(k: ConvKernel, y: number, x: number, a: number, b: number): number {
  const [, K, A, B] = k.shape;
  return k.kernel[((y * K + x) * A + a) * B + b]!;
}
