/**
 * `fuse`: the deployment form of a RefConv model. Every {@link RefConv2D} becomes the plain
 * Conv2D / DepthwiseConv2D it replaced, with kernel W_t = basis + Transform(basis) computed once,
 * so the result has the original model's parameters and FLOPs and loads without RefConv code.
 * Optionally folds inference-mode BatchNormalization into the preceding conv.
 */
import * as tf from '@tensorflow/tfjs';
import {
  buildModel,
  type ContainerConfig,
  entryName,
  forEachContainer,
  type LayerEntry,
  leafLayers,
  modelConfig,
  type NodeRef,
  rewriteEntries,
  sharedConvConfig,
} from './model-config.js';
import { RefConv2D } from './refconv-layer.js';

/** Options of {@link fuse}. */
export interface FuseOptions {
  /**
   * Fold each BatchNormalization that directly and only follows a conv into that conv
   * (kernel scaled, bias added), removing the BN layer. Exact in inference mode. Default false.
   */
  foldBatchNorm?: boolean;
}

function plainConvEntry(entry: LayerEntry): LayerEntry {
  const c = entry.config;
  const base: Record<string, unknown> = { ...sharedConvConfig(c), dataFormat: 'channelsLast' };
  if (c.depthwise) return { ...entry, className: 'DepthwiseConv2D', config: { ...base, depthMultiplier: c.depthMultiplier } };
  return { ...entry, className: 'Conv2D', config: { ...base, filters: c.filters } };
}

const FOLDABLE_CONVS = new Set(['Conv2D', 'DepthwiseConv2D']);

/** References to a layer name anywhere in a container (inbound nodes and outputs). */
function countUses(container: ContainerConfig, name: string): number {
  let n = 0;
  for (const e of container.layers) for (const node of e.inboundNodes ?? []) for (const ref of node) if (ref[0] === name) n++;
  for (const ref of container.outputLayers ?? []) if (ref[0] === name) n++;
  return n;
}

function renameRefs(refs: NodeRef[] | undefined, from: string, to: string): void {
  for (const ref of refs ?? []) if (ref[0] === from) ref[0] = to;
}

/**
 * Removes foldable BatchNormalization entries from one container config; returns the pairs
 * (conv name -> BN name) that were folded.
 */
function foldInContainer(container: ContainerConfig): Map<string, string> {
  const folded = new Map<string, string>();
  const isSequential = container.inputLayers === undefined;
  const byName = new Map(container.layers.map((e) => [entryName(e), e]));
  const keep: LayerEntry[] = [];
  for (let i = 0; i < container.layers.length; i++) {
    const bn = container.layers[i];
    const producer = isSequential ? keep[keep.length - 1] : singleProducer(bn, byName);
    const foldable =
      bn.className === 'BatchNormalization' &&
      producer !== undefined &&
      FOLDABLE_CONVS.has(producer.className) &&
      (producer.config.activation ?? 'linear') === 'linear' &&
      [-1, 3, undefined].includes(bn.config.axis as number | undefined) &&
      !folded.has(entryName(producer)) &&
      (isSequential || countUses(container, entryName(producer)) === 1);
    if (!foldable) {
      keep.push(bn);
      continue;
    }
    const convName = entryName(producer);
    const bnName = entryName(bn);
    producer.config.useBias = true;
    if (bn.config.batchInputShape !== undefined && producer.config.batchInputShape === undefined) producer.config.batchInputShape = bn.config.batchInputShape;
    folded.set(convName, bnName);
    if (!isSequential) {
      for (const e of container.layers) for (const node of e.inboundNodes ?? []) renameRefs(node, bnName, convName);
      renameRefs(container.outputLayers, bnName, convName);
    }
  }
  container.layers = keep;
  return folded;
}

function singleProducer(entry: LayerEntry, byName: Map<string, LayerEntry>): LayerEntry | undefined {
  const nodes = entry.inboundNodes ?? [];
  if (nodes.length !== 1 || nodes[0].length !== 1) return undefined;
  const [name, nodeIndex, tensorIndex] = nodes[0][0];
  if (nodeIndex !== 0 || tensorIndex !== 0) return undefined;
  return byName.get(name);
}

/** Kernel and bias of a conv with an inference-mode BatchNormalization folded in. */
function foldBatchNormWeights(kernel: tf.Tensor4D, bias: tf.Tensor1D | undefined, bn: tf.layers.Layer, depthwise: boolean): [tf.Tensor4D, tf.Tensor1D] {
  return tf.tidy(() => {
    const cfg = bn.getConfig();
    const weights = bn.getWeights();
    let k = 0;
    const gamma = cfg.scale === false ? null : weights[k++];
    const beta = cfg.center === false ? null : weights[k++];
    const mean = weights[k++];
    const variance = weights[k++];
    const eps = (cfg.epsilon as number | undefined) ?? 1e-3;
    let scale = tf.rsqrt(tf.add(variance, eps));
    if (gamma) scale = tf.mul(scale, gamma);
    const [kh, kw, a, b] = kernel.shape;
    // The BN channel is the conv's output channel: the last kernel dim, or (channel, multiplier) for depthwise.
    const scaledKernel = tf.mul(kernel, tf.reshape(scale, [1, 1, depthwise ? a : 1, b])) as tf.Tensor4D;
    const b0 = bias ?? tf.zeros([scale.size]);
    let newBias = tf.mul(tf.sub(b0, mean), scale);
    if (beta) newBias = tf.add(newBias, beta);
    return [tf.reshape(scaledKernel, [kh, kw, a, b]) as tf.Tensor4D, newBias as tf.Tensor1D];
  });
}

/**
 * Returns the plain (deployable) form of a model: RefConv2D layers become Conv2D /
 * DepthwiseConv2D with their refocused kernels; all other weights are copied. With
 * `foldBatchNorm`, BN layers that directly follow a conv are folded into it. The input model is
 * not modified.
 */
export function fuse(model: tf.LayersModel, options: FuseOptions = {}): tf.LayersModel {
  const oldLayers = leafLayers(model);
  const { className, config } = modelConfig(model);
  rewriteEntries(config, (entry) => (entry.className === RefConv2D.className ? plainConvEntry(entry) : undefined));

  // conv path -> BN path, for weight folding below.
  const folds = new Map<string, string>();
  if (options.foldBatchNorm) {
    forEachContainer(config, (container, prefix) => {
      for (const [conv, bn] of foldInContainer(container)) folds.set([...prefix, conv].join('/'), [...prefix, bn].join('/'));
    });
  }

  const out = buildModel(className, config);
  try {
    for (const [path, layer] of leafLayers(out)) {
      const old = oldLayers.get(path);
      if (!old) throw new Error(`fuse: internal error, layer '${path}' has no source layer`);
      let kernel: tf.Tensor4D;
      let bias: tf.Tensor1D | undefined;
      if (old instanceof RefConv2D) {
        kernel = old.refocusedKernel();
        bias = old.getBias() ?? undefined;
      } else if (folds.has(path)) {
        kernel = old.getWeights()[0] as tf.Tensor4D;
        bias = old.getWeights()[1] as tf.Tensor1D | undefined;
      } else {
        layer.setWeights(old.getWeights());
        continue;
      }
      const bnPath = folds.get(path);
      if (bnPath) {
        const bn = oldLayers.get(bnPath) as tf.layers.Layer;
        const [k, b] = foldBatchNormWeights(kernel, bias, bn, layer.getClassName() === 'DepthwiseConv2D');
        layer.setWeights([k, b]);
        k.dispose();
        b.dispose();
      } else {
        layer.setWeights(bias ? [kernel, bias] : [kernel]);
      }
      if (old instanceof RefConv2D) kernel.dispose();
    }
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
