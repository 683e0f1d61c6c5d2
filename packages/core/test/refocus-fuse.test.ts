import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countFlops, countParams, fuse, RefConv2D, refocus, refConvLayers } from '../src/index.js';
import { maxRelErr, randomArray } from './naive.js';

/** A small residual network with a nested model, padding, BN, depthwise and 1x1 convs. */
function residualNet(seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3], name: 'image' });
  let x = tf.layers.zeroPadding2d({ padding: 1, name: 'stem_pad' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false, name: 'stem_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'stem_bn', epsilon: 1e-5 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'stem_relu' }).apply(x) as tf.SymbolicTensor;
  const block = tf.sequential({
    name: 'block',
    layers: [
      tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, inputShape: [6, 6, 8], name: 'dw' }),
      tf.layers.batchNormalization({ name: 'dw_bn' }),
      tf.layers.conv2d({ filters: 8, kernelSize: 1, name: 'pw' }),
    ],
  });
  const y = block.apply(x) as tf.SymbolicTensor;
  x = tf.layers.add({ name: 'residual' }).apply([x, y]) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 6, kernelSize: 5, padding: 'same', activation: 'relu', name: 'head_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, name: 'fc' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'resnet_tiny' });
  // Non-trivial weights everywhere, including BN statistics.
  let s = seed * 100;
  model.setWeights(model.getWeights().map((w) => {
    const r = randomArray(w.size, ++s);
    const isVar = w.shape.length === 1 && model.weights.find((v) => v.shape.length === 1);
    void isVar;
    return tf.tensor(r.map((v) => v * 0.5), w.shape);
  }));
  for (const name of ['stem_bn']) {
    const bn = model.getLayer(name);
    const [g, b, m] = bn.getWeights();
    bn.setWeights([g, b, m, tf.tensor(randomArray(8, 77).map((v) => 1.2 + v))]);
  }
  const dwBn = block.getLayer('dw_bn');
  const [g, b, m] = dwBn.getWeights();
  dwBn.setWeights([g, b, m, tf.tensor(randomArray(8, 78).map((v) => 1.1 + v))]);
  return model;
}

const input = () => tf.tensor4d(randomArray(2 * 12 * 12 * 3, 5), [2, 12, 12, 3]);

describe('refocus', () => {
  it("with 'zero' init reproduces the pretrained model's outputs exactly", () => {
    const base = residualNet();
    const ref = refocus(base, { init: 'zero' });
    const a = (base.predict(input()) as tf.Tensor).dataSync();
    const b = (ref.predict(input()) as tf.Tensor).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('replaces exactly the convs with kernel >= map_k, keeps names, freezes only the bases', () => {
    const base = residualNet();
    const ref = refocus(base, { seed: 3 });
    const refNames = refConvLayers(ref).map((l) => l.name).sort();
    expect(refNames).toEqual(['dw', 'head_conv', 'stem_conv']);
    expect((ref.getLayer('block') as tf.LayersModel).getLayer('pw').getClassName()).toBe('Conv2D');
    const trainable = ref.trainableWeights.map((w) => w.originalName);
    expect(trainable.filter((n) => n.endsWith('/basis'))).toEqual([]);
    expect(trainable.filter((n) => n.endsWith('/transform')).length).toBe(3);
    expect(trainable).toContain('stem_bn/gamma');
    // The default (Kaiming-uniform) init moves the model away from the pretrained one.
    const a = (base.predict(input()) as tf.Tensor).dataSync();
    const b = (ref.predict(input()) as tf.Tensor).dataSync();
    expect(maxRelErr(b, a)).toBeGreaterThan(1e-3);
    // The pretrained kernel is the basis.
    const basis = (ref.getLayer('stem_conv') as RefConv2D).getBasis().dataSync();
    expect(Array.from(basis)).toEqual(Array.from(base.getLayer('stem_conv').getWeights()[0].dataSync()));
  });

  it("'transform-only' leaves only the transforms trainable", () => {
    const ref = refocus(residualNet(), { frozen: 'transform-only' });
    const names = ref.trainableWeights.map((w) => w.originalName).sort();
    expect(names).toEqual(['dw/transform', 'head_conv/transform', 'stem_conv/transform']);
  });

  it('trains the transform and never the basis', () => {
    const ref = refocus(residualNet(), { seed: 1 });
    const layer = ref.getLayer('stem_conv') as RefConv2D;
    const basis0 = layer.getBasis().dataSync().slice();
    const transform0 = layer.getTransform().dataSync().slice();
    const opt = tf.train.sgd(0.1);
    opt.minimize(() => tf.mean(tf.square(ref.apply(input(), { training: true }) as tf.Tensor)) as tf.Scalar);
    const basis1 = layer.getBasis().dataSync();
    const transform1 = layer.getTransform().dataSync();
    expect(Array.from(basis1)).toEqual(Array.from(basis0));
    expect(maxRelErr(transform1, transform0)).toBeGreaterThan(1e-6);
  });

  it('options: map_k 1 refocuses 1x1 convs too; a name list selects layers', () => {
    expect(refConvLayers(refocus(residualNet(), { mapK: 1 })).length).toBe(4);
    const sel = refocus(residualNet(), { select: ['head_conv', 'block/dw'] });
    expect(refConvLayers(sel).map((l) => l.name).sort()).toEqual(['dw', 'head_conv']);
  });

  it('gives clear errors naming the layer and the problem', () => {
    const base = residualNet();
    expect(() => refocus(base, { select: ['fc'] })).toThrow(/layer 'fc' is a Dense; only Conv2D and DepthwiseConv2D/);
    expect(() => refocus(base, { select: ['block/pw'] })).toThrow(/layer 'block\/pw'.*map_k \(3\) is larger than the kernel \(1x1\)/);
    expect(() => refocus(base, { select: ['nope'] })).toThrow(/no layer named 'nope'/);
    expect(() => refocus(base, { mapK: 2 })).toThrow(/map_k must be a positive odd integer/);
    expect(() => refocus(base, { grouping: 'rows' as never })).toThrow(/unknown grouping 'rows'/);
    const even = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 4, name: 'even_conv' })] });
    expect(() => refocus(even)).toThrow(/layer 'even_conv'.*odd kernel size, got 4x4/);
    expect(() => new RefConv2D({ kernelSize: 3, filters: 2, mapK: 5, name: 'tiny' })).toThrow(/'tiny'.*map_k \(5\) is larger than the kernel \(3x3\)/);
  });
});

describe('fuse', () => {
  it('gives a plain model with the RefConv outputs, the original params and FLOPs', () => {
    const base = residualNet();
    const ref = refocus(base, { seed: 9 });
    const fused = fuse(ref);
    expect(refConvLayers(fused)).toEqual([]);
    expect(fused.getLayer('stem_conv').getClassName()).toBe('Conv2D');
    expect((fused.getLayer('block') as tf.LayersModel).getLayer('dw').getClassName()).toBe('DepthwiseConv2D');
    const a = (ref.predict(input()) as tf.Tensor).dataSync();
    const b = (fused.predict(input()) as tf.Tensor).dataSync();
    expect(maxRelErr(b, a)).toBeLessThan(1e-5);
    expect(countParams(fused)).toBe(countParams(base));
    expect(countParams(fused, { includeBuffers: true })).toBe(countParams(base, { includeBuffers: true }));
    expect(countFlops(fused)).toBe(countFlops(base));
    expect(JSON.stringify(fused.toJSON(null, false))).not.toContain('RefConv2D');
  });

  it('folds BatchNorm into the preceding conv, exactly in inference mode', () => {
    const ref = refocus(residualNet(), { seed: 4 });
    const folded = fuse(ref, { foldBatchNorm: true });
    const names = folded.layers.map((l) => l.name);
    expect(names).not.toContain('stem_bn');
    expect((folded.getLayer('block') as tf.LayersModel).layers.map((l) => l.name)).toEqual(['dw', 'pw']);
    const a = (ref.predict(input()) as tf.Tensor).dataSync();
    const b = (folded.predict(input()) as tf.Tensor).dataSync();
    expect(maxRelErr(b, a)).toBeLessThan(1e-5);
  });

  it('works on Sequential models', () => {
    const seq = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [10, 10, 2], filters: 4, kernelSize: 3, useBias: false, name: 'c1' }),
        tf.layers.batchNormalization({ name: 'bn1' }),
        tf.layers.depthwiseConv2d({ kernelSize: 5, depthMultiplier: 2, padding: 'same', name: 'dw2' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3 }),
      ],
    });
    seq.setWeights(seq.getWeights().map((w, i) => tf.tensor(randomArray(w.size, i + 1).map((v) => (w.shape.length === 1 ? 1 + 0.5 * v : v)), w.shape)));
    const ref = refocus(seq, { seed: 2, mapK: 3 });
    expect(refConvLayers(ref).length).toBe(2);
    const x = tf.tensor4d(randomArray(10 * 10 * 2, 3), [1, 10, 10, 2]);
    const y = (ref.predict(x) as tf.Tensor).dataSync();
    for (const fused of [fuse(ref), fuse(ref, { foldBatchNorm: true })]) {
      expect(maxRelErr((fused.predict(x) as tf.Tensor).dataSync(), y)).toBeLessThan(1e-5);
    }
    expect(fuse(ref, { foldBatchNorm: true }).layers.length).toBe(4);
    expect(countParams(fuse(ref))).toBe(countParams(seq));
  });
});

describe('serialization', () => {
  async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    return tf.loadLayersModel(tf.io.fromMemory(saved as tf.io.ModelArtifacts));
  }

  it('a RefConv model saves and loads in the tfjs format with the same outputs and frozen bases', async () => {
    const ref = refocus(residualNet(), { seed: 5, grouping: 'per-kernel', mapK: 3 });
    const loaded = await roundTrip(ref);
    expect(refConvLayers(loaded).length).toBe(3);
    expect(maxRelErr((loaded.predict(input()) as tf.Tensor).dataSync(), (ref.predict(input()) as tf.Tensor).dataSync())).toBe(0);
    expect(loaded.trainableWeights.some((w) => w.originalName.endsWith('/basis'))).toBe(false);
    const layer = loaded.getLayer('stem_conv') as RefConv2D;
    expect([layer.mapK, layer.grouping, layer.transformInit]).toEqual([3, 'per-kernel', 'default']);
  });

  it('a fused model round-trips as plain layers', async () => {
    const fused = fuse(refocus(residualNet(), { seed: 6 }), { foldBatchNorm: true });
    const loaded = await roundTrip(fused);
    expect(maxRelErr((loaded.predict(input()) as tf.Tensor).dataSync(), (fused.predict(input()) as tf.Tensor).dataSync())).toBe(0);
  });

  it('does not leak tensors when predicting repeatedly', () => {
    const ref = refocus(residualNet(), { seed: 7 });
    const x = input();
    tf.tidy(() => ref.predict(x));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) tf.dispose(ref.predict(x));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('countFlops', () => {
  /** Stand-in for a space-to-batch layer (as @refconv/backbones uses for dilated convs). */
  class SpaceToBatch extends tf.layers.Layer {
    static className = 'SpaceToBatch';
    readonly block = 2;
    override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape {
      const [b, h, w, c] = s as tf.Shape;
      return [b, (h as number) / 2, (w as number) / 2, c];
    }
    override call(x: tf.Tensor | tf.Tensor[]): tf.Tensor {
      return tf.spaceToBatchND(x as tf.Tensor, [2, 2], [[0, 0], [0, 0]]);
    }
  }

  it('counts conv and dense MACs by hand, including convs on space-to-batch sub-images', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const s2b = new SpaceToBatch({}).apply(a) as tf.SymbolicTensor;
    const b = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(s2b) as tf.SymbolicTensor;
    const f = tf.layers.dense({ units: 5 }).apply(tf.layers.flatten().apply(b) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: f });
    // conv 8*8*(3*3*3*4) + depthwise on 4 sub-images of 4x4: 4*(4*4*(3*3*4)) + dense 64*5
    expect(countFlops(model)).toBe(64 * 108 + 4 * 16 * 36 + 64 * 5);
  });
});

describe('countFlops with shared layers', () => {
  it('counts each call of a layer applied at several sizes, and only calls inside the model', () => {
    const head = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'shared_head' });
    const a = tf.input({ shape: [8, 8, 4] });
    const b = tf.input({ shape: [4, 4, 4] });
    const model = tf.model({ inputs: [a, b], outputs: [head.apply(a) as tf.SymbolicTensor, head.apply(b) as tf.SymbolicTensor] });
    expect(countFlops(model)).toBe((64 + 16) * 3 * 3 * 4 * 2);
    // Another model built on the same layer object adds calls to it; the first model's count is unchanged.
    const c = tf.input({ shape: [2, 2, 4] });
    tf.model({ inputs: c, outputs: head.apply(c) as tf.SymbolicTensor });
    expect(countFlops(model)).toBe((64 + 16) * 3 * 3 * 4 * 2);
  });
});
