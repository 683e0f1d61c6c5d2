/**
 * Backend selection: one place that loads and initialises TensorFlow.js.
 *
 * Order: the native TensorFlow binding (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`, both provisioned by this package's postinstall script),
 * and only when neither loads, the pure-JS `cpu` backend with a loud warning.
 * `REFCONV_BACKEND=tensorflow|cpu|wasm` (or {@link initBackend}'s argument, which CLIs
 * expose as `--backend`) overrides the choice.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { applyKernelPlan, enableFastKernels, oneDnnRequested } from './fast-kernels.js';
import { cpuDescription, loadOrRunKernelCheck, planOf, type KernelPlan } from './kernel-check.js';

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
  /** Which native kernels are used on this host and why (the kernel self-check, kernel-check.ts). */
  kernelPlan?: KernelPlan;
  /** CPU model and ISA, e.g. `AMD EPYC 9R14 (AVX-512)`. */
  cpu: string;
}

let current: BackendInfo | undefined;

/**
 * Keep TensorFlow's C++ logging (absl / oneDNN banners) out of stdout/stderr unless
 * the user asked for it: TF reads this variable when the library is loaded.
 */
function quietNativeLogs(): void {
  if (process.env.TF_CPP_MIN_LOG_LEVEL === undefined) process.env.TF_CPP_MIN_LOG_LEVEL = '3';
}

const ONEDNN_ENV = 'TF_ENABLE_ONEDNN_OPTS';

/** The user's own oneDNN setting, if any. */
function userOneDnn(): boolean | undefined {
  return process.env[ONEDNN_ENV] ? oneDnnRequested() : undefined;
}

/**
 * Decides, before TensorFlow is loaded (it reads TF_ENABLE_ONEDNN_OPTS at its first op), whether
 * oneDNN's CPU kernels are used and which kernel classes are routed elsewhere: from the kernel
 * self-check's verdict for this host (run once, then cached; kernel-check.ts). oneDNN is faster
 * where it is right (the C library leaves it off; on the project's 2-core AVX2 host it made the
 * conv / batch-norm kernels of ResNet-18 and MobileNetV2 1.38x faster), but it is not right on
 * every CPU. `TF_ENABLE_ONEDNN_OPTS` set by the user wins, with a warning where the check
 * disagrees; `REFCONV_KERNEL_CHECK=0` skips the check and keeps the trusted path (oneDNN off).
 */
async function resolveKernelPlan(nativePackage: string, notes: string[]): Promise<KernelPlan> {
  const user = userOneDnn();
  let plan: KernelPlan;
  const mode = (process.env.REFCONV_KERNEL_CHECK ?? '').toLowerCase();
  if (['0', 'off', 'skip', 'false'].includes(mode)) {
    plan = { onednn: false, routes: {}, eigenFilterGradient: false, source: 'skipped', reason: 'oneDNN off: kernel self-check skipped (REFCONV_KERNEL_CHECK=0), trusted path' };
  } else {
    try {
      const { verdict, cached } = await loadOrRunKernelCheck({ nativePackage, force: mode === 'force' });
      plan = { ...planOf(verdict), source: cached ? 'cache' : 'check' };
      if (verdict.reference.failures.length > 0 || verdict.reference.crashes.length > 0) {
        const bad = [...verdict.reference.failures, ...verdict.reference.crashes].slice(0, 3).join('; ');
        process.emitWarning(`TensorFlow's own (Eigen) kernels disagree with a float64 loop on this CPU (${bad}): results may be wrong even with oneDNN off`, { code: 'REFCONV_KERNEL_CHECK' });
      }
    } catch (e) {
      notes.push(`kernel self-check could not run: ${(e as Error).message}`);
      plan = { onednn: false, routes: {}, eigenFilterGradient: false, source: 'skipped', reason: 'oneDNN off: kernel self-check could not run, trusted path' };
    }
  }
  if (user === undefined) {
    process.env[ONEDNN_ENV] = plan.onednn ? '1' : '0';
    return plan;
  }
  if (user && !plan.onednn && plan.source !== 'skipped') {
    process.emitWarning(`${ONEDNN_ENV}=${process.env[ONEDNN_ENV]} overrides the kernel self-check, which found oneDNN wrong on this CPU (${plan.reason}): results may be wrong`, { code: 'REFCONV_KERNEL_CHECK' });
    return { ...plan, onednn: true, reason: `oneDNN on (${ONEDNN_ENV}=${process.env[ONEDNN_ENV]}, against the self-check: ${plan.reason})` };
  }
  if (!user) return { onednn: false, routes: {}, eigenFilterGradient: false, source: plan.source, reason: `oneDNN off (${ONEDNN_ENV}=${process.env[ONEDNN_ENV]})` };
  return { ...plan, reason: `${plan.reason} (${ONEDNN_ENV}=${process.env[ONEDNN_ENV]})` };
}

/**
 * How to provision the native backend after the fact. npm 11 lets a project deny (and later npm
 * versions skip by default) the install scripts of dependencies, @refconv/core's included.
 */
const PROVISION_HINT =
  'Provision the native backend with `npx refconv-native` (the install script of @refconv/core, which npm skips ' +
  'where it is not approved: `npm install-scripts approve @refconv/core` approves it for later installs)';

function isInstalled(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}


function tryNative(pkg: string): { ok: true; version?: string } | { ok: false; error: string } {
  try {
    quietNativeLogs();
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
      const gpu = pkg.endsWith('-gpu');
      const plan: KernelPlan | undefined = !isInstalled(pkg) ? undefined : gpu
        ? { onednn: oneDnnRequested(), routes: {}, eigenFilterGradient: false, source: 'not-applicable', reason: 'GPU build: CPU kernel self-check not run' }
        : await resolveKernelPlan(pkg, notes);
      const r = tryNative(pkg);
      if (r.ok) {
        await tf.setBackend('tensorflow');
        await tf.ready();
        const fastKernels = enableFastKernels();
        if (plan) applyKernelPlan(plan);
        current = {
          backend: 'tensorflow',
          package: pkg,
          tfjsVersion: tf.version_core,
          tensorflowVersion: r.version,
          gpu,
          notes,
          fastKernels,
          kernelPlan: plan,
          cpu: cpuDescription(),
        };
        return current;
      }
      if (!r.error.includes('Cannot find module')) notes.push(r.error);
    }
    if (want === 'tensorflow') {
      throw new Error(
        `the native TensorFlow backend was requested but does not load (${notes.join('; ') || 'not installed'}). ` +
          `${PROVISION_HINT} (see README "Backends").`,
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
          `${PROVISION_HINT}.`,
        { code: 'REFCONV_NO_NATIVE' },
      );
    }
  }
  await tf.ready();
  current = { backend: tf.getBackend(), package: '@tensorflow/tfjs', tfjsVersion: tf.version_core, gpu: false, notes, fastKernels: false, cpu: cpuDescription() };
  return current;
}

/**
 * The npm package of the native backend in use (`@tensorflow/tfjs-node` or `-gpu`), or undefined
 * when another backend runs (used to reach the binding's SavedModel runtime, graph/compile.ts).
 */
export function nativePackageInUse(): string | undefined {
  return current?.backend === 'tensorflow' && tf.getBackend() === 'tensorflow' ? current.package : undefined;
}

/** One line saying which backend runs, for CLIs to print at start. */
export function describeBackend(info: BackendInfo = current as BackendInfo): string {
  if (!info) return 'backend: not initialised';
  const tfv = info.tensorflowVersion ? `, TensorFlow ${info.tensorflowVersion}` : '';
  const dev = info.backend === 'tensorflow' ? (info.gpu ? ' (GPU)' : ' (CPU)') : '';
  const fused = info.fastKernels ? ', fused BN/ReLU kernels' : '';
  const onednn = info.backend === 'tensorflow' && !info.gpu
    ? `, ${info.kernelPlan?.reason ?? `oneDNN ${oneDnnRequested() ? 'on' : 'off'}`}` : '';
  const pages = info.backend === 'tensorflow' && !info.gpu ? hugePagesNote() : '';
  return `backend: ${info.backend}${dev} via ${info.package} (tfjs ${info.tfjsVersion}${tfv}${fused}${onednn}; CPU: ${info.cpu}${pages})`;
}

/**
 * Whether TensorFlow's CPU buffers get transparent huge pages. Where the kernel gives them only on
 * request (THP `madvise`, the common default), glibc asks for them only with
 * `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, read at process start: without it every fresh
 * activation or gradient buffer is faulted in 4 KB at a time (a RefConv MobileNetV2 training step on
 * an AMD EPYC AVX-512 host: 201,776 minor page faults and 4.4 s of system CPU without it, 976 faults
 * with it; the step's wall time halved). The repo's nx targets set it; in your own scripts, export it.
 */
function hugePagesNote(): string {
  if (process.platform !== 'linux') return '';
  let mode = '';
  try {
    mode = /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
  if (mode === 'always') return '; huge pages: always (kernel)';
  if (mode !== 'madvise') return `; huge pages: ${mode || 'unknown'} (kernel)`;
  return /glibc\.malloc\.hugetlb=[12]/.test(process.env.GLIBC_TUNABLES ?? '')
    ? '; huge pages: on (glibc.malloc.hugetlb)'
    : '; huge pages: off (set GLIBC_TUNABLES=glibc.malloc.hugetlb=1, README "Backends")';
}

export { tf };
