import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel } from '@refconv/backbones';
import { fuse, refocus } from '@refconv/core';
import type { onnx as OnnxNs } from 'onnx-proto';
import { createSession, exportOnnx, onnx, readOnnxMetadata, runSession, UnsupportedLayerError, OPSET } from '../src/index.js';

/** A ValueInfo's dims: symbolic names or sizes. */
const dimsOf = (v: OnnxNs.IValueInfoProto): (string | number)[] => (v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimParam || Number(d.dimValue));

describe('exportOnnx', () => {
  it('writes opset 17, a symbolic batch, named input/output and the metadata', () => {
    const fused = fuse(createModel('cifar_resnet20', { inputSize: 32, numClasses: 3 }), { foldBatchNorm: true });
    const bytes = exportOnnx(fused, { metadata: { mean: [0.1, 0.2, 0.3], std: [1, 2, 3], classNames: ['a', 'b', 'c'], arch: 'cifar_resnet20' } });
    const m = onnx.ModelProto.decode(bytes);
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', OPSET]]);
    const inp = (m.graph as OnnxNs.GraphProto).input[0];
    expect(inp.name).toBe('input');
    expect(dimsOf(inp)).toEqual(['batch', 3, 32, 32]);
    expect((m.graph as OnnxNs.GraphProto).output.map((o) => o.name)).toEqual(['logits']);
    expect(dimsOf((m.graph as OnnxNs.GraphProto).output[0])).toEqual(['batch', 3]);
    const md = readOnnxMetadata(bytes);
    expect(md).toMatchObject({ layout: 'NCHW', mean: [0.1, 0.2, 0.3], std: [1, 2, 3], inputSize: [32, 32], classNames: ['a', 'b', 'c'], arch: 'cifar_resnet20' });
    // no BatchNormalization left after folding
    expect((m.graph as OnnxNs.GraphProto).node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
  });

  it('NHWC input layout: the input is [batch, H, W, C]', () => {
    const fused = fuse(createModel('cifar_resnet20', { inputSize: 32 }), { foldBatchNorm: true });
    const m = onnx.ModelProto.decode(exportOnnx(fused, { layout: 'NHWC' }));
    expect(dimsOf((m.graph as OnnxNs.GraphProto).input[0])).toEqual(['batch', 32, 32, 3]);
  });

  it('zero padding before a valid conv is folded into its pads; before a max-pool it stays a Pad', () => {
    const ops = (arch: string): string[] => {
      const m = onnx.ModelProto.decode(exportOnnx(fuse(createModel(arch, { inputSize: 64, width: 0.25 }), { foldBatchNorm: true })));
      return (m.graph as OnnxNs.GraphProto).node.map((n) => n.opType as string);
    };
    expect(ops('mobilenet_v2').filter((o) => o === 'Pad')).toEqual([]);
    const r18 = ops('resnet18');
    expect(r18.filter((o) => o === 'Pad')).toEqual(['Pad']); // the max-pool's
    expect(r18[r18.indexOf('Pad') + 1]).toBe('MaxPool');
  });

  it('an unfused RefConv layer is an error naming the layer', () => {
    const ref = refocus(createModel('cifar_resnet20', { inputSize: 32 }), { mapK: 3 });
    const refLayer = ref.layers.find((l) => l.getClassName() === 'RefConv2D')!;
    expect(() => exportOnnx(ref)).toThrow(UnsupportedLayerError);
    expect(() => exportOnnx(ref)).toThrow(new RegExp(`layer '${refLayer.name.replace(/\./g, '\\.')}' \\(RefConv2D\\).*fuse`));
  });

  it('a layer kind without mapping is an error naming it', () => {
    const x = tf.input({ shape: [8, 8, 2] });
    const y = tf.layers.cropping2D({ cropping: 1, name: 'crop' }).apply(x) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: y });
    expect(() => exportOnnx(m)).toThrow("layer 'crop' (Cropping2D): no ONNX mapping");
  });

  it('a nested model applied at another size than it was built for is an error naming it', () => {
    const inner = tf.input({ shape: [16, 16, 3] });
    const body = tf.model({ inputs: inner, outputs: tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same' }).apply(inner) as tf.SymbolicTensor, name: 'body' });
    const x = tf.input({ shape: [15, 15, 3] });
    const m = tf.model({ inputs: x, outputs: body.apply(x) as tf.SymbolicTensor });
    expect(() => exportOnnx(m)).toThrow(/layer 'body' \((Functional|Model|LayersModel)\): nested model built for input \[null, 16, 16, 3\] but applied to \[null, 15, 15, 3\]/);
  });

  it('UpSampling2D (nearest and bilinear, 2x3) equals tfjs in onnxruntime-node', async () => {
    const x = tf.input({ shape: [5, 4, 3] });
    const near = tf.layers.upSampling2d({ size: [2, 3], name: 'near' }).apply(x) as tf.SymbolicTensor;
    const bil = tf.layers.upSampling2d({ size: [2, 3], interpolation: 'bilinear', name: 'bil' }).apply(x) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: [near, bil] });
    const session = await createSession(exportOnnx(m, { layout: 'NHWC' }));
    const xs = tf.randomNormal([2, 5, 4, 3], 0, 1, 'float32', 4);
    const refs = (m.predict(xs) as tf.Tensor[]).map((t) => t.dataSync() as Float32Array);
    const out = await runSession(session, xs.dataSync() as Float32Array, [2, 5, 4, 3]);
    expect(Object.keys(out)).toEqual(['near', 'bil']);
    ['near', 'bil'].forEach((n, i) => {
      expect(out[n].dims).toEqual([2, 10, 12, 3]);
      let err = 0;
      out[n].data.forEach((v, j) => (err = Math.max(err, Math.abs(v - refs[i][j]))));
      expect(err, n).toBeLessThan(1e-5);
    });
    await session.release();
  });
});
