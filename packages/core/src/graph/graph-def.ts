/**
 * A TensorFlow GraphDef builder and SavedModel writer, on the protobuf classes that the native
 * tfjs-node package ships (`dist/proto/api_pb.js`, the same ones it reads SavedModels with), so
 * nothing here encodes protobuf by hand. Used by `compileForInference` (compile.ts) to hand a
 * whole network to TensorFlow's graph runtime, which fuses conv + bias + activation (Grappler's
 * remapper) and runs it without a JavaScript round trip per op.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** TensorFlow's `DataType` enum values used here. */
export const DT_FLOAT = 1;
export const DT_INT32 = 3;

/** One attribute value of a node (the subset of `AttrValue` the compiler emits). */
export type Attr =
  | { type: number }
  | { i: number }
  | { f: number }
  | { b: boolean }
  | { s: string }
  | { ints: number[] }
  | { strs: string[] }
  | { types: number[] }
  | { shape: (number | null)[] }
  | { tensor: ConstTensor };

/** A constant: float32 or int32 values with a shape. */
export interface ConstTensor {
  dtype: typeof DT_FLOAT | typeof DT_INT32;
  shape: number[];
  values: Float32Array | Int32Array;
}

/* The jspb message classes of api_pb.js, typed as far as this file uses them. */
interface Msg {
  serializeBinary(): Uint8Array;
  [setter: string]: unknown;
}
type MsgClass = new () => Msg;
interface ApiPb {
  GraphDef: MsgClass;
  NodeDef: MsgClass;
  AttrValue: MsgClass & { ListValue: MsgClass };
  Tensor: MsgClass;
  TensorShape: MsgClass & { Dim: MsgClass };
  VersionDef: MsgClass;
  SavedModel: MsgClass;
  MetaGraphDef: MsgClass & { MetaInfoDef: MsgClass };
  SignatureDef: MsgClass;
  TensorInfo: MsgClass;
}

let apiPb: ApiPb | undefined;

/** The protobuf classes of the native package in use (`@tensorflow/tfjs-node[-gpu]`). */
function pb(nativePackage: string): ApiPb {
  apiPb ??= require(`${nativePackage}/dist/proto/api_pb.js`) as ApiPb;
  return apiPb;
}

function call(m: Msg, method: string, ...args: unknown[]): unknown {
  return (m[method] as (...a: unknown[]) => unknown).apply(m, args);
}

/** A node to emit: `inputs` are tensor names (`node` or `node:k`). */
export interface NodeSpec {
  name: string;
  op: string;
  inputs: string[];
  attrs: Record<string, Attr>;
}

/**
 * Collects nodes with unique names; `op` returns the new node's name (its first output),
 * `constant` adds a `Const` node.
 */
export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  private readonly used = new Set<string>();

  /** A name not used yet, derived from `base` (TF node names: no ':' and a restricted charset). */
  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.\-/]/g, '_').replace(/^[^A-Za-z0-9.]/, 'n');
    let name = clean;
    for (let k = 1; this.used.has(name); k++) name = `${clean}_${k}`;
    this.used.add(name);
    return name;
  }

  op(op: string, name: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const n = this.unique(name);
    this.nodes.push({ name: n, op, inputs, attrs });
    return n;
  }

  constant(name: string, t: ConstTensor): string {
    return this.op('Const', name, [], { dtype: { type: t.dtype }, value: { tensor: t } });
  }

  floats(name: string, shape: number[], values: Float32Array | number[]): string {
    return this.constant(name, { dtype: DT_FLOAT, shape, values: values instanceof Float32Array ? values : Float32Array.from(values) });
  }

  ints(name: string, shape: number[], values: number[]): string {
    return this.constant(name, { dtype: DT_INT32, shape, values: Int32Array.from(values) });
  }
}

function shapeProto(api: ApiPb, dims: (number | null)[]): Msg {
  const s = new api.TensorShape();
  call(s, 'setDimList', dims.map((d) => {
    const dim = new api.TensorShape.Dim();
    call(dim, 'setSize', d ?? -1);
    return dim;
  }));
  return s;
}

function tensorProto(api: ApiPb, t: ConstTensor): Msg {
  const m = new api.Tensor();
  call(m, 'setDtype', t.dtype);
  call(m, 'setTensorShape', shapeProto(api, t.shape));
  // tensor_content is the raw little-endian buffer (x86 and ARM hosts are little-endian).
  call(m, 'setTensorContent', new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  return m;
}

function attrProto(api: ApiPb, a: Attr): Msg {
  const v = new api.AttrValue();
  if ('type' in a) call(v, 'setType', a.type);
  else if ('i' in a) call(v, 'setI', a.i);
  else if ('f' in a) call(v, 'setF', a.f);
  else if ('b' in a) call(v, 'setB', a.b);
  else if ('s' in a) call(v, 'setS', new TextEncoder().encode(a.s));
  else if ('ints' in a) {
    const list = new api.AttrValue.ListValue();
    call(list, 'setIList', a.ints);
    call(v, 'setList', list);
  } else if ('strs' in a) {
    const list = new api.AttrValue.ListValue();
    call(list, 'setSList', a.strs.map((x) => new TextEncoder().encode(x)));
    call(v, 'setList', list);
  } else if ('types' in a) {
    const list = new api.AttrValue.ListValue();
    call(list, 'setTypeList', a.types);
    call(v, 'setList', list);
  } else if ('shape' in a) call(v, 'setShape', shapeProto(api, a.shape));
  else call(v, 'setTensor', tensorProto(api, a.tensor));
  return v;
}

function graphProto(api: ApiPb, nodes: NodeSpec[], device: string): Msg {
  const g = new api.GraphDef();
  call(g, 'setNodeList', nodes.map((n) => {
    const m = new api.NodeDef();
    call(m, 'setName', n.name);
    call(m, 'setOp', n.op);
    if (device) call(m, 'setDevice', device);
    call(m, 'setInputList', n.inputs);
    const attrs = call(m, 'getAttrMap') as { set(k: string, v: Msg): void };
    for (const [k, a] of Object.entries(n.attrs)) attrs.set(k, attrProto(api, a));
    return m;
  }));
  const versions = new api.VersionDef();
  // GraphDef version 1987 or so is current; any producer >= the ops' minimum works, and TF fills
  // in default attributes when it loads a SavedModel.
  call(versions, 'setProducer', 1000);
  call(g, 'setVersions', versions);
  return g;
}

/** How far {@link fuseConvBiasActivation} fuses: every pattern, plain Conv2D + bias + ReLU only, or nothing. */
export type ConvFusion = 'all' | 'conv-relu' | 'none';

/**
 * Fuses `Conv2D | DepthwiseConv2dNative -> BiasAdd [-> activation]` chains into TensorFlow's
 * `_FusedConv2D` / `_FusedDepthwiseConv2dNative` (one kernel: bias and activation are applied as
 * the conv's output is written) where the intermediate results have no other consumer; the
 * activation is Relu, Relu6 or the hard swish written as compile.ts writes it,
 * `(1/6 * x) * relu6(3 + x)`. Grappler's remapper does this in TensorFlow's own graph runs but not
 * in the sessions the native binding loads, so the graph arrives fused. The fused node takes the
 * name of the chain's last node, so its consumers are unchanged. `conv-relu` limits it to the
 * patterns TF's non-oneDNN kernels also run (Conv2D with BiasAdd [+ Relu / Relu6]).
 */
export function fuseConvBiasActivation(nodes: NodeSpec[], level: ConvFusion = 'all'): NodeSpec[] {
  if (level === 'none') return nodes;
  const consumers = new Map<string, NodeSpec[]>();
  for (const n of nodes) for (const i of n.inputs) {
    const src = i.split(':')[0]!;
    const list = consumers.get(src);
    if (list) list.push(n);
    else consumers.set(src, [n]);
  }
  const only = (name: string): NodeSpec | undefined => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 ? c[0] : undefined;
  };
  const byName = new Map(nodes.map((n) => [n.name, n]));
  /** Whether `name` is a scalar float Const holding `value` (float32-rounded). */
  const isScalar = (name: string | undefined, value: number): boolean => {
    const a = name === undefined ? undefined : byName.get(name)?.attrs.value;
    return !!a && 'tensor' in a && a.tensor.values.length === 1 && a.tensor.values[0] === Math.fround(value);
  };
  const drop = new Set<string>();
  const replace = new Map<string, NodeSpec>();
  for (const biasAdd of nodes) {
    if (biasAdd.op !== 'BiasAdd') continue;
    const conv = byName.get(biasAdd.inputs[0]!);
    if (!conv || only(conv.name) !== biasAdd) continue;
    if (conv.op !== 'Conv2D' && !(level === 'all' && conv.op === 'DepthwiseConv2dNative')) continue;
    let last = biasAdd;
    let activation: string | undefined;
    const inner: NodeSpec[] = [];
    const next = only(biasAdd.name);
    const uses = consumers.get(biasAdd.name) ?? [];
    if (next && (next.op === 'Relu' || next.op === 'Relu6')) {
      last = next;
      activation = next.op;
    } else if (level === 'all' && uses.length === 2) {
      // hard swish: add3 = AddV2(three, x); relu6 = Relu6(add3); a = Mul(sixth, x); out = Mul(a, relu6)
      const add3 = uses.find((u) => u.op === 'AddV2');
      const mulSixth = uses.find((u) => u.op === 'Mul');
      const relu6 = add3 && only(add3.name);
      const out = mulSixth && only(mulSixth.name);
      const constantsOk = add3 && mulSixth && isScalar(add3.inputs[0], 3) && isScalar(mulSixth.inputs[0], 1 / 6);
      if (constantsOk && relu6?.op === 'Relu6' && out?.op === 'Mul' && only(relu6.name) === out && out.inputs[1] === relu6.name) {
        last = out;
        activation = '_FusedHardSwish';
        inner.push(add3, relu6, mulSixth);
      }
    }
    replace.set(last.name, {
      name: last.name,
      op: conv.op === 'Conv2D' ? '_FusedConv2D' : '_FusedDepthwiseConv2dNative',
      inputs: [conv.inputs[0]!, conv.inputs[1]!, biasAdd.inputs[1]!],
      attrs: {
        ...conv.attrs,
        num_args: { i: 1 },
        TArgs: { types: [DT_FLOAT] },
        fused_ops: { strs: activation ? ['BiasAdd', activation] : ['BiasAdd'] },
        epsilon: { f: 0 },
      },
    });
    for (const n of [conv, ...(last === biasAdd ? [] : [biasAdd]), ...inner]) drop.add(n.name);
  }
  return nodes.filter((n) => !drop.has(n.name)).map((n) => replace.get(n.name) ?? n);
}

/** An input or output of the serving signature. */
export interface SignatureTensor {
  key: string;
  tensorName: string;
  shape: (number | null)[];
}

/**
 * Writes `dir/saved_model.pb` (one meta graph tagged `serve`, signature `serving_default`) and an
 * empty `dir/variables/`: the weights are Const nodes, so there is nothing to restore. `device`
 * (e.g. `/device:CPU:0`) is set on every node: Grappler's remapper fuses conv + bias + activation
 * only for nodes already placed on a CPU.
 */
export function writeSavedModel(nativePackage: string, dir: string, nodes: NodeSpec[], inputs: SignatureTensor[], outputs: SignatureTensor[], device = ''): void {
  const api = pb(nativePackage);
  const meta = new api.MetaGraphDef();
  const info = new api.MetaGraphDef.MetaInfoDef();
  call(info, 'setTagsList', ['serve']);
  call(meta, 'setMetaInfoDef', info);
  call(meta, 'setGraphDef', graphProto(api, nodes, device));
  const sig = new api.SignatureDef();
  call(sig, 'setMethodName', 'tensorflow/serving/predict');
  for (const [getter, list] of [['getInputsMap', inputs], ['getOutputsMap', outputs]] as const) {
    const map = call(sig, getter) as { set(k: string, v: Msg): void };
    for (const t of list) {
      const ti = new api.TensorInfo();
      call(ti, 'setName', t.tensorName);
      call(ti, 'setDtype', DT_FLOAT);
      call(ti, 'setTensorShape', shapeProto(api, t.shape));
      map.set(t.key, ti);
    }
  }
  (call(meta, 'getSignatureDefMap') as { set(k: string, v: Msg): void }).set('serving_default', sig);
  const saved = new api.SavedModel();
  call(saved, 'setSavedModelSchemaVersion', 1);
  call(saved, 'setMetaGraphsList', [meta]);
  fs.mkdirSync(path.join(dir, 'variables'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'saved_model.pb'), saved.serializeBinary());
}
