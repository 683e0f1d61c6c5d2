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
  } else if ('shape' in a) call(v, 'setShape', shapeProto(api, a.shape));
  else call(v, 'setTensor', tensorProto(api, a.tensor));
  return v;
}

function graphProto(api: ApiPb, nodes: NodeSpec[]): Msg {
  const g = new api.GraphDef();
  call(g, 'setNodeList', nodes.map((n) => {
    const m = new api.NodeDef();
    call(m, 'setName', n.name);
    call(m, 'setOp', n.op);
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

/** An input or output of the serving signature. */
export interface SignatureTensor {
  key: string;
  tensorName: string;
  shape: (number | null)[];
}

/**
 * Writes `dir/saved_model.pb` (one meta graph tagged `serve`, signature `serving_default`) and an
 * empty `dir/variables/`: the weights are Const nodes, so there is nothing to restore.
 */
export function writeSavedModel(nativePackage: string, dir: string, nodes: NodeSpec[], inputs: SignatureTensor[], outputs: SignatureTensor[]): void {
  const api = pb(nativePackage);
  const meta = new api.MetaGraphDef();
  const info = new api.MetaGraphDef.MetaInfoDef();
  call(info, 'setTagsList', ['serve']);
  call(meta, 'setMetaInfoDef', info);
  call(meta, 'setGraphDef', graphProto(api, nodes));
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
