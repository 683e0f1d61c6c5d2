/**
 * The kernel self-check: correct first, fast second, on whatever CPU this runs on.
 *
 * TensorFlow's oneDNN kernels are faster than its own (Eigen) kernels on the CPUs measured, but
 * not right on every CPU: on one AVX-512 host oneDNN's 1x1-conv input gradient was off by 1-6.5 %
 * and its 1x1 forward conv killed the process with SIGFPE for ResNet-50's widest layers. So before
 * the native backend is loaded, {@link resolveKernelPlan} decides from a known-answer test on
 * *this* host which kernels may be used:
 *
 * 1. a child process with oneDNN off (the trusted path; it also checks its smaller cases against
 *    float64 loops) runs every case of `scripts/kernel-check-child.mjs` (conv forward, input and
 *    filter gradient for 1x1, 3x3, 5x5, 7x7, strided, valid and depthwise convs over the shapes
 *    of the backbones at full width, the RefConv transforms, batch norm, matmul) and writes the
 *    outputs;
 * 2. a child process with oneDNN on runs the same cases on the native kernels and on each
 *    alternative route the runtime can use instead (MatMul for 1x1 convs, TF's EXPLICIT-padding
 *    gradient kernels, which stay on Eigen), and compares each with step 1 (relative L1 error);
 *    a crash is caught by the parent, which reads the case that was running and starts the
 *    child again without it;
 * 3. {@link decideKernelPlan} keeps oneDNN on if every kernel class is right natively or has a
 *    route that is, routes those classes, and turns oneDNN off as a whole otherwise. The one
 *    choice made for speed (TF's Eigen filter gradient for spatial convs with >= 64 input
 *    channels instead of oneDNN's) is timed on this host in the same child and taken only where
 *    it passed and is at least 5 % faster; and both children time the kernels of a ResNet-18 and
 *    a MobileNetV2 step (batch 8), so that oneDNN, even where right, goes off where it is slower.
 *
 * The verdict is cached per host (CPU model, flags and cache topology, thread count, the native
 * library's files, the check's own source) under `~/.cache/refconv/kernel-check/`, so its 20-50 s
 * are spent once. `REFCONV_KERNEL_CHECK=0` skips the check (and then leaves oneDNN off unless
 * `TF_ENABLE_ONEDNN_OPTS` says otherwise); `REFCONV_KERNEL_CHECK=force` runs it again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from './atomic-write.js';

/** Kernel classes that the runtime routes as a whole (see the child script's cases). */
export type KernelClass =
  | 'conv1x1.forward' | 'conv1x1.inputGrad' | 'conv1x1.filterGrad'
  | 'conv.forward' | 'conv.inputGrad' | 'conv.filterGrad'
  | 'depthwise.forward' | 'depthwise.inputGrad' | 'depthwise.filterGrad'
  | 'batchNorm.training' | 'batchNorm.inference' | 'matmul'
  | 'maxPool.inputGrad' | 'sgd.update' | 'refocus.perKernel';

/**
 * Ways to compute a kernel class: `native` = TF's op as tfjs calls it (oneDNN's kernel when oneDNN
 * is on); `explicit` = TF's gradient op with EXPLICIT padding, which TF's oneDNN rewrite leaves to
 * its Eigen kernel; `matmul` = a 1x1 conv as a MatMul over the (strided) input; `affine` =
 * inference-mode batch norm as a per-channel scale and shift (two elementwise passes); `refconv` =
 * RefConv's own kernel (native/refconv_ops.cc: the one-pass SGD update, the max-pool gradient, the per-kernel
 * RefConv transform and its gradient, training-mode batch norm and its gradient).
 */
export type KernelRoute = 'native' | 'explicit' | 'matmul' | 'affine' | 'refconv';

/** Alternatives to try, in order of preference, when a class's native kernel fails. */
const FALLBACK_ROUTES: Partial<Record<KernelClass, KernelRoute[]>> = {
  'conv1x1.forward': ['matmul'],
  'conv1x1.inputGrad': ['explicit', 'matmul'],
  'conv1x1.filterGrad': ['explicit', 'matmul'],
  'conv.inputGrad': ['explicit'],
  'conv.filterGrad': ['explicit'],
  'batchNorm.inference': ['affine'],
  'maxPool.inputGrad': ['refconv'],
  'sgd.update': ['refconv'],
  'refocus.perKernel': ['refconv'],
  'batchNorm.training': ['refconv'],
};

/** Relative L1 error above which a kernel is wrong (float32 reorderings stay near 1e-6). */
export const KERNEL_CHECK_TOLERANCE = 1e-4;

/** Result of one case on one route. */
export interface KernelCaseResult {
  /** `case id|route`. */
  key: string;
  cls: KernelClass;
  route: KernelRoute;
  /** Relative L1 error against the trusted side (candidate runs). */
  error?: number;
  /** Relative L1 error of the trusted side against a float64 loop (reference runs, small cases). */
  float64Error?: number;
  /** Signal or exit code when the process died in this case. */
  crashed?: string;
  ms?: number;
}

/** Per class and route: how many cases passed and the worst one. */
export interface RouteSummary {
  passed: number;
  failed: number;
  crashed: number;
  worstError: number;
  /** The first failing case, for messages. */
  firstFailure?: string;
}

/** What the backend uses on this host. */
export interface KernelPlan {
  /** Whether oneDNN's kernels are switched on (TF_ENABLE_ONEDNN_OPTS). */
  onednn: boolean;
  /** Classes moved off their native oneDNN kernel, and where to. */
  routes: Partial<Record<KernelClass, KernelRoute>>;
  /** Whether the Eigen filter-gradient speed route (EXPLICIT padding) is used for some maps: verified and faster on this host. */
  eigenFilterGradient: boolean;
  /** Per output-map bucket ({@link mapBucket}), whether that route is used; absent: `eigenFilterGradient` for both. */
  eigenFilterGradientMaps?: Record<MapBucket, boolean>;
  /** Whether TF's Eigen filter gradient passed the self-check here (it may still be slower than oneDNN's). */
  eigenFilterGradientCorrect?: boolean;
  /**
   * How BatchNormalization layers run in inference mode: TF's FusedBatchNorm kernel (`native`) or
   * a per-channel scale and shift (`affine`): the faster of the two on this host, or `affine` where
   * the kernel failed the check.
   */
  batchNormInference?: 'native' | 'affine';
  /**
   * RefConv's own kernels in use (kernels/refconv-ops.ts): each where it passed the check and is
   * at least 5 % faster than TF's ops for the same work on this host, or where TF's op failed.
   */
  refconvOps?: { sgdUpdate: boolean; maxPoolGrad: boolean; perKernelRefocus?: boolean; batchNormTraining?: boolean };
  /** Why, in one line (for describeBackend). */
  reason: string;
  /** Where the plan came from. */
  source: 'check' | 'cache' | 'skipped' | 'not-applicable';
}

/** The cached verdict. */
export interface KernelCheckVerdict {
  hostKey: string;
  host: HostFacts;
  createdAt: string;
  durationMs: number;
  tensorflowVersion?: string;
  /** Candidate (oneDNN on) results per class and route. */
  classes: Record<string, Record<string, RouteSummary>>;
  /** Trusted side: worst float64 error, failures and crashes. */
  reference: { checked: number; worstFloat64Error: number; failures: string[]; crashes: string[] };
  /** The plan at check time ({@link planOf}; the backend re-derives it at every start). */
  plan: Omit<KernelPlan, 'source'>;
  /** Filter-gradient timings, oneDNN vs Eigen (the speed route's measurement on this host). */
  filterGradientTimings: FilterGradientTiming[];
  /** The speed set's median ms per case, oneDNN off (reference) and on (candidate). */
  speed?: { off: ChildRun['speed']; on: ChildRun['speed'] };
  /** Inference-mode batch norm timings, TF's kernel vs scale + shift, oneDNN off (reference) and on (candidate). */
  batchNormInferenceTimings?: { off: BatchNormInferenceTiming[]; on: BatchNormInferenceTiming[] };
  /** RefConv's own kernels against TF's ops (candidate side). */
  refconvOpTimings?: RefconvOpTiming[];
  /** Every case result (for `core:kernel-check --json`). */
  results: KernelCaseResult[];
}

/** What identifies a host for the cache. */
export interface HostFacts {
  cpuModel: string;
  arch: string;
  platform: string;
  cpuFlagsHash: string;
  caches: string;
  threads: number;
  nativeLibrary: string;
  checkSource: string;
  env: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const childScript = path.join(here, '..', 'scripts', 'kernel-check-child.mjs');
const refconvOpsSource = path.join(here, '..', 'native', 'refconv_ops.cc');
const requireHere = createRequire(path.join(here, '..', 'package.json'));

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

let cpuinfoText: string | undefined;

/** One field of /proc/cpuinfo (first processor), '' where absent; the file is read once per process. */
function cpuinfoField(name: string): string {
  cpuinfoText ??= readText('/proc/cpuinfo');
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfoText)?.[1]?.trim() ?? '';
}

function cpuModel(): string {
  return cpuinfoField('model name') || cpuinfoField('Hardware') || os.cpus()[0]?.model || 'unknown';
}

/** CPU model, ISA flags, cache topology, the native library and the check's own source. */
export function hostFacts(nativePackage = '@tensorflow/tfjs-node'): HostFacts {
  const field = cpuinfoField;
  const flags = field('flags') || field('Features');
  const cacheDir = '/sys/devices/system/cpu/cpu0/cache';
  let caches = '';
  try {
    caches = fs.readdirSync(cacheDir).filter((d) => d.startsWith('index')).sort()
      .map((d) => ['level', 'type', 'size'].map((f) => readText(path.join(cacheDir, d, f)).trim()).join(' ')).join('; ');
  } catch { /* not Linux */ }
  let nativeLibrary = 'none';
  try {
    const pkgJson = requireHere.resolve(`${nativePackage}/package.json`);
    const version = (JSON.parse(readText(pkgJson)) as { version: string }).version;
    const libDir = path.join(path.dirname(pkgJson), 'deps', 'lib');
    const libs = fs.readdirSync(libDir).sort().map((f) => `${f}:${fs.statSync(path.join(libDir, f)).size}`).join(',');
    nativeLibrary = `${nativePackage}@${version} ${sha(libs)}`;
  } catch { /* not installed */ }
  const relevantEnv = ['REFCONV_KERNEL_CHECK_FAULT', 'REFCONV_KERNEL_CHECK_SPEED', 'ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', 'TF_NUM_INTRAOP_THREADS', 'OMP_NUM_THREADS']
    .map((k) => (process.env[k] !== undefined ? `${k}=${process.env[k]}` : '')).filter(Boolean).join(' ');
  return {
    cpuModel: cpuModel(),
    arch: os.arch(),
    platform: os.platform(),
    cpuFlagsHash: sha(`${field('cpu family')} ${field('model')} ${field('stepping')} ${flags}`),
    caches,
    threads: os.availableParallelism(),
    nativeLibrary,
    // the child that measures and this module that reads its records: a verdict written by another
    // version of either (a process started mid-upgrade) must not be taken for this one's
    checkSource: sha(readText(childScript) + readText(fileURLToPath(import.meta.url)) + readText(refconvOpsSource)),
    env: relevantEnv,
  };
}

/** The ISA summary of this CPU for reports: e.g. `AVX-512 (avx512f, avx512bw, ...)`, `AVX2`. */
export function cpuIsa(): string {
  const flags = new Set(cpuinfoField('flags').split(/\s+/));
  if (flags.has('avx512f')) return `AVX-512${flags.has('amx_tile') ? ' + AMX' : ''}`;
  if (flags.has('avx2')) return 'AVX2';
  if (os.arch() === 'arm64') return 'arm64';
  return flags.size > 1 ? 'x86-64 (no AVX2)' : os.arch();
}

/** `CPU model (ISA)` for reports and describeBackend, e.g. `AMD EPYC 9R14 (AVX-512)`. */
export function cpuDescription(): string {
  return `${cpuModel()} (${cpuIsa()})`;
}

function cacheRoot(): string {
  return process.env.REFCONV_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'refconv');
}

/** Where the verdict for these host facts is cached. */
export function verdictPath(facts: HostFacts): string {
  return path.join(cacheRoot(), 'kernel-check', `${sha(JSON.stringify(facts))}.json`);
}

interface ChildRun {
  results: KernelCaseResult[];
  timings: FilterGradientTiming[];
  /** Median ms per case of the speed set (a ResNet-18 / MobileNetV2 step's kernels at batch 8). */
  speed: Array<{ speed: string; cls?: KernelClass; ms: number }>;
  bnTimings: BatchNormInferenceTiming[];
  opTimings: RefconvOpTiming[];
  tfVersion?: string;
}

/** Kernel classes that RefConv's own TF kernels can take over. */
export type RefconvOpClass = 'maxPool.inputGrad' | 'sgd.update' | 'refocus.perKernel' | 'batchNorm.training';

/** Median ms of one training-size job on TF's ops (`native`) and on RefConv's own kernel (`refconv`). */
export interface RefconvOpTiming {
  opTiming: string;
  cls: RefconvOpClass;
  native: number;
  refconv: number;
}

/** Median ms of one inference-mode batch norm on TF's kernel (`native`) and as a scale + shift (`affine`). */
export interface BatchNormInferenceTiming {
  bnTiming: string;
  native: number;
  affine: number;
}

/** How much faster the scale + shift is than TF's batch norm kernel: sum of native ms / sum of affine ms. */
export function batchNormAffineSpeedup(timings: BatchNormInferenceTiming[] | undefined): number | undefined {
  if (!timings || timings.length === 0) return undefined;
  return timings.reduce((a, t) => a + t.native, 0) / timings.reduce((a, t) => a + t.affine, 0);
}

/**
 * How much faster oneDNN's kernels are than TF's own over the speed set: total ms with oneDNN off
 * (the reference child) / total with it on (the candidate), over the cases both sides timed.
 */
export function oneDnnSpeedup(off: Array<{ speed: string; ms: number }>, on: Array<{ speed: string; ms: number }>): number | undefined {
  const onMs = new Map(on.map((r) => [r.speed, r.ms]));
  const both = off.filter((r) => onMs.has(r.speed));
  if (both.length === 0) return undefined;
  return both.reduce((a, r) => a + r.ms, 0) / both.reduce((a, r) => a + onMs.get(r.speed)!, 0);
}

/** Median ms of one spatial conv's filter gradient on oneDNN's kernel and on TF's Eigen kernel. */
export interface FilterGradientTiming {
  timing: string;
  cin: number;
  k: number;
  /** Positions of the output map (its height x width): which {@link MapBucket} the case is in. */
  outPositions?: number;
  native: number;
  explicit: number;
}

/**
 * Output maps of at most this many positions (7 x 7) form the `small` bucket of the filter-gradient
 * choice. The two kernels' relative speed follows the map size, not the channels: on an AMD EPYC
 * AVX-512 host TF's Eigen kernel ran at 0.47-0.86x oneDNN's speed on ResNet-18's 56x56 to 14x14
 * maps and at 1.05-7.4x on 7x7 maps and on the 3x3 "maps" of RefConv's transforms (a basis kernel
 * viewed as a feature map); on the AVX2 host it was faster on the large maps. One decision over all
 * shapes let either kind of shape decide for the other.
 */
export const SMALL_MAP_POSITIONS = 49;

/** The filter-gradient choice is made per bucket of output map size ({@link SMALL_MAP_POSITIONS}). */
export type MapBucket = 'small' | 'large';

/** The bucket of an output map with `positions` = height x width. */
export function mapBucket(positions: number): MapBucket {
  return positions <= SMALL_MAP_POSITIONS ? 'small' : 'large';
}

/**
 * How much faster TF's Eigen filter gradient is than oneDNN's over the spatial convs with >= 64
 * input channels (the cases the speed route covers), in one map bucket or all: sum of oneDNN ms /
 * sum of Eigen ms. A timing without `outPositions` counts as a large map.
 */
export function eigenFilterGradientSpeedup(timings: FilterGradientTiming[], bucket?: MapBucket): number | undefined {
  const covered = timings.filter((t) => t.cin >= 64 && t.k > 1 && (bucket === undefined || mapBucket(t.outPositions ?? Infinity) === bucket));
  if (covered.length === 0) return undefined;
  return covered.reduce((a, t) => a + t.native, 0) / covered.reduce((a, t) => a + t.explicit, 0);
}

/** Runs one side; restarts it after a crash without the case that crashed (and the rest of its class/route). */
async function runSide(role: 'reference' | 'candidate', nativePackage: string, dir: string, fault: string | undefined, onednn: boolean): Promise<ChildRun> {
  /** Results of earlier starts (finished cases and crashes), kept across restarts. */
  const kept: KernelCaseResult[] = [];
  const skip = new Set<string>();
  let timing = true;
  let cases: Array<{ id: string; cls: KernelClass; routes: KernelRoute[] }> | null = null;
  for (let attempt = 0; attempt < 60; attempt++) {
    const cfgFile = path.join(dir, `${role}.config.json`);
    // Classes whose native kernel crashed here: the speed phases leave them out (their kernels are
    // routed around anyway) and still time the rest, so that a crash in one class does not cost
    // the host its oneDNN and batch-norm measurements.
    const avoid = [...new Set(kept.filter((r) => r.crashed && r.route === 'native').map((r) => r.cls))];
    fs.writeFileSync(cfgFile, JSON.stringify({ package: nativePackage, role, outDir: dir, skip: [...skip], avoid, fault, speed: process.env.REFCONV_KERNEL_CHECK_SPEED !== '0', timing }));
    const resultsFile = path.join(dir, `${role}.jsonl`);
    const progressFile = path.join(dir, `${role}.progress`);
    fs.rmSync(resultsFile, { force: true });
    fs.rmSync(progressFile, { force: true });
    const { code, signal, stderr } = await runChild([childScript, cfgFile], {
      ...process.env,
      TF_ENABLE_ONEDNN_OPTS: onednn ? '1' : '0',
      TF_CPP_MIN_LOG_LEVEL: '3',
    });
    const lines = readText(resultsFile).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const meta = lines.find((l) => 'meta' in l)?.meta as { tfVersion?: string } | undefined;
    const results = lines.filter((l) => 'key' in l) as unknown as KernelCaseResult[];
    const timings = lines.filter((l) => 'timing' in l) as unknown as FilterGradientTiming[];
    const speed = lines.filter((l) => 'speed' in l) as unknown as ChildRun['speed'];
    const bnTimings = lines.filter((l) => 'bnTiming' in l) as unknown as BatchNormInferenceTiming[];
    const opTimings = lines.filter((l) => 'opTiming' in l) as unknown as RefconvOpTiming[];
    if (lines.some((l) => 'done' in l)) return { results: [...kept, ...results], timings, speed, bnTimings, opTimings, tfVersion: meta?.tfVersion };
    const progress = readText(progressFile).split('\n').filter(Boolean);
    const last = progress[progress.length - 1];
    if (code === 2 || !last) {
      throw new Error(`kernel self-check: the ${role} process failed (exit ${code ?? signal}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    if (last.startsWith('timing|')) {
      // Died in a timing phase (every correctness case had finished): the kernel that crashed
      // fails its class all the same; start again without timings to collect the results.
      const [, cls, route, ...rest] = last.split('|');
      kept.push({ key: `${rest.join('|')}|${route}`, cls: cls as KernelClass, route: route as KernelRoute, crashed: signal ?? `exit ${code}` });
      timing = false;
      continue;
    }
    cases ??= listCheckCases();
    const id = last.slice(0, last.lastIndexOf('|'));
    const route = last.slice(last.lastIndexOf('|') + 1) as KernelRoute;
    const cls = cases.find((c) => c.id === id)?.cls ?? ('unknown' as KernelClass);
    kept.push({ key: last, cls, route, crashed: signal ?? `exit ${code}` }, ...results);
    // Everything that finished before the crash is kept and not run again. On the candidate side
    // the class has failed on this route, so its other cases on that route are not run either.
    for (const r of results) skip.add(r.key);
    skip.add(last);
    if (role === 'candidate') for (const c of cases) if (c.cls === cls) skip.add(`${c.id}|${route}`);
  }
  throw new Error(`kernel self-check: the ${role} process kept crashing`);
}

function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** The check's cases (id, class, routes), from the child script. */
export function listCheckCases(): Array<{ id: string; cls: KernelClass; routes: KernelRoute[] }> {
  const out = execFileSync(process.execPath, [childScript, '--list'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return (JSON.parse(out) as { cases: Array<{ id: string; cls: KernelClass; routes: KernelRoute[] }> }).cases;
}

/** Summaries per class and route from the candidate's results. */
export function summarise(results: KernelCaseResult[]): Record<string, Record<string, RouteSummary>> {
  const classes: Record<string, Record<string, RouteSummary>> = {};
  for (const r of results) {
    const byRoute = (classes[r.cls] ??= {});
    const s = (byRoute[r.route] ??= { passed: 0, failed: 0, crashed: 0, worstError: 0 });
    if (r.crashed) {
      s.crashed++;
      s.firstFailure ??= `${r.key.split('|')[0]}: process died (${r.crashed})`;
      continue;
    }
    const err = r.error ?? Infinity;
    const ok = Number.isFinite(err) && err <= KERNEL_CHECK_TOLERANCE;
    if (ok) s.passed++;
    else {
      s.failed++;
      s.firstFailure ??= `${r.key.split('|')[0]}: relative L1 error ${Number.isFinite(err) ? err.toExponential(2) : 'non-finite'}`;
    }
    s.worstError = Math.max(s.worstError, Number.isFinite(err) ? err : Infinity);
  }
  return classes;
}

function routeOk(s: RouteSummary | undefined): boolean {
  return !!s && s.failed === 0 && s.crashed === 0 && s.passed > 0;
}

const ROUTE_WORDS: Record<KernelRoute, string> = { native: 'oneDNN', explicit: 'Eigen', matmul: 'MatMul', affine: 'a per-channel scale and shift', refconv: "RefConv's kernel" };

/** Human words for a class: `conv1x1.inputGrad` -> `1x1 conv input gradients`. */
export function describeClass(cls: string): string {
  const [kind, op] = cls.split('.');
  const k = kind === 'conv1x1' ? '1x1 conv' : kind === 'conv' ? 'spatial conv' : kind === 'batchNorm' ? 'batch norm' : kind === 'maxPool' ? 'max pool' : kind === 'sgd' ? 'SGD' : kind === 'refocus' ? 'per-kernel RefConv transform' : kind;
  const o = op === 'inputGrad' ? 'input gradients' : op === 'filterGrad' ? 'filter gradients' : op === 'forward' ? 'forward' : op === 'perKernel' ? '(forward and gradient)' : op ?? '';
  return `${k} ${o}`.trim();
}

/**
 * The plan from the candidate's per-class summaries: oneDNN stays on when every class passed
 * natively or through a fallback route; otherwise it goes off as a whole. The Eigen
 * filter-gradient speed route is used where it passed and, when `eigenSpeedup` (measured on this
 * host, {@link eigenFilterGradientSpeedup}; one number for all maps or one per {@link MapBucket})
 * is given, only for the maps where it is at least 5 % faster. When `onednnSpeedup`
 * ({@link oneDnnSpeedup}) is given and below 0.95, oneDNN goes off although right.
 */
export function decideKernelPlan(
  classes: Record<string, Record<string, RouteSummary>>,
  eigenSpeedup?: number | Partial<Record<MapBucket, number>>,
  onednnSpeedup?: number,
): Omit<KernelPlan, 'source'> {
  const routes: Partial<Record<KernelClass, KernelRoute>> = {};
  const routed: string[] = [];
  const unfixable: string[] = [];
  for (const [cls, byRoute] of Object.entries(classes)) {
    if (routeOk(byRoute.native)) continue;
    const alt = (FALLBACK_ROUTES[cls as KernelClass] ?? []).find((r) => routeOk(byRoute[r]));
    const why = byRoute.native?.firstFailure ?? 'not run';
    if (alt) {
      routes[cls as KernelClass] = alt;
      routed.push(`${describeClass(cls)} on ${ROUTE_WORDS[alt]} (${why})`);
    } else unfixable.push(`${describeClass(cls)} (${why})`);
  }
  const eigenVerified = routeOk(classes['conv.filterGrad']?.explicit);
  const byBucket: Partial<Record<MapBucket, number>> = typeof eigenSpeedup === 'object' ? eigenSpeedup : { small: eigenSpeedup, large: eigenSpeedup };
  const use = (s: number | undefined) => eigenVerified && (s === undefined || s >= 1.05);
  const eigenFilterGradientMaps = { small: use(byBucket.small), large: use(byBucket.large) };
  const eigenFilterGradient = eigenFilterGradientMaps.small || eigenFilterGradientMaps.large;
  const speed = !eigenVerified ? '' : typeof eigenSpeedup === 'object' ? describeEigenBuckets(byBucket, eigenFilterGradientMaps)
    : eigenSpeedup === undefined ? ''
      : eigenFilterGradient ? `; filter gradients of >= 64-channel spatial convs on Eigen (${eigenSpeedup.toFixed(2)}x oneDNN's speed here)`
        : `; filter gradients on oneDNN (Eigen's ${eigenSpeedup.toFixed(2)}x here)`;
  const off = { eigenFilterGradient: false, eigenFilterGradientMaps: { small: false, large: false }, eigenFilterGradientCorrect: false };
  if (unfixable.length > 0) {
    return { onednn: false, routes: {}, ...off, reason: `oneDNN off: self-check failed for oneDNN's ${unfixable.join('; ')} on this CPU` };
  }
  if (onednnSpeedup !== undefined && onednnSpeedup < 0.95) {
    return {
      onednn: false, routes: {}, ...off,
      reason: `oneDNN off: its kernels are slower on this CPU (${onednnSpeedup.toFixed(2)}x the speed of TF's own over a ResNet-18 / MobileNetV2 step's kernels)`,
    };
  }
  const fast = onednnSpeedup === undefined ? '' : ` (${onednnSpeedup.toFixed(2)}x TF's own kernels' speed here)`;
  if (routed.length > 0) {
    return { onednn: true, routes, eigenFilterGradient, eigenFilterGradientMaps, eigenFilterGradientCorrect: eigenVerified, reason: `oneDNN on${fast}, ${routed.join('; ')}: self-check failed for oneDNN on this CPU${speed}` };
  }
  return { onednn: true, routes, eigenFilterGradient, eigenFilterGradientMaps, eigenFilterGradientCorrect: eigenVerified, reason: `oneDNN on${fast}: kernel self-check passed on this CPU${speed}` };
}

/** The plan's words for the filter-gradient choice per map bucket. */
function describeEigenBuckets(speedups: Partial<Record<MapBucket, number>>, used: Record<MapBucket, boolean>): string {
  const words = (['small', 'large'] as const).filter((b) => speedups[b] !== undefined).map((b) => {
    const maps = b === 'small' ? 'output maps <= 7x7' : 'larger maps';
    return `${maps} on ${used[b] ? 'Eigen' : 'oneDNN'} (Eigen ${speedups[b]!.toFixed(2)}x oneDNN's speed here)`;
  });
  return words.length ? `; filter gradients of >= 64-channel spatial convs: ${words.join(', ')}` : '';
}

/**
 * The plan for a verdict, derived from its measurements (correctness per class and route, and the
 * timings) by the current {@link decideKernelPlan}: a cached verdict follows a change of the
 * decision rules without re-running the check.
 */
export function planOf(verdict: Pick<KernelCheckVerdict, 'classes' | 'filterGradientTimings' | 'speed' | 'batchNormInferenceTimings' | 'refconvOpTimings'>): Omit<KernelPlan, 'source'> {
  const speedup = verdict.speed ? oneDnnSpeedup(verdict.speed.off, verdict.speed.on) : undefined;
  const timings = verdict.filterGradientTimings ?? [];
  const eigen = timings.length ? { small: eigenFilterGradientSpeedup(timings, 'small'), large: eigenFilterGradientSpeedup(timings, 'large') } : undefined;
  const plan = decideKernelPlan(verdict.classes, eigen, speedup);
  const bn = verdict.batchNormInferenceTimings;
  return chooseRefconvOps(chooseBatchNormInference(plan, batchNormAffineSpeedup(plan.onednn ? bn?.on : bn?.off)), verdict.classes, verdict.refconvOpTimings);
}

/**
 * Adds the choice of RefConv's own kernels to a plan: each where its `refconv` route passed the
 * check and its timing on this host is at least 5 % faster than TF's ops, or where it is the
 * correctness route (TF's op failed). Without a timing (not built, or crashed) it is not used.
 */
export function chooseRefconvOps(plan: Omit<KernelPlan, 'source'>, classes: Record<string, Record<string, RouteSummary>>, timings: RefconvOpTiming[] | undefined): Omit<KernelPlan, 'source'> {
  const words: string[] = [];
  const pick = (cls: RefconvOpClass, name: string): boolean => {
    if (plan.routes[cls] === 'refconv') return true;
    // a class may be timed in several jobs (the per-kernel transform: forward and gradient): their sum
    const ts = timings?.filter((x) => x.cls === cls) ?? [];
    if (ts.length === 0 || !routeOk(classes[cls]?.refconv)) return false;
    const speedup = ts.reduce((a, x) => a + x.native, 0) / ts.reduce((a, x) => a + x.refconv, 0);
    words.push(`${name} ${speedup >= 1.05 ? 'on' : 'not on'} RefConv's kernel (${speedup.toFixed(2)}x TF's ops' speed here)`);
    return speedup >= 1.05;
  };
  const refconvOps = {
    sgdUpdate: pick('sgd.update', 'SGD update'), maxPoolGrad: pick('maxPool.inputGrad', 'max-pool gradient'),
    perKernelRefocus: pick('refocus.perKernel', 'per-kernel RefConv transform'),
    batchNormTraining: pick('batchNorm.training', 'training batch norm'),
  };
  return { ...plan, refconvOps, reason: words.length > 0 ? `${plan.reason}; ${words.join(', ')}` : plan.reason };
}

/**
 * Adds the inference-mode batch norm choice to a plan: a scale + shift where TF's kernel failed
 * the check (a correctness route) or where it is at least 5 % faster than the kernel on this host
 * (`affineSpeedup`, {@link batchNormAffineSpeedup}, measured with the plan's oneDNN setting).
 */
export function chooseBatchNormInference(plan: Omit<KernelPlan, 'source'>, affineSpeedup: number | undefined): Omit<KernelPlan, 'source'> {
  if (plan.routes['batchNorm.inference'] === 'affine') return { ...plan, batchNormInference: 'affine' };
  if (affineSpeedup === undefined) return { ...plan, batchNormInference: 'native' };
  const affine = affineSpeedup >= 1.05;
  const why = affine
    ? `; inference batch norm as a scale + shift (${affineSpeedup.toFixed(2)}x TF's kernel's speed here)`
    : `; inference batch norm on TF's kernel (a scale + shift runs at ${affineSpeedup.toFixed(2)}x its speed here)`;
  return { ...plan, batchNormInference: affine ? 'affine' : 'native', reason: plan.reason + why };
}

/** Runs the whole check (two child processes) and returns the verdict; writes nothing to the cache. */
export async function runKernelCheck(opts: { nativePackage?: string; fault?: string } = {}): Promise<KernelCheckVerdict> {
  const nativePackage = opts.nativePackage ?? '@tensorflow/tfjs-node';
  const facts = hostFacts(nativePackage);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-kernel-check-'));
  const t0 = performance.now();
  try {
    const reference = await runSide('reference', nativePackage, dir, undefined, false);
    const candidate = await runSide('candidate', nativePackage, dir, opts.fault, true);
    const referenceKeys = new Set(reference.results.filter((r) => !r.crashed).map((r) => r.key.split('|')[0]));
    // A case whose trusted side crashed has nothing to compare with: it counts as not passed.
    const results = candidate.results.map((r) => (referenceKeys.has(r.key.split('|')[0]) || r.crashed ? r : { ...r, error: Infinity }));
    const f64 = reference.results.filter((r) => r.float64Error !== undefined);
    const classes = summarise(results);
    const speed = { off: reference.speed, on: candidate.speed };
    const batchNormInferenceTimings = { off: reference.bnTimings, on: candidate.bnTimings };
    const refconvOpTimings = candidate.opTimings;
    return {
      hostKey: verdictPath(facts),
      host: facts,
      createdAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - t0),
      tensorflowVersion: candidate.tfVersion ?? reference.tfVersion,
      classes,
      reference: {
        checked: f64.length,
        worstFloat64Error: Math.max(0, ...f64.map((r) => r.float64Error as number)),
        failures: f64.filter((r) => !((r.float64Error as number) <= KERNEL_CHECK_TOLERANCE)).map((r) => r.key),
        crashes: reference.results.filter((r) => r.crashed).map((r) => `${r.key} (${r.crashed})`),
      },
      plan: planOf({ classes, filterGradientTimings: candidate.timings, speed, batchNormInferenceTimings, refconvOpTimings }),
      filterGradientTimings: candidate.timings,
      speed,
      batchNormInferenceTimings,
      refconvOpTimings,
      results,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readVerdict(file: string): KernelCheckVerdict | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as KernelCheckVerdict;
    return v.plan && v.classes ? v : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The cached verdict for this host, or a fresh check (one process at a time: a lock directory
 * next to the cache file makes concurrent first uses wait for the first one).
 */
export async function loadOrRunKernelCheck(opts: { nativePackage?: string; force?: boolean; log?: (line: string) => void } = {}): Promise<{ verdict: KernelCheckVerdict; cached: boolean }> {
  const facts = hostFacts(opts.nativePackage);
  const file = verdictPath(facts);
  if (!opts.force) {
    const cached = readVerdict(file);
    if (cached) return { verdict: cached, cached: true };
  }
  const lock = `${file}.lock`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age > 10 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await sleep(500);
      const done = !opts.force && readVerdict(file);
      if (done) return { verdict: done, cached: true };
    }
  }
  try {
    (opts.log ?? ((l) => process.stderr.write(`${l}\n`)))(
      `[refconv] checking TensorFlow's native kernels on this CPU (${facts.cpuModel}, ${cpuIsa()}) against a trusted path and times them; once per host, 20-50 s`,
    );
    const verdict = await runKernelCheck({ nativePackage: opts.nativePackage, fault: process.env.REFCONV_KERNEL_CHECK_FAULT });
    writeFileAtomic(file, JSON.stringify(verdict, null, 1));
    return { verdict, cached: false };
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
