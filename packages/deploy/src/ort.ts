/**
 * Running an exported model with onnxruntime-node (CPU execution provider; its binaries ship inside
 * the npm package).
 */
import * as ort from 'onnxruntime-node';

/** Session options of {@link createSession}. */
export interface OrtSessionOptions {
  /** Intra-op threads; default: onnxruntime's choice (all cores). */
  intraOpThreads?: number;
  /** Graph optimisation level; default `'all'`. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Whether idle intra-op threads spin waiting for work (onnxruntime's default) or sleep; default
   * false: spinning threads keep their cores busy between calls, which costs the rest of the
   * process (decoding, tfjs) more than it gains on a 2-core machine (bench:infer --ort-spinning).
   */
  spinning?: boolean;
}

/** Opens an ONNX model (path or bytes) in onnxruntime-node on the CPU. */
export async function createSession(model: string | Uint8Array, options: OrtSessionOptions = {}): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
  };
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, opts) : await ort.InferenceSession.create(model, opts);
  } catch (e) {
    const where = typeof model === 'string' ? `'${model}'` : `${model.byteLength} bytes`;
    throw new Error(`onnxruntime could not load the model (${where}): ${(e as Error).message}`);
  }
}

/** One float32 output of {@link runSession}: data and dims. */
export interface OrtOutput {
  data: Float32Array;
  dims: number[];
}

/**
 * Runs a session on one float32 input (`dims` in the model's layout) and returns every output by name.
 */
export async function runSession(session: ort.InferenceSession, data: Float32Array, dims: number[]): Promise<Record<string, OrtOutput>> {
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  const res = await session.run(feeds);
  const out: Record<string, OrtOutput> = {};
  for (const name of session.outputNames) {
    const t = res[name];
    out[name] = { data: t.data as Float32Array, dims: t.dims.map(Number) };
    t.dispose();
  }
  return out;
}
