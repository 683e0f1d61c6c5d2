/**
 * PyTorch state dicts (safetensors) <-> tfjs weights, by name.
 *
 * A layer named by its PyTorch module path `p` owns these state-dict keys:
 *   Conv2D              p.weight [O, I, K, K]   <-> kernel [K, K, I, O]
 *                       p.bias   [O]
 *   DepthwiseConv2D     p.weight [C*m, 1, K, K] <-> depthwise_kernel [K, K, C, m]
 *   BatchNormalization  p.weight, p.bias, p.running_mean, p.running_var (+ p.num_batches_tracked, ignored on import, 0 on export)
 *   Dense               p.weight [out, in]      <-> kernel [in, out]; p.bias
 *   RefConv2D           p.weight (the frozen basis, OIHW as above), p.convmap.weight (the transform), p.bias
 *
 * The official RefConv transform `convmap.weight` is [N, N/G, mapK, mapK] over kernel channels
 * n = o * (I/g) + i (PyTorch's OIHW flatten order); ours is [mapK, mapK, N, 1] (per-kernel) or
 * [mapK, mapK, N/G, N] over channels c = i * O + o (tfjs HWIO order) for regular convs and
 * c = ch * m + j for depthwise ones (the same order as PyTorch's there).
 */
import * as tf from '@tensorflow/tfjs';
import { RefConv2D, readSafetensors, refocus, writeSafetensors, type SafeTensor, type SafeTensorInput } from '@refconv/core';

/** How one PyTorch tensor maps onto one tfjs weight. */
interface TorchSlot {
  /** State-dict key. */
  key: string;
  layer: tf.layers.Layer;
  /** Index into `layer.weights`. */
  index: number;
  /** Expected PyTorch shape. */
  torchShape: number[];
  /** PyTorch layout -> tfjs layout. */
  toTf(t: tf.Tensor): tf.Tensor;
  /** tfjs layout -> PyTorch layout. */
  toTorch(t: tf.Tensor): tf.Tensor;
}

const identity = (t: tf.Tensor) => t.clone();

/** Every leaf layer (descending into nested models). */
function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  const walk = (m: tf.LayersModel) => {
    for (const l of m.layers) {
      if (l instanceof tf.LayersModel) walk(l);
      else out.push(l);
    }
  };
  walk(model);
  return out;
}

function weightSuffix(v: tf.LayerVariable): string {
  const name = v.originalName ?? v.name;
  return name.slice(name.lastIndexOf('/') + 1).replace(/_\d+$/, '');
}

/** OIHW <-> HWIO for regular conv kernels. */
const convSlot = (shape: number[]) => ({
  torchShape: [shape[3]!, shape[2]!, shape[0]!, shape[1]!],
  toTf: (t: tf.Tensor) => tf.transpose(t, [2, 3, 1, 0]),
  toTorch: (t: tf.Tensor) => tf.transpose(t, [3, 2, 0, 1]),
});

/** [C*m, 1, K, K] <-> [K, K, C, m] for depthwise kernels (PyTorch out channel c*m + j). */
const depthwiseSlot = (shape: number[]) => {
  const [k1, k2, c, m] = shape as [number, number, number, number];
  return {
    torchShape: [c * m, 1, k1, k2],
    toTf: (t: tf.Tensor) => tf.transpose(tf.reshape(t, [c, m, k1, k2]), [2, 3, 0, 1]),
    toTorch: (t: tf.Tensor) => tf.reshape(tf.transpose(t, [2, 3, 0, 1]), [c * m, 1, k1, k2]),
  };
};

/**
 * tfjs kernel channel c -> PyTorch kernel channel n for a RefConv basis image.
 * Regular conv [K, K, I, O]: c = i*O + o, n = o*I + i. Depthwise [K, K, C, m]: identical orders.
 */
function kernelChannelPermutation(basisShape: number[], depthwise: boolean): Int32Array {
  const [, , a, b] = basisShape as [number, number, number, number];
  const perm = new Int32Array(a * b);
  for (let i = 0; i < a; i++) for (let o = 0; o < b; o++) perm[i * b + o] = depthwise ? i * b + o : o * a + i;
  return perm;
}

function inversePermutation(p: Int32Array): Int32Array {
  const inv = new Int32Array(p.length);
  p.forEach((v, i) => (inv[v] = i));
  return inv;
}

/**
 * Transform layouts. tfjs [mk, mk, N/G, N] (per-kernel: [mk, mk, N, 1]) over channels c;
 * PyTorch [N, N/G, mk, mk] over channels n = perm[c].
 */
function transformSlot(layer: RefConv2D, basisShape: number[], tShape: number[]) {
  const [mk, mk2, tIn, tOut] = tShape as [number, number, number, number];
  const n = basisShape[2]! * basisShape[3]!;
  const perm = kernelChannelPermutation(basisShape, layer.depthwise);
  const inv = inversePermutation(perm);
  const perKernel = tOut === 1 && tIn === n;
  const dense = tOut === n && tIn === n;
  const isIdentity = perm.every((v, i) => v === i);
  if (!perKernel && !dense && !isIdentity) {
    throw new Error(`layer '${layer.name}': grouped transform [${tShape}] of a regular conv has no PyTorch equivalent here (only per-kernel or dense)`);
  }
  if (perKernel) {
    return {
      torchShape: [n, 1, mk, mk2],
      // tfjs channel c holds PyTorch channel perm[c].
      toTf: (t: tf.Tensor) => tf.transpose(tf.gather(t, perm, 0), [2, 3, 0, 1]),
      toTorch: (t: tf.Tensor) => tf.gather(tf.transpose(t, [2, 3, 0, 1]), inv, 0),
    };
  }
  // Dense or contiguous-group maps: tf[y, x, a, b] = torch[perm[b], perm[a], y, x] (groups only with the identity order).
  return {
    torchShape: [n, tIn, mk, mk2],
    toTf: (t: tf.Tensor) => {
      let w = tf.transpose(t, [2, 3, 1, 0]);
      if (!isIdentity) w = tf.gather(tf.gather(w, perm, 2), perm, 3);
      return w;
    },
    toTorch: (t: tf.Tensor) => {
      let w = t;
      if (!isIdentity) w = tf.gather(tf.gather(w, inv, 2), inv, 3);
      return tf.transpose(w, [3, 2, 0, 1]);
    },
  };
}

/** The PyTorch slots of one layer (empty for parameter-free layers). */
function slotsOf(layer: tf.layers.Layer): TorchSlot[] {
  const cls = layer.getClassName();
  const p = layer.name;
  const slots: TorchSlot[] = [];
  layer.weights.forEach((v, index) => {
    const shape = v.shape as number[];
    const suffix = weightSuffix(v);
    const base = { layer, index };
    const plain = (key: string) => slots.push({ ...base, key, torchShape: [...shape], toTf: identity, toTorch: identity });
    if (cls === 'Conv2D') {
      if (suffix === 'kernel') slots.push({ ...base, key: `${p}.weight`, ...convSlot(shape) });
      else if (suffix === 'bias') plain(`${p}.bias`);
      else throw new Error(`layer '${p}' (Conv2D): unexpected weight '${suffix}'`);
    } else if (cls === 'DepthwiseConv2D') {
      if (suffix === 'depthwise_kernel') slots.push({ ...base, key: `${p}.weight`, ...depthwiseSlot(shape) });
      else if (suffix === 'bias') plain(`${p}.bias`);
      else throw new Error(`layer '${p}' (DepthwiseConv2D): unexpected weight '${suffix}'`);
    } else if (cls === 'BatchNormalization') {
      const map: Record<string, string> = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };
      if (!map[suffix]) throw new Error(`layer '${p}' (BatchNormalization): unexpected weight '${suffix}'`);
      plain(`${p}.${map[suffix]}`);
    } else if (cls === 'Dense') {
      if (suffix === 'kernel') {
        slots.push({ ...base, key: `${p}.weight`, torchShape: [shape[1]!, shape[0]!], toTf: (t) => tf.transpose(t), toTorch: (t) => tf.transpose(t) });
      } else if (suffix === 'bias') plain(`${p}.bias`);
      else throw new Error(`layer '${p}' (Dense): unexpected weight '${suffix}'`);
    } else if (layer instanceof RefConv2D) {
      // layer.weights lists trainable weights first, so find the basis by name, not position.
      const basisVar = layer.weights.find((w) => weightSuffix(w) === 'basis');
      if (!basisVar) throw new Error(`layer '${p}' (RefConv2D): no basis weight`);
      const basisShape = basisVar.shape as number[];
      if (suffix === 'basis') slots.push({ ...base, key: `${p}.weight`, ...(layer.depthwise ? depthwiseSlot(shape) : convSlot(shape)) });
      else if (suffix === 'transform') slots.push({ ...base, key: `${p}.convmap.weight`, ...transformSlot(layer, basisShape, shape) });
      else if (suffix === 'bias') plain(`${p}.bias`);
      else throw new Error(`layer '${p}' (RefConv2D): unexpected weight '${suffix}'`);
    } else {
      throw new Error(`layer '${p}': ${cls} holds weights but has no PyTorch mapping`);
    }
  });
  return slots;
}

/** All PyTorch slots of a model, by state-dict key (throws on duplicate keys). */
export function torchSlots(model: tf.LayersModel): Map<string, TorchSlot> {
  const out = new Map<string, TorchSlot>();
  for (const layer of leafLayers(model)) {
    for (const s of slotsOf(layer)) {
      if (out.has(s.key)) throw new Error(`model '${model.name}': two weights map to the PyTorch key '${s.key}'`);
      out.set(s.key, s);
    }
  }
  return out;
}

/** The PyTorch state-dict keys (with shapes) a model reads and writes, in layer order. */
export function torchStateDictShapes(model: tf.LayersModel): Array<{ key: string; shape: number[] }> {
  return [...torchSlots(model).values()].map((s) => ({ key: s.key, shape: s.torchShape }));
}

/** Options of {@link loadTorchWeights}. */
export interface LoadTorchWeightsOptions {
  /**
   * Require every model weight to be in the file and every file tensor to be used (as PyTorch's
   * `load_state_dict(strict=True)`). Shape mismatches are errors either way. Default true.
   */
  strict?: boolean;
  /** PyTorch keys to leave out on both sides, e.g. `(k) => k.startsWith('fc.')` for a new head. */
  skip?: (key: string) => boolean;
  /** Options passed to `refocus` when the file is an official RefConv checkpoint and the model is plain. */
  refocus?: { frozen?: 'official' | 'transform-only' };
  /**
   * Adapt the stem conv of a checkpoint to a model with a different number of input channels, as
   * timm's `adapt_input_conv`: 1 channel sums the RGB filters (a gray image then gives what the
   * RGB model gives for that image replicated to 3 channels); other counts repeat the filters
   * cyclically and scale them by 3 / channels. Only the conv that reads the model input is adapted.
   */
  adaptInputChannels?: boolean;
}

/** Layers fed directly by the model input (through parameter-free padding only). */
function inputConvNames(model: tf.LayersModel): Set<string> {
  const names = new Set<string>();
  const inputs = new Set(model.inputLayers.map((l) => l.name));
  for (const layer of leafLayers(model)) {
    let src = layer.inboundNodes[0]?.inboundLayers[0];
    while (src && src.getClassName() === 'ZeroPadding2D') src = src.inboundNodes[0]?.inboundLayers[0];
    if (src && inputs.has(src.name) && layer.weights.length > 0) names.add(layer.name);
  }
  return names;
}

/**
 * timm-style input-channel adaptation of a PyTorch conv weight [O, I, K, K] (or a RefConv
 * basis) from I = `from` to `to` input channels.
 */
function adaptInputConv(data: Float32Array, shape: number[], to: number): { data: Float32Array; shape: number[] } {
  const [o, from, kh, kw] = shape as [number, number, number, number];
  const plane = kh * kw;
  const out = new Float32Array(o * to * plane);
  for (let a = 0; a < o; a++) {
    for (let c = 0; c < to; c++) {
      for (let p = 0; p < plane; p++) {
        let v: number;
        if (to === 1) {
          v = 0;
          for (let i = 0; i < from; i++) v += data[(a * from + i) * plane + p]!;
        } else {
          v = (data[(a * from + (c % from)) * plane + p]! * from) / to;
        }
        out[(a * to + c) * plane + p] = v;
      }
    }
  }
  return { data: out, shape: [o, to, kh, kw] };
}

/** What {@link loadTorchWeights} did. */
export interface LoadTorchWeightsResult {
  /** The model holding the weights: the input model, or a refocused copy for a RefConv checkpoint. */
  model: tf.LayersModel;
  /** Keys loaded. */
  loaded: string[];
  /** Model keys not in the file (only when strict is false). */
  missing: string[];
  /** File keys the model has no place for (only when strict is false). */
  unexpected: string[];
  /** Keys left out by `skip`. */
  skipped: string[];
  /** Whether the model was refocused to take `convmap` transforms. */
  refocused: boolean;
  /** Keys whose input channels were adapted (`adaptInputChannels`). */
  adapted: string[];
}

const IGNORED = (k: string) => k.endsWith('.num_batches_tracked');

function stripDataParallel(tensors: Map<string, SafeTensor>): Map<string, SafeTensor> {
  const keys = [...tensors.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith('module.'))) return tensors;
  return new Map([...tensors].map(([k, v]) => [k.slice('module.'.length), v]));
}

/** Infers refocus options from the convmap tensors of an official RefConv checkpoint. */
function refocusPlan(model: tf.LayersModel, tensors: Map<string, SafeTensor>, where: string): { select: string[]; mapK: number; grouping: 'official' | 'per-kernel' | 'full' } {
  const layers = new Map(leafLayers(model).map((l) => [l.name, l]));
  const select: string[] = [];
  const mapKs = new Set<number>();
  const groupings = new Set<string>();
  const problems: string[] = [];
  for (const [key, t] of tensors) {
    if (!key.endsWith('.convmap.weight')) continue;
    const name = key.slice(0, -'.convmap.weight'.length);
    const layer = layers.get(name);
    if (!layer || !['Conv2D', 'DepthwiseConv2D'].includes(layer.getClassName())) {
      problems.push(`${key} (no Conv2D/DepthwiseConv2D layer '${name}' in the model)`);
      continue;
    }
    const [n, perGroup, mk] = t.shape as [number, number, number, number];
    const depthwise = layer.getClassName() === 'DepthwiseConv2D';
    const kernel = layer.weights[0]!.shape as number[];
    const expectedN = kernel[2]! * kernel[3]!;
    if (n !== expectedN) {
      problems.push(`${key} has ${n} kernel channels, layer '${name}' has ${expectedN}`);
      continue;
    }
    select.push(name);
    mapKs.add(mk);
    // official: per-kernel (N/G = 1) for regular convs, G = multiplier for depthwise convs.
    const officialPerGroup = depthwise ? n / kernel[3]! : 1;
    groupings.add(perGroup === officialPerGroup ? 'official' : perGroup === 1 ? 'per-kernel' : perGroup === n ? 'full' : `groups of ${perGroup}`);
  }
  if (problems.length) throw new Error(`${where}: RefConv transforms that do not fit the model:\n  ${problems.join('\n  ')}`);
  if (mapKs.size > 1) throw new Error(`${where}: convmap weights use several map sizes (${[...mapKs].join(', ')}); one refocus call supports one`);
  if (groupings.size > 1) throw new Error(`${where}: convmap weights mix groupings (${[...groupings].join(', ')})`);
  const grouping = [...groupings][0] as string;
  if (!['official', 'per-kernel', 'full'].includes(grouping)) throw new Error(`${where}: unsupported convmap grouping (${grouping})`);
  return { select, mapK: [...mapKs][0]!, grouping: grouping as 'official' | 'per-kernel' | 'full' };
}

/** How a file's tensors pair up with a model's slots. */
interface LoadPlan {
  assignments: Array<[TorchSlot, SafeTensor]>;
  skipped: string[];
  missing: string[];
  unexpected: string[];
  /** One line per tensor that cannot be assigned (wrong shape or dtype). */
  unusable: string[];
  adapted: string[];
}

/** Pairs file tensors with model slots (no tensor is created here). */
function planLoad(slots: Map<string, TorchSlot>, tensors: Map<string, SafeTensor>, skip: (k: string) => boolean, adaptable: Set<string>): LoadPlan {
  const plan: LoadPlan = { assignments: [], skipped: [], missing: [], unexpected: [], unusable: [], adapted: [] };
  for (const [key, slot] of slots) {
    if (skip(key)) { plan.skipped.push(key); continue; }
    let t = tensors.get(key);
    if (!t) { plan.missing.push(key); continue; }
    if (!(t.data instanceof Float32Array)) { plan.unusable.push(`${key}: dtype ${t.dtype}, expected a floating-point tensor`); continue; }
    if (adaptable.has(slot.layer.name) && key === `${slot.layer.name}.weight` && t.shape.length === 4 && slot.torchShape.length === 4 && t.shape[1] !== slot.torchShape[1]) {
      t = { dtype: t.dtype, ...adaptInputConv(t.data as Float32Array, t.shape, slot.torchShape[1]!) };
      plan.adapted.push(key);
    }
    if (t.shape.length !== slot.torchShape.length || t.shape.some((d, i) => d !== slot.torchShape[i])) {
      plan.unusable.push(`${key}: file [${t.shape}] vs model [${slot.torchShape}]`);
      continue;
    }
    plan.assignments.push([slot, t]);
  }
  for (const key of tensors.keys()) {
    if (slots.has(key) || IGNORED(key)) continue;
    if (skip(key)) plan.skipped.push(key);
    else plan.unexpected.push(key);
  }
  return plan;
}

/** The error lines for a plan: unusable tensors always, missing / unexpected ones when strict. */
function planErrors(plan: LoadPlan, strict: boolean): string[] {
  const section = (title: string, keys: string[]) => `${title} (${keys.length}):\n    ${keys.join('\n    ')}`;
  const errors: string[] = [];
  if (plan.unusable.length) errors.push(section('wrong shape or dtype', plan.unusable));
  if (strict && plan.missing.length) errors.push(section('missing from the file', plan.missing));
  if (strict && plan.unexpected.length) errors.push(section('not in the model', plan.unexpected));
  return errors;
}

/** Converts every tensor first and assigns after, so a failure leaves the model untouched. */
function assignWeights(assignments: Array<[TorchSlot, SafeTensor]>): void {
  const converted = assignments.map(([slot, t]) => ({
    slot,
    value: tf.tidy(() => slot.toTf(tf.tensor(t.data as Float32Array, t.shape, 'float32'))),
  }));
  const byLayer = new Map<tf.layers.Layer, tf.Tensor[]>();
  for (const { slot, value } of converted) {
    const current = byLayer.get(slot.layer) ?? slot.layer.getWeights();
    current[slot.index] = value;
    byLayer.set(slot.layer, current);
  }
  try {
    for (const [layer, values] of byLayer) layer.setWeights(values);
  } finally {
    for (const { value } of converted) value.dispose();
  }
}

/**
 * Loads a PyTorch state dict (safetensors, torchvision naming) into a model from `createModel`.
 *
 * Plain torchvision checkpoints load into the model as is. Official RefConv checkpoints
 * (`<name>.weight` = frozen basis, `<name>.convmap.weight` = transform) make this function
 * refocus the model first (map size and grouping read from the convmap shapes; the input model
 * is left untouched) and return the refocused copy. A `module.` prefix (DataParallel) is stripped.
 *
 * @param source path of a `.safetensors` file, or its bytes.
 * @throws listing every missing, unexpected and unusable (wrong shape / dtype) tensor in strict
 *   mode, every unusable one otherwise; nothing is assigned when it throws.
 */
export function loadTorchWeights(model: tf.LayersModel, source: string | Uint8Array, options: LoadTorchWeightsOptions = {}): LoadTorchWeightsResult {
  const where = `loadTorchWeights(${typeof source === 'string' ? source : '<buffer>'})`;
  const skip = options.skip ?? (() => false);
  const tensors = stripDataParallel(readSafetensors(source));

  const hasConvmap = [...tensors.keys()].some((k) => k.endsWith('.convmap.weight') && !skip(k));
  const refocused = hasConvmap && !leafLayers(model).some((l) => l instanceof RefConv2D);
  const target = refocused
    ? refocus(model, { ...refocusPlan(model, tensors, where), init: 'zero', frozen: options.refocus?.frozen })
    : model;
  try {
    const adaptable = options.adaptInputChannels ? inputConvNames(target) : new Set<string>();
    const plan = planLoad(torchSlots(target), tensors, skip, adaptable);
    const errors = planErrors(plan, options.strict ?? true);
    if (errors.length) {
      throw new Error(`${where} into model '${model.name}':\n  ${errors.join('\n  ')}\n  (use skip to leave keys out, strict: false for a partial load)`);
    }
    assignWeights(plan.assignments);
    const { skipped, missing, unexpected, adapted } = plan;
    return { model: target, loaded: plan.assignments.map(([slot]) => slot.key), missing, unexpected, skipped, refocused, adapted };
  } catch (e) {
    if (target !== model) target.dispose();
    throw e;
  }
}

/**
 * Writes a model's weights as a PyTorch state dict in safetensors format (torchvision naming;
 * RefConv layers as `<name>.weight` basis + `<name>.convmap.weight`, as the official code saves
 * them), loadable with `model.load_state_dict(safetensors.torch.load_file(path))`. Atomic write.
 */
export function exportTorchWeights(model: tf.LayersModel, file: string, metadata: Record<string, string> = {}): void {
  const out: Record<string, SafeTensorInput> = {};
  for (const [key, slot] of torchSlots(model)) {
    // Return the tensor from tidy, not its data: tidy walks a returned typed array element by
    // element looking for tensors (29 of 36 s for ResNet-18 when the data was returned).
    const t = tf.tidy(() => slot.toTorch(slot.layer.weights[slot.index]!.read()));
    try {
      // dataSync may return the backend's own buffer: copy it.
      out[key] = { shape: slot.torchShape, data: Float32Array.from(t.dataSync() as Float32Array) };
    } finally {
      t.dispose();
    }
    if (key.endsWith('.running_var')) {
      out[key.replace(/running_var$/, 'num_batches_tracked')] = { shape: [], data: new BigInt64Array([0n]) };
    }
  }
  writeSafetensors(file, out, { format: 'pt', ...metadata });
}
