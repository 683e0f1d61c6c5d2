/**
 * The convolution layers of a tfjs model and the kernels they convolve with.
 */
import * as tf from '@tensorflow/tfjs';
import { RefConv2D, refocusKernel } from '@refconv/core';

/** A conv layer of a model. */
export interface ModelConv {
  /** Layer name, e.g. `layer1.0.conv1`. */
  name: string;
  layer: tf.layers.Layer;
  depthwise: boolean;
  refconv: boolean;
}

/**
 * Conv2D, DepthwiseConv2D and RefConv2D layers of a model in layer order (top-level layers;
 * a nested model's layers are searched too).
 */
export function convLayersOf(model: tf.LayersModel): ModelConv[] {
  const out: ModelConv[] = [];
  const walk = (layers: tf.layers.Layer[]): void => {
    for (const l of layers) {
      const cls = l.getClassName();
      if (l instanceof RefConv2D) out.push({ name: l.name, layer: l, depthwise: l.depthwise, refconv: true });
      else if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') out.push({ name: l.name, layer: l, depthwise: cls === 'DepthwiseConv2D', refconv: false });
      else if ((l as unknown as tf.LayersModel).layers) walk((l as unknown as tf.LayersModel).layers);
    }
  };
  walk(model.layers);
  return out;
}

/** The kernel a conv layer uses (`[K, K, Cin, Cout]` or `[K, K, C, mult]`): W_t for RefConv2D. */
export function layerKernel(c: ModelConv): { data: Float32Array; shape: [number, number, number, number] } {
  return tf.tidy(() => {
    let k: tf.Tensor4D;
    if (c.refconv) {
      const r = c.layer as RefConv2D;
      k = refocusKernel(r.getBasis(), r.getTransform());
    } else {
      const v = c.layer.weights.find((w) => /\/(depthwise_)?kernel$/.test(w.originalName));
      if (!v) throw new Error(`layer '${c.name}' (${c.layer.getClassName()}) has no kernel weight`);
      k = v.read() as tf.Tensor4D;
    }
    return { data: new Float32Array(k.dataSync()), shape: k.shape as [number, number, number, number] };
  });
}
