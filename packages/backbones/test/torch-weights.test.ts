/**
 * Layout conversions and error handling of loadTorchWeights / exportTorchWeights, checked
 * element by element against the PyTorch layouts written out as index formulas, and the
 * official RefConv refocusing formula evaluated with explicit loops.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeSafetensors, RefConv2D, readSafetensors, type SafeTensorInput } from '@refconv/core';
import { createModel, exportTorchWeights, loadTorchWeights, modelInfo, torchStateDictShapes } from '../src/index.js';
import { FIXTURES, loadCases, relativeError, yieldToEventLoop } from './helpers.js';

afterEach(yieldToEventLoop);

/** Deterministic, distinct values: element i of a tensor gets seed + i * 0.001 (sign alternating). */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (seed + i * 0.001));
}

function tensorInput(shape: number[], seed: number): SafeTensorInput {
  return { shape, data: values(shape.reduce((a, b) => a * b, 1), seed) };
}

/** in [5,5,2] -> dw (3x3, multiplier 2) -> pw (1x1, 3, bias) -> bn -> GAP -> fc (4). */
function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [5, 5, 2] });
  let x = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'pw', kernelSize: 1, filters: 3 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const y = tf.layers.dense({ name: 'fc', units: 4 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y });
}

function tinyStateDict(): Record<string, SafeTensorInput> {
  return {
    'dw.weight': tensorInput([4, 1, 3, 3], 1),
    'pw.weight': tensorInput([3, 4, 1, 1], 2),
    'pw.bias': tensorInput([3], 3),
    'bn.weight': tensorInput([3], 4),
    'bn.bias': tensorInput([3], 5),
    'bn.running_mean': tensorInput([3], 6),
    'bn.running_var': tensorInput([3], 7),
    'bn.num_batches_tracked': { shape: [], data: new BigInt64Array([5n]) },
    'fc.weight': tensorInput([4, 3], 8),
    'fc.bias': tensorInput([4], 9),
  };
}

function weightByName(model: tf.LayersModel, layer: string, suffix: string): Float32Array {
  const v = model.getLayer(layer).weights.find((w) => (w.originalName ?? w.name).endsWith(`/${suffix}`));
  if (!v) throw new Error(`no ${layer}/${suffix}`);
  return v.read().dataSync() as Float32Array;
}

describe('PyTorch layouts', () => {
  it('maps conv, depthwise (multiplier 2), BN and linear tensors element by element', () => {
    const sd = tinyStateDict();
    const model = tinyModel();
    loadTorchWeights(model, encodeSafetensors(sd));
    const t = (k: string) => sd[k]!.data as Float32Array;
    // depthwise: tf [ky, kx, c, j] (shape [3,3,2,2]) = torch [c*2 + j, 0, ky, kx]
    const dw = weightByName(model, 'dw', 'depthwise_kernel');
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) for (let c = 0; c < 2; c++) for (let j = 0; j < 2; j++) {
      expect(dw[((ky * 3 + kx) * 2 + c) * 2 + j]).toBe(t('dw.weight')[((c * 2 + j) * 3 + ky) * 3 + kx]);
    }
    // conv: tf [0, 0, i, o] ([1,1,4,3]) = torch [o, i, 0, 0]
    const pw = weightByName(model, 'pw', 'kernel');
    for (let i = 0; i < 4; i++) for (let o = 0; o < 3; o++) expect(pw[i * 3 + o]).toBe(t('pw.weight')[o * 4 + i]);
    // dense: tf [in, out] = torch [out, in]
    const fc = weightByName(model, 'fc', 'kernel');
    for (let i = 0; i < 3; i++) for (let o = 0; o < 4; o++) expect(fc[i * 4 + o]).toBe(t('fc.weight')[o * 3 + i]);
    expect(Array.from(weightByName(model, 'bn', 'gamma'))).toEqual(Array.from(t('bn.weight')));
    expect(Array.from(weightByName(model, 'bn', 'beta'))).toEqual(Array.from(t('bn.bias')));
    expect(Array.from(weightByName(model, 'bn', 'moving_mean'))).toEqual(Array.from(t('bn.running_mean')));
    expect(Array.from(weightByName(model, 'bn', 'moving_variance'))).toEqual(Array.from(t('bn.running_var')));
    expect(Array.from(weightByName(model, 'pw', 'bias'))).toEqual(Array.from(t('pw.bias')));
    model.dispose();
  });

  it('lists the state-dict keys and shapes a model expects', () => {
    const model = tinyModel();
    expect(torchStateDictShapes(model)).toEqual([
      { key: 'dw.weight', shape: [4, 1, 3, 3] },
      { key: 'pw.weight', shape: [3, 4, 1, 1] },
      { key: 'pw.bias', shape: [3] },
      { key: 'bn.weight', shape: [3] },
      { key: 'bn.bias', shape: [3] },
      { key: 'bn.running_mean', shape: [3] },
      { key: 'bn.running_var', shape: [3] },
      { key: 'fc.weight', shape: [4, 3] },
      { key: 'fc.bias', shape: [4] },
    ]);
    model.dispose();
  });

  it('strips a DataParallel "module." prefix', () => {
    const sd = Object.fromEntries(Object.entries(tinyStateDict()).map(([k, v]) => [`module.${k}`, v]));
    const model = tinyModel();
    expect(loadTorchWeights(model, encodeSafetensors(sd)).loaded.length).toBe(9);
    model.dispose();
  });
});

describe('loadTorchWeights errors', () => {
  it('lists missing, unexpected and wrongly shaped tensors together and changes nothing', () => {
    const sd = tinyStateDict();
    delete sd['pw.bias'];
    delete sd['bn.running_var'];
    sd['head.weight'] = tensorInput([2, 2], 1);
    sd['fc.weight'] = tensorInput([3, 4], 8); // transposed: wrong shape
    const model = tinyModel();
    const before = weightByName(model, 'dw', 'depthwise_kernel').slice();
    let message = '';
    try {
      loadTorchWeights(model, encodeSafetensors(sd));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/wrong shape or dtype \(1\):\s+fc\.weight: file \[3,4\] vs model \[4,3\]/);
    expect(message).toMatch(/missing from the file \(2\):\s+pw\.bias\s+bn\.running_var/);
    expect(message).toMatch(/not in the model \(1\):\s+head\.weight/);
    expect(Array.from(weightByName(model, 'dw', 'depthwise_kernel'))).toEqual(Array.from(before));
    model.dispose();
  });

  it('partial loads: strict false reports instead of throwing, skip leaves keys out, shapes still checked', () => {
    const sd = tinyStateDict();
    sd['fc.weight'] = tensorInput([7, 3], 8);
    sd['fc.bias'] = tensorInput([7], 9);
    delete sd['pw.bias'];
    const model = tinyModel();
    expect(() => loadTorchWeights(model, encodeSafetensors(sd), { strict: false })).toThrow(/wrong shape or dtype \(2\)/);
    const res = loadTorchWeights(model, encodeSafetensors(sd), { strict: false, skip: (k) => k.startsWith('fc.') });
    expect(res.missing).toEqual(['pw.bias']);
    expect(res.unexpected).toEqual([]);
    expect(res.skipped.sort()).toEqual(['fc.bias', 'fc.weight']);
    model.dispose();
  });

  it('rejects integer tensors where floats belong', () => {
    const sd = tinyStateDict();
    sd['pw.bias'] = { shape: [3], data: new Int32Array([1, 2, 3]) };
    const model = tinyModel();
    expect(() => loadTorchWeights(model, encodeSafetensors(sd))).toThrow(/pw\.bias: dtype I32, expected a floating-point tensor/);
    model.dispose();
  });

  it('names a convmap whose layer does not exist', () => {
    const sd = tinyStateDict();
    sd['nope.convmap.weight'] = tensorInput([4, 4, 3, 3], 1);
    const model = tinyModel();
    expect(() => loadTorchWeights(model, encodeSafetensors(sd))).toThrow(/nope\.convmap\.weight \(no Conv2D\/DepthwiseConv2D layer 'nope'/);
    model.dispose();
  });
});

/**
 * The official RepConv forward for one kernel, in PyTorch layout, with loops:
 * image[n] = weight viewed as [N, K, K] (n = o * I + i); out[n] = image[n] + sum over the group of n.
 */
function officialRefocus(weight: Float32Array, convmap: Float32Array, n: number, perGroup: number, k: number, mk: number): Float32Array {
  const out = Float32Array.from(weight);
  const r = (mk - 1) / 2;
  for (let c = 0; c < n; c++) {
    const g0 = Math.floor(c / perGroup) * perGroup;
    for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
      let s = 0;
      for (let m = 0; m < perGroup; m++) for (let dy = 0; dy < mk; dy++) for (let dx = 0; dx < mk; dx++) {
        const yy = y + dy - r;
        const xx = x + dx - r;
        if (yy < 0 || yy >= k || xx < 0 || xx >= k) continue;
        s += convmap[((c * perGroup + m) * mk + dy) * mk + dx]! * weight[((g0 + m) * k + yy) * k + xx]!;
      }
      out[(c * k + y) * k + x] += s;
    }
  }
  return out;
}

/** tfjs kernel [K,K,I,O] (or depthwise [K,K,C,1]) -> PyTorch [O, I, K, K] flat, with loops. */
function kernelToTorch(kernel: Float32Array, k: number, a: number, b: number, depthwise: boolean): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let i = 0; i < a; i++) for (let o = 0; o < b; o++) {
    const v = kernel[((y * k + x) * a + i) * b + o]!;
    if (depthwise) out[((i * b + o) * k + y) * k + x] = v; // [C*m, 1, K, K]
    else out[((o * a + i) * k + y) * k + x] = v;
  }
  return out;
}

describe('official RefConv transforms', () => {
  function refModel(): tf.LayersModel {
    const input = tf.input({ shape: [6, 6, 2] });
    const c = tf.layers.conv2d({ name: 'c', kernelSize: 5, filters: 3, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
    const d = tf.layers.depthwiseConv2d({ name: 'd', kernelSize: 3, padding: 'same', useBias: false }).apply(c) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: d });
  }

  function check(model: tf.LayersModel, layer: string, sd: Record<string, SafeTensorInput>, perGroup: number, k: number, a: number, b: number, depthwise: boolean): void {
    const l = model.getLayer(layer) as RefConv2D;
    expect(l).toBeInstanceOf(RefConv2D);
    const wt = l.refocusedKernel();
    const got = kernelToTorch(wt.dataSync() as Float32Array, k, a, b, depthwise);
    wt.dispose();
    const n = a * b;
    const want = officialRefocus(sd[`${layer}.weight`]!.data as Float32Array, sd[`${layer}.convmap.weight`]!.data as Float32Array, n, perGroup, k, 3);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  }

  it('per-kernel maps of a regular conv and the dense map of a depthwise conv (official grouping)', () => {
    const sd: Record<string, SafeTensorInput> = {
      'c.weight': tensorInput([3, 2, 5, 5], 0.1),
      'c.convmap.weight': tensorInput([6, 1, 3, 3], 0.2),
      'd.weight': tensorInput([3, 1, 3, 3], 0.3),
      'd.convmap.weight': tensorInput([3, 3, 3, 3], 0.05),
    };
    const plain = refModel();
    const res = loadTorchWeights(plain, encodeSafetensors(sd));
    expect(res.refocused).toBe(true);
    check(res.model, 'c', sd, 1, 5, 2, 3, false);
    check(res.model, 'd', sd, 3, 3, 3, 1, true);
    plain.dispose();
    res.model.dispose();
  });

  it("a dense ('full') map of a regular conv", () => {
    const sd: Record<string, SafeTensorInput> = {
      'c.weight': tensorInput([3, 2, 5, 5], 0.1),
      'c.convmap.weight': tensorInput([6, 6, 3, 3], 0.02),
      'd.weight': tensorInput([3, 1, 3, 3], 0.3),
    };
    const plain = refModel();
    const res = loadTorchWeights(plain, encodeSafetensors(sd));
    expect((res.model.getLayer('c') as RefConv2D).grouping).toBe('full');
    expect(res.model.getLayer('d')).not.toBeInstanceOf(RefConv2D);
    check(res.model, 'c', sd, 6, 5, 2, 3, false);
    plain.dispose();
    res.model.dispose();
  });
});

describe('fine-tuning on a new number of classes', () => {
  it('modelInfo(arch).classifier names the head to skip; loading and exporting leak no tensors', () => {
    const c = loadCases()['mobilenet_v3_large_w025']!;
    const { arch, ...opts } = c.options;
    const model = createModel(arch, { ...opts, numClasses: 3 });
    const head = modelInfo(arch).classifier;
    expect(head).toBe('classifier.3');
    const file = path.join(FIXTURES, c.weights);
    expect(() => loadTorchWeights(model, file)).toThrow(/classifier\.3\.weight: file \[10,\d+\] vs model \[3,\d+\]/);
    const before = tf.memory().numTensors;
    const res = loadTorchWeights(model, file, { skip: (k) => k.startsWith(`${head}.`) });
    expect(res.skipped.sort()).toEqual(['classifier.3.bias', 'classifier.3.weight']);
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bb-ft-')), 'w.safetensors');
    exportTorchWeights(model, out);
    expect(tf.memory().numTensors).toBe(before);
    expect(readSafetensors(out).get('classifier.3.weight')!.shape[0]).toBe(3);
    model.dispose();
  });
});

describe('adaptInputChannels (timm adapt_input_conv)', () => {
  const c = loadCases()['resnet18_w0125']!;
  const { arch, ...opts } = c.options;
  const file = path.join(FIXTURES, c.weights);

  it('1 channel: a gray image gives what the RGB model gives for the image replicated to RGB', () => {
    const rgb = createModel(arch, opts);
    loadTorchWeights(rgb, file);
    const gray = createModel(arch, { ...opts, inChannels: 1 });
    expect(() => loadTorchWeights(gray, file)).toThrow(/conv1\.weight: file \[8,3,7,7\] vs model \[8,1,7,7\]/);
    const res = loadTorchWeights(gray, file, { adaptInputChannels: true });
    expect(res.adapted).toEqual(['conv1.weight']);
    const g = tf.randomNormal([2, 65, 65, 1], 0, 1, 'float32', 4);
    const g3 = tf.tile(g, [1, 1, 1, 3]);
    const [a, b] = [gray.predict(g) as tf.Tensor, rgb.predict(g3) as tf.Tensor];
    expect(relativeError(a, b)).toBeLessThan(1e-5);
    tf.dispose([g, g3, a, b]);
    rgb.dispose();
    gray.dispose();
  });

  it('4 channels: filters repeated cyclically and scaled by 3/4', () => {
    const rgb = createModel(arch, opts);
    loadTorchWeights(rgb, file);
    const four = createModel(arch, { ...opts, inChannels: 4 });
    loadTorchWeights(four, file, { adaptInputChannels: true });
    const x = tf.randomNormal([1, 65, 65, 4], 0, 1, 'float32', 5);
    // W4[c] = 3/4 W[c mod 3]  =>  conv(x, W4) = conv(x3, W) with x3 = 3/4 [x0 + x3, x1, x2]
    const [x0, x1, x2, x3] = tf.split(x, 4, 3);
    const folded = tf.mul(tf.concat([tf.add(x0!, x3!), x1!, x2!], 3), 0.75);
    const [a, b] = [four.predict(x) as tf.Tensor, rgb.predict(folded) as tf.Tensor];
    expect(relativeError(a, b)).toBeLessThan(1e-5);
    tf.dispose([x, x0!, x1!, x2!, x3!, folded, a, b]);
    rgb.dispose();
    four.dispose();
  });
});

describe('exportTorchWeights', () => {
  const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bb-export-')), 'w.safetensors');
  const cases = loadCases();

  for (const name of ['mobilenet_v3_large_w025', 'refconv_mobilenet_v2_w025', 'refconv_resnet18_w0125', 'resnet50_w0125']) {
    it(`${name}: writes back exactly the PyTorch state dict it loaded`, () => {
      const c = cases[name]!;
      const { arch, ...opts } = c.options;
      const plain = createModel(arch, opts);
      const source = path.join(FIXTURES, c.weights);
      const { model } = loadTorchWeights(plain, source);
      const file = tmp();
      exportTorchWeights(model, file);
      const a = readSafetensors(source);
      const b = readSafetensors(file);
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [k, t] of a) {
        const u = b.get(k)!;
        expect(u.shape, k).toEqual(t.shape);
        if (k.endsWith('num_batches_tracked')) expect(u.dtype).toBe('I64');
        else expect(Array.from(u.data as Float32Array), k).toEqual(Array.from(t.data as Float32Array));
      }
      if (model !== plain) model.dispose();
      plain.dispose();
    });
  }
});
