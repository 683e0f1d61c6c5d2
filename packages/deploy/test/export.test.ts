import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createModel } from '@refconv/backbones';
import { fuse, refocus } from '@refconv/core';
import type { onnx as OnnxNs } from 'onnx-proto';
import { exportOnnx, onnx, readOnnxMetadata, UnsupportedLayerError, OPSET } from '../src/index.js';

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
    const y = tf.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(x) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: y });
    expect(() => exportOnnx(m)).toThrow("layer 'up' (UpSampling2D): no ONNX mapping");
  });
});
