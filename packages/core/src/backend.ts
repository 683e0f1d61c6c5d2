/**
 * Backend selection: one place that loads and initialises TensorFlow.js.
 *
 * Order: the native TensorFlow binding (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`, both provisioned by this package's postinstall script),
 * and only when neither loads, the pure-JS `cpu` backend with a loud warning.
 * `REFCONV_BACKEND=tensorflow|cpu|wasm` (or {@link initBackend}'s argument, which CLIs
 * expose as `--backend`) overrides the choice.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { enableFastKernels, oneDnnRequested } from './fast-kernels.js';

const require = createRequire(import.meta.url);

/** Backends a user can ask for. `auto` = native if it loads, else pure JS. */
export type BackendName = 'auto' | 'tensorflow' | 'cpu' | 'wasm';

/** What {@link initBackend} settled on. */
export interface BackendInfo {
  /** tfjs backend name (`tensorflow` for the native binding). */
  backend: string;
  /** npm package that provides it. */
  package: string;
  /** tfjs version. */
  tfjsVersion: string;
  /** TensorFlow C library version, for the native backend. */
  tensorflowVersion?: string;
  /** Whether the native build was compiled for CUDA. */
  gpu: boolean;
  /** Why the choice was made (fallback reasons). */
  notes: string[];
  /** Whether the fused native training kernels are active (see fast-kernels.ts). */
  fastKernels: boolean;
}

let current: BackendInfo | undefined;

/**
 * Keep TensorFlow's C++ logging (absl / oneDNN banners) out of stdout/stderr unless
 * the user asked for it: TF reads this variable when the library is loaded.
 */
function quietNativeLogs(): void {
  if (process.env.TF_CPP_MIN_LOG_LEVEL === undefined) process.env.TF_CPP_MIN_LOG_LEVEL = '3';
}

/**
 * Turn on TensorFlow's oneDNN CPU kernels unless the user chose: the C library leaves them off
 * (only the Python package turns them on by default). On this project's 2-core x86 machine they
 * made the conv / batch-norm kernels of ResNet-18 and MobileNetV2 1.38x faster overall
 * (`npx nx run core:bench-conv`, table in the README). TF reads the variable at its first op.
 */
function preferOneDnn(): void {
  if (process.env.TF_ENABLE_ONEDNN_OPTS === undefined) process.env.TF_ENABLE_ONEDNN_OPTS = '1';
}


function tryNative(pkg: string): { ok: true; version?: string } | { ok: false; error: string } {
  try {
    quietNativeLogs();
    preferOneDnn();
    const mod = require(pkg) as { backend?: unknown; version?: Record<string, string> };
    void mod;
    const be = tf.findBackend('tensorflow') as unknown as { binding?: { TF_Version?: string } } | null;
    if (!be) return { ok: false, error: `${pkg} loaded but registered no 'tensorflow' backend` };
    return { ok: true, version: be.binding?.TF_Version };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0] ?? String(e);
    return { ok: false, error: `${pkg}: ${msg}` };
  }
}

/**
 * Selects and initialises the tfjs backend. Idempotent: later calls return the
 * first result unless a different explicit backend is requested.
 *
 * @param requested `auto` (default: `REFCONV_BACKEND` or native-first) or a backend name.
 */
export async function initBackend(requested?: BackendName): Promise<BackendInfo> {
  const want = (requested ?? (process.env.REFCONV_BACKEND as BackendName | undefined) ?? 'auto') as BackendName;
  if (!['auto', 'tensorflow', 'cpu', 'wasm'].includes(want)) {
    throw new Error(`unknown backend '${want}' (REFCONV_BACKEND / --backend): expected auto, tensorflow, cpu or wasm`);
  }
  if (current && (want === 'auto' || want === current.backend)) return current;
  const notes: string[] = [];

  if (want === 'auto' || want === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      const r = tryNative(pkg);
      if (r.ok) {
        await tf.setBackend('tensorflow');
        await tf.ready();
        current = {
          backend: 'tensorflow',
          package: pkg,
          tfjsVersion: tf.version_core,
          tensorflowVersion: r.version,
          gpu: pkg.endsWith('-gpu'),
          notes,
          fastKernels: enableFastKernels(),
        };
        return current;
      }
      if (!r.error.includes('Cannot find module')) notes.push(r.error);
    }
    if (want === 'tensorflow') {
      throw new Error(
        `the native TensorFlow backend was requested but does not load (${notes.join('; ') || 'not installed'}). ` +
          'Run `npm rebuild @refconv/core` to provision it (see README "Backends").',
      );
    }
    notes.push('native TensorFlow backend not installed');
  }

  if (want === 'wasm') {
    try {
      await import('@tensorflow/tfjs-backend-wasm' as string);
      await tf.setBackend('wasm');
    } catch (e) {
      throw new Error(`wasm backend requested but @tensorflow/tfjs-backend-wasm does not load: ${(e as Error).message}`);
    }
  } else {
    await tf.setBackend('cpu');
    if (want === 'auto') {
      process.emitWarning(
        `RefConv is running on the pure-JS 'cpu' backend (${notes.join('; ')}): training will be ~1000x slower. ` +
          'Run `npm rebuild @refconv/core` to provision the native backend.',
        { code: 'REFCONV_NO_NATIVE' },
      );
    }
  }
  await tf.ready();
  current = { backend: tf.getBackend(), package: '@tensorflow/tfjs', tfjsVersion: tf.version_core, gpu: false, notes, fastKernels: false };
  return current;
}

/** One line saying which backend runs, for CLIs to print at start. */
export function describeBackend(info: BackendInfo = current as BackendInfo): string {
  if (!info) return 'backend: not initialised';
  const tfv = info.tensorflowVersion ? `, TensorFlow ${info.tensorflowVersion}` : '';
  const dev = info.backend === 'tensorflow' ? (info.gpu ? ' (GPU)' : ' (CPU)') : '';
  const fused = info.fastKernels ? ', fused BN/ReLU kernels' : '';
  const onednn = info.backend === 'tensorflow' && !info.gpu ? `, oneDNN ${oneDnnRequested() ? 'on' : 'off'}` : '';
  return `backend: ${info.backend}${dev} via ${info.package} (tfjs ${info.tfjsVersion}${tfv}${fused}${onednn})`;
}

export { tf };
