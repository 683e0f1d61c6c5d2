/**
 * The conv + bias + activation fusion pass of compileForInference on hand-made node lists: which
 * chains become one `_FusedConv2D` / `_FusedDepthwiseConv2dNative`, and which must not (an
 * intermediate with another consumer).
 */
import { describe, expect, it } from 'vitest';
import { fuseConvBiasActivation, type NodeSpec } from '../src/graph/graph-def.js';

const node = (name: string, op: string, inputs: string[] = []): NodeSpec => ({ name, op, inputs, attrs: op.includes('Conv') ? { strides: { ints: [1, 1, 1, 1] } } : {} });

const scalar = (name: string, v: number): NodeSpec => ({ name, op: 'Const', inputs: [], attrs: { value: { tensor: { dtype: 1, shape: [], values: Float32Array.of(v) } } } });

function chain(conv: string, tail: NodeSpec[]): NodeSpec[] {
  return [node('x', 'Placeholder'), node('w', 'Const'), node('b', 'Const'), node('conv', conv, ['x', 'w']), node('bias', 'BiasAdd', ['conv', 'b']), ...tail];
}

describe('fuseConvBiasActivation', () => {
  it('Conv2D + BiasAdd + Relu6 -> one _FusedConv2D named as the activation, conv attrs kept', () => {
    const out = fuseConvBiasActivation(chain('Conv2D', [node('act', 'Relu6', ['bias']), node('next', 'Identity', ['act'])]));
    expect(out.map((n) => n.name)).toEqual(['x', 'w', 'b', 'act', 'next']);
    const f = out.find((n) => n.name === 'act')!;
    expect(f).toMatchObject({ op: '_FusedConv2D', inputs: ['x', 'w', 'b'] });
    expect(f.attrs).toMatchObject({ fused_ops: { strs: ['BiasAdd', 'Relu6'] }, num_args: { i: 1 }, strides: { ints: [1, 1, 1, 1] } });
  });

  it('hard swish written as (1/6 * x) * relu6(3 + x) after a depthwise conv', () => {
    const hardSwish = (three: number, sixth: number) => chain('DepthwiseConv2dNative', [
      scalar('three', three), scalar('sixth', sixth),
      node('add3', 'AddV2', ['three', 'bias']), node('relu6', 'Relu6', ['add3']),
      node('mul_sixth', 'Mul', ['sixth', 'bias']), node('hs', 'Mul', ['mul_sixth', 'relu6']),
    ]);
    const nodes = hardSwish(3, 1 / 6);
    const all = fuseConvBiasActivation(nodes, 'all');
    const f = all.find((n) => n.name === 'hs')!;
    expect(f).toMatchObject({ op: '_FusedDepthwiseConv2dNative', inputs: ['x', 'w', 'b'], attrs: { fused_ops: { strs: ['BiasAdd', '_FusedHardSwish'] } } });
    expect(all.map((n) => n.name)).not.toContain('add3');
    // conv-relu: depthwise convs and hard swish stay as they are
    expect(fuseConvBiasActivation(nodes, 'conv-relu')).toEqual(nodes);
    // the same shape with other constants is not a hard swish: only the conv + bias are fused
    const other = fuseConvBiasActivation(hardSwish(2, 1 / 6), 'all');
    expect(other.find((n) => n.name === 'bias')).toMatchObject({ op: '_FusedDepthwiseConv2dNative', attrs: { fused_ops: { strs: ['BiasAdd'] } } });
    expect(other.find((n) => n.name === 'hs')!.op).toBe('Mul');
  });

  it('bias only where the activation is not fusable; nothing where an intermediate has another consumer', () => {
    const sig = chain('Conv2D', [node('act', 'Sigmoid', ['bias'])]);
    expect(fuseConvBiasActivation(sig).find((n) => n.name === 'bias')).toMatchObject({ op: '_FusedConv2D', attrs: { fused_ops: { strs: ['BiasAdd'] } } });
    const shared = chain('Conv2D', [node('act', 'Relu', ['bias']), node('skip', 'AddV2', ['conv', 'act'])]);
    expect(fuseConvBiasActivation(shared)).toEqual(shared);
    const twice = chain('Conv2D', [node('act', 'Relu', ['bias']), node('other', 'Identity', ['bias'])]);
    expect(fuseConvBiasActivation(twice).find((n) => n.name === 'bias')).toMatchObject({ op: '_FusedConv2D', attrs: { fused_ops: { strs: ['BiasAdd'] } } });
    expect(fuseConvBiasActivation(twice, 'none')).toEqual(twice);
  });
});
