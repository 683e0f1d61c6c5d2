/**
 * The kernel self-check must catch a deliberately wrong kernel (scaled outputs, NaN), survive a
 * kernel that kills its process, route what has a verified alternative, turn oneDNN off where
 * nothing does, cache its verdict per host, and drive initBackend (which runs in a child process
 * here: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once per process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchNormAffineSpeedup, chooseBatchNormInference, decideKernelPlan, eigenFilterGradientSpeedup, listCheckCases, loadOrRunKernelCheck, mapBucket, oneDnnSpeedup, planOf, type KernelCheckVerdict, type RouteSummary } from '../src/kernel-check.js';
import { initBackend } from '../src/backend.js';

const ok = (n = 3): RouteSummary => ({ passed: n, failed: 0, crashed: 0, worstError: 1e-6 });
const bad = (what: string): RouteSummary => ({ passed: 1, failed: 2, crashed: 0, worstError: 0.03, firstFailure: what });

describe('chooseBatchNormInference', () => {
  const base = decideKernelPlan({ 'batchNorm.inference': { native: ok(), affine: ok() } });
  it('takes the scale + shift only where it is at least 5 % faster than the kernel', () => {
    expect(chooseBatchNormInference(base, 1.8)).toMatchObject({ batchNormInference: 'affine' });
    expect(chooseBatchNormInference(base, 1.8).reason).toContain("inference batch norm as a scale + shift (1.80x TF's kernel's speed here)");
    expect(chooseBatchNormInference(base, 1.02)).toMatchObject({ batchNormInference: 'native' });
    expect(chooseBatchNormInference(base, undefined)).toMatchObject({ batchNormInference: 'native', reason: base.reason });
  });
  it('takes it regardless of speed where the kernel failed the check', () => {
    const failed = decideKernelPlan({ 'batchNorm.inference': { native: bad('bn 7x7x960 inference'), affine: ok() } });
    expect(failed.routes['batchNorm.inference']).toBe('affine');
    expect(chooseBatchNormInference(failed, 0.5).batchNormInference).toBe('affine');
  });
  it('speedup = summed kernel ms / summed scale + shift ms', () => {
    expect(batchNormAffineSpeedup([{ bnTiming: 'a', native: 3, affine: 1 }, { bnTiming: 'b', native: 1, affine: 1 }])).toBe(2);
    expect(batchNormAffineSpeedup([])).toBeUndefined();
  });
});

describe('decideKernelPlan', () => {
  it('keeps oneDNN on when every class passes natively', () => {
    const plan = decideKernelPlan({ 'conv1x1.forward': { native: ok(), matmul: ok() }, 'conv.filterGrad': { native: ok(), explicit: ok() } });
    expect(plan).toMatchObject({ onednn: true, routes: {}, eigenFilterGradient: true });
    expect(plan.reason).toBe('oneDNN on: kernel self-check passed on this CPU');
  });

  it('routes a failing class to its first verified alternative and says why', () => {
    const plan = decideKernelPlan({
      'conv1x1.inputGrad': { native: bad('1x1 7x7x512->2048 input-grad: relative L1 error 3.00e-2'), explicit: bad('x'), matmul: ok() },
      'conv.filterGrad': { native: ok(), explicit: bad('y') },
    });
    expect(plan.onednn).toBe(true);
    expect(plan.routes).toEqual({ 'conv1x1.inputGrad': 'matmul' });
    expect(plan.eigenFilterGradient).toBe(false);
    expect(plan.reason).toContain('1x1 conv input gradients on MatMul (1x1 7x7x512->2048 input-grad: relative L1 error 3.00e-2)');
  });

  it("takes the Eigen filter-gradient speed route only where it passed and is >= 5 % faster on this host", () => {
    const classes = { 'conv.filterGrad': { native: ok(), explicit: ok() } };
    const faster = decideKernelPlan(classes, 1.3);
    expect(faster.eigenFilterGradient).toBe(true);
    expect(faster.reason).toBe('oneDNN on: kernel self-check passed on this CPU; filter gradients of >= 64-channel spatial convs on Eigen (1.30x oneDNN\'s speed here)');
    const slower = decideKernelPlan(classes, 0.81);
    expect(slower.eigenFilterGradient).toBe(false);
    expect(slower.reason).toContain("filter gradients on oneDNN (Eigen's 0.81x here)");
    expect(decideKernelPlan({ 'conv.filterGrad': { native: ok(), explicit: bad('w') } }, 2).eigenFilterGradient).toBe(false);
  });

  it('decides the Eigen filter gradient per output-map bucket: small maps (<= 7x7) apart from larger ones', () => {
    expect([mapBucket(3 * 3), mapBucket(7 * 7), mapBucket(8 * 8), mapBucket(56 * 56)]).toEqual(['small', 'small', 'large', 'large']);
    // an AVX-512 host's pattern: Eigen slower on ResNet's large maps, far faster on 7x7 and RefConv's 3x3 maps
    const timings = [
      { timing: '3x3 56x56x64->64 filter-grad', cin: 64, k: 3, outPositions: 56 * 56, native: 1.6, explicit: 3.5 },
      { timing: '3x3 28x28x128->128 filter-grad', cin: 128, k: 3, outPositions: 28 * 28, native: 2.3, explicit: 3.5 },
      { timing: '3x3 7x7x512->512 filter-grad', cin: 512, k: 3, outPositions: 49, native: 4.8, explicit: 4.0 },
      { timing: '3x3 3x3x960->960 filter-grad', cin: 960, k: 3, outPositions: 9, native: 61.3, explicit: 12.9 },
      { timing: '3x3 224x224x3->32 s2 filter-grad', cin: 3, k: 3, outPositions: 112 * 112, native: 0.7, explicit: 0.9 },
    ];
    expect(eigenFilterGradientSpeedup(timings, 'large')).toBeCloseTo((1.6 + 2.3) / (3.5 + 3.5), 12);
    expect(eigenFilterGradientSpeedup(timings, 'small')).toBeCloseTo((4.8 + 61.3) / (4.0 + 12.9), 12);
    // over all shapes the one slow-on-oneDNN case decides for ResNet's maps too (the old rule)
    expect(eigenFilterGradientSpeedup(timings)!).toBeGreaterThan(1.05);
    const classes = { 'conv.filterGrad': { native: ok(), explicit: ok() } };
    const plan = planOf({ classes, filterGradientTimings: timings });
    expect(plan.eigenFilterGradientMaps).toEqual({ small: true, large: false });
    expect(plan.eigenFilterGradient).toBe(true);
    expect(plan.reason).toContain("filter gradients of >= 64-channel spatial convs: output maps <= 7x7 on Eigen (Eigen 3.91x oneDNN's speed here), larger maps on oneDNN (Eigen 0.56x oneDNN's speed here)");
    // a number applies to both buckets (verdicts without per-bucket timings)
    expect(decideKernelPlan(classes, 1.3).eigenFilterGradientMaps).toEqual({ small: true, large: true });
  });

  it('turns oneDNN off where it is right but slower than TF\'s own kernels over a training step', () => {
    const classes = { 'conv1x1.forward': { native: ok() } };
    expect(decideKernelPlan(classes, undefined, 0.9)).toMatchObject({ onednn: false, routes: {} });
    expect(decideKernelPlan(classes, undefined, 0.9).reason).toContain('oneDNN off: its kernels are slower on this CPU (0.90x');
    expect(decideKernelPlan(classes, undefined, 1.3).reason).toBe("oneDNN on (1.30x TF's own kernels' speed here): kernel self-check passed on this CPU");
    expect(oneDnnSpeedup([{ speed: 'a', ms: 30 }, { speed: 'b', ms: 10 }, { speed: 'c', ms: 5 }], [{ speed: 'a', ms: 10 }, { speed: 'b', ms: 10 }])).toBe(2);
  });

  it('turns oneDNN off when a failing class has no verified alternative', () => {
    const crashed: RouteSummary = { passed: 0, failed: 0, crashed: 1, worstError: 0, firstFailure: 'depthwise 3x3 7x7x960 forward: process died (SIGFPE)' };
    const plan = decideKernelPlan({ 'depthwise.forward': { native: crashed }, 'conv1x1.forward': { native: bad('z'), matmul: ok() } });
    expect(plan).toMatchObject({ onednn: false, routes: {} });
    expect(plan.reason).toContain("oneDNN off: self-check failed for oneDNN's depthwise forward (depthwise 3x3 7x7x960 forward: process died (SIGFPE))");
  });
});

const here = path.dirname(fileURLToPath(import.meta.url));
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-kc-test-'));
// The crash is injected in the first 1x1 forward case, so that it comes before the SIGFPE of the
// AVX-512 EPYC host's own oneDNN (at 14x14x256->1024): the class is cut short at the first crash.
const ROUTABLE_FAULTS = 'conv1x1.inputGrad/native:scale@x512->,conv1x1.forward/native:crash@1x1 56x56x64->64 forward,batchNorm.inference/native:scale@14x14x1024';
const FATAL_FAULT = 'depthwise.forward/native:nan@112x112x32';

/** Runs the check (or reads its cache) with REFCONV_CACHE_DIR and the fault set in this process. */
async function checkWith(fault: string, opts: { speed?: boolean } = {}): Promise<{ verdict: KernelCheckVerdict; cached: boolean }> {
  const saved = { dir: process.env.REFCONV_CACHE_DIR, fault: process.env.REFCONV_KERNEL_CHECK_FAULT };
  process.env.REFCONV_CACHE_DIR = cacheDir;
  process.env.REFCONV_KERNEL_CHECK_FAULT = fault;
  // correctness only, unless asked: the speed set is tested on the host's own verdict
  if (!opts.speed) process.env.REFCONV_KERNEL_CHECK_SPEED = '0';
  try {
    return await loadOrRunKernelCheck({ log: () => {} });
  } finally {
    delete process.env.REFCONV_KERNEL_CHECK_SPEED;
    for (const [k, v] of [['REFCONV_CACHE_DIR', saved.dir], ['REFCONV_KERNEL_CHECK_FAULT', saved.fault]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** initBackend + describeBackend in a fresh process; returns its stdout lines and stderr. */
function backendInChild(env: Record<string, string | undefined>): { stdout: string; stderr: string } {
  const script = path.join(cacheDir, 'init.mts');
  fs.writeFileSync(script, [
    `import { initBackend, describeBackend, activeKernelRoutes } from ${JSON.stringify(path.join(here, '..', 'src', 'index.ts'))};`,
    'const info = await initBackend();',
    'console.log(describeBackend(info));',
    'console.log(JSON.stringify({ onednnEnv: process.env.TF_ENABLE_ONEDNN_OPTS, routes: activeKernelRoutes() }));',
  ].join('\n'));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, REFCONV_CACHE_DIR: cacheDir, REFCONV_KERNEL_CHECK_SPEED: '0' };
  delete childEnv.TF_ENABLE_ONEDNN_OPTS;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const out = { stdout: '', stderr: '' };
  try {
    out.stdout = execFileSync(process.execPath, ['--import', 'tsx', script], { env: childEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: path.join(here, '..') });
  } catch (e) {
    throw new Error(`child failed: ${(e as { stderr?: string }).stderr ?? e}`);
  }
  return out;
}


describe('the kernel self-check on this host, with deliberately wrong kernels', () => {
  const cases = listCheckCases();
  let routable: KernelCheckVerdict;
  let fatal: KernelCheckVerdict;
  beforeAll(async () => {
    routable = (await checkWith(ROUTABLE_FAULTS)).verdict;
    fatal = (await checkWith(FATAL_FAULT)).verdict;
  }, 300_000);
  afterAll(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  it('covers the shapes the issue names: full-width ResNet-50 1x1 convs and the input channels seen wrong', () => {
    const ids = cases.map((c) => c.id);
    for (const s of ['1x1 7x7x512->2048 forward', '1x1 14x14x256->1024 forward', 'depthwise 5x5', '7x7 224x224x3->64 s2', 'batch norm']) {
      expect(ids.some((id) => id.startsWith(s)), s).toBe(true);
    }
    for (const cin of [40, 72, 80, 112, 176, 320, 512]) expect(ids.some((id) => id.includes(`x${cin}->`) && id.endsWith('input-grad')), `cin ${cin}`).toBe(true);
  });

  it('the trusted side agrees with float64 loops', () => {
    expect(routable.reference.checked).toBeGreaterThan(100);
    expect(routable.reference.failures).toEqual([]);
    expect(routable.reference.crashes).toEqual([]);
  });

  it('catches a 1x1 input gradient that is 1 % off on some channel counts', () => {
    // every faulted case that ran failed (a host whose own kernel crashes in this class, like the
    // AVX-512 EPYC's at 14x14x256->1024, cuts the class short there)
    const ran = routable.results.filter((r) => r.cls === 'conv1x1.inputGrad' && r.route === 'native' && !r.crashed && r.key.includes('x512->'));
    expect(ran.length).toBeGreaterThanOrEqual(2);
    for (const r of ran) expect(r.error, r.key).toBeGreaterThan(1e-4);
    const s = routable.classes['conv1x1.inputGrad']!.native!;
    expect(s.failed).toBeGreaterThanOrEqual(ran.length);
    expect(s.worstError).toBeGreaterThan(5e-3);
    // (a crash, where the host has one, is the failure the summary names first)
    expect(s.firstFailure).toMatch(s.crashed > 0 ? /process died/ : /x512->.*relative L1 error/);
  });

  it('survives a kernel that kills its process, names the case, and checks everything else', () => {
    const s = routable.classes['conv1x1.forward']!.native!;
    expect(s.crashed).toBe(1);
    expect(s.firstFailure).toBe('1x1 56x56x64->64 forward: process died (SIGFPE)');
    const depthwise = cases.filter((c) => c.cls === 'depthwise.forward').length;
    const d = routable.classes['depthwise.forward']!.native!;
    expect(d.passed + d.failed + d.crashed).toBe(depthwise);
    const matmul = routable.classes['conv1x1.forward']!.matmul!;
    expect(matmul.passed + matmul.failed).toBe(cases.filter((c) => c.cls === 'conv1x1.forward').length);
  });

  it('routes the failing 1x1 classes to verified alternatives (or turns oneDNN off)', () => {
    const plan = routable.plan;
    if (plan.onednn) {
      expect(plan.routes['conv1x1.forward']).toBe('matmul');
      expect(['explicit', 'matmul']).toContain(plan.routes['conv1x1.inputGrad']);
      expect(plan.reason).toContain('1x1 conv forward on MatMul (1x1 56x56x64->64 forward: process died (SIGFPE))');
    }
    // Wherever both alternatives verify on this host, the plan must use them and keep oneDNN.
    const alternativesOk = ['matmul', 'explicit'].every((r) => {
      const byRoute = routable.classes[r === 'matmul' ? 'conv1x1.forward' : 'conv1x1.inputGrad']![r]!;
      return byRoute.failed === 0 && byRoute.crashed === 0;
    });
    const othersOk = Object.entries(routable.classes).every(([cls, byRoute]) => cls.startsWith('conv1x1.') || cls === 'batchNorm.inference' || (byRoute.native!.failed === 0 && byRoute.native!.crashed === 0));
    if (alternativesOk && othersOk) {
      expect(plan.onednn).toBe(true);
      expect(plan.routes).toMatchObject({ 'conv1x1.forward': 'matmul', 'conv1x1.inputGrad': 'explicit' });
    }
  });

  it('routes a wrong inference batch norm kernel to the verified scale + shift', () => {
    const bn = routable.classes['batchNorm.inference']!;
    expect(bn.native!.failed).toBe(1);
    expect(bn.native!.firstFailure).toMatch(/^batch norm 14x14x1024 inference: relative L1 error/);
    expect(bn.affine!.failed + bn.affine!.crashed).toBe(0);
    expect(bn.affine!.passed).toBe(cases.filter((c) => c.cls === 'batchNorm.inference').length);
    if (routable.plan.onednn) {
      expect(routable.plan.routes['batchNorm.inference']).toBe('affine');
      expect(routable.plan.batchNormInference).toBe('affine');
      expect(routable.plan.reason).toContain('batch norm inference on a per-channel scale and shift (batch norm 14x14x1024 inference');
    }
  });

  it('turns oneDNN off when a class without an alternative (depthwise) gives NaN', () => {
    expect(fatal.classes['depthwise.forward']!.native!.firstFailure).toBe('depthwise 3x3 112x112x32 forward: relative L1 error non-finite');
    expect(fatal.plan).toMatchObject({ onednn: false, routes: {} });
    expect(fatal.plan.reason).toMatch(/^oneDNN off: self-check failed for oneDNN's depthwise forward/);
  });

  it('times oneDNN against Eigen for every spatial filter gradient it verified', () => {
    const spatial = cases.filter((c) => c.cls === 'conv.filterGrad');
    expect(routable.filterGradientTimings.map((t) => `${t.timing}`)).toEqual(spatial.map((c) => c.id));
    for (const t of routable.filterGradientTimings) expect(t.native > 0 && t.explicit > 0, t.timing).toBe(true);
  });

  it("this host's own verdict times oneDNN on and off over a training step's kernels, and the backend follows it", async () => {
    const { verdict } = await loadOrRunKernelCheck({ log: () => {} });
    // inference batch norm: TF's kernel against a scale + shift, on both sides
    for (const side of ['on', 'off'] as const) {
      const t = verdict.batchNormInferenceTimings![side];
      expect(t.length).toBe(5);
      for (const r of t) expect(r.native > 0 && r.affine > 0, r.bnTiming).toBe(true);
    }
    // every speed case is timed with oneDNN on, except those of a class whose kernel crashed here
    // (the AVX-512 EPYC host's 1x1 forward and filter gradient): those are routed around anyway
    const crashed = new Set(Object.entries(verdict.classes).filter(([, r]) => (r.native?.crashed ?? 0) > 0).map(([c]) => c));
    expect(verdict.speed!.on.map((r) => r.speed)).toEqual(verdict.speed!.off.filter((r) => !crashed.has(r.cls!)).map((r) => r.speed));
    expect(verdict.speed!.on.length).toBeGreaterThan(30);
    const t = verdict.filterGradientTimings;
    const eigen = { small: eigenFilterGradientSpeedup(t, 'small'), large: eigenFilterGradientSpeedup(t, 'large') };
    expect(eigen.small).toBeGreaterThan(0);
    expect(eigen.large).toBeGreaterThan(0);
    const plan = decideKernelPlan(verdict.classes, eigen, oneDnnSpeedup(verdict.speed!.off, verdict.speed!.on));
    const info = await initBackend();
    // (unless the user's TF_ENABLE_ONEDNN_OPTS overrides the verdict)
    if (!info.kernelPlan!.reason.includes('TF_ENABLE_ONEDNN_OPTS')) {
      expect(info.kernelPlan).toMatchObject({ onednn: plan.onednn, routes: plan.routes, eigenFilterGradient: plan.eigenFilterGradient, eigenFilterGradientMaps: plan.eigenFilterGradientMaps });
    }
  });

  it('after a crash in a correctness case the speed set is still timed on both sides, without the crashed class', async () => {
    const { verdict } = await checkWith('conv1x1.forward/native:crash@1x1 14x14x256->1024 forward', { speed: true });
    expect(verdict.classes['conv1x1.forward']!.native!.crashed).toBe(1);
    expect(verdict.plan.routes['conv1x1.forward']).toBe('matmul');
    // (on the AVX-512 EPYC host oneDNN's own 1x1 filter gradient crashes as well)
    const crashed = new Set(Object.entries(verdict.classes).filter(([, r]) => (r.native?.crashed ?? 0) > 0).map(([c]) => c));
    expect(crashed.has('conv1x1.forward')).toBe(true);
    const on = verdict.speed!.on.map((r) => r.speed);
    expect(on).toEqual(verdict.speed!.off.filter((r) => !crashed.has(r.cls!)).map((r) => r.speed));
    expect(verdict.speed!.on.some((r) => r.cls === 'conv1x1.forward')).toBe(false);
    expect(verdict.speed!.off.some((r) => r.cls === 'conv1x1.forward')).toBe(true);
    expect(on.length).toBeGreaterThan(30);
    expect(verdict.plan.reason).toMatch(/oneDNN on \(\d\.\d\dx TF's own kernels' speed here\)/);
    expect(verdict.batchNormInferenceTimings!.on.length).toBe(5);
  });

  it('a kernel that crashes while being timed (after every correctness case passed) fails its class, not the last case checked', async () => {
    // (a class every host seen gets right: spatial conv input gradients, timed in the speed set)
    const { verdict } = await checkWith('conv.inputGrad/native:crash@k3 7x7x512', { speed: true });
    const s = verdict.classes['conv.inputGrad']!.native!;
    expect(s.crashed).toBe(1);
    expect(s.firstFailure).toBe('conv k3 7x7x512->512 s1 inputGrad: process died (SIGFPE)');
    expect(s.passed).toBe(cases.filter((c) => c.cls === 'conv.inputGrad').length);
    expect(verdict.classes['matmul']!.native).toMatchObject({ crashed: 0 });
    if (verdict.plan.onednn) expect(verdict.plan.routes['conv.inputGrad']).toBe('explicit');
  }, 300_000);

  it('caches the verdict per host and fault set', async () => {
    const again = await checkWith(ROUTABLE_FAULTS);
    expect(again.cached).toBe(true);
    expect(again.verdict.createdAt).toBe(routable.createdAt);
    expect(fs.readdirSync(path.join(cacheDir, 'kernel-check')).filter((f) => f.endsWith('.json'))).toHaveLength(4);
  });

  it('initBackend follows the verdict, says why, and warns when an env var overrides it', () => {
    const off = backendInChild({ REFCONV_KERNEL_CHECK_FAULT: FATAL_FAULT });
    expect(off.stdout).toContain("oneDNN off: self-check failed for oneDNN's depthwise forward");
    expect(off.stdout).toMatch(/CPU: .+\((AVX|x86|arm)/);
    expect(JSON.parse(off.stdout.trim().split('\n').pop()!)).toMatchObject({ onednnEnv: '0', routes: {} });

    const childEnv: NodeJS.ProcessEnv = { ...process.env, REFCONV_CACHE_DIR: cacheDir, REFCONV_KERNEL_CHECK_SPEED: '0', REFCONV_KERNEL_CHECK_FAULT: FATAL_FAULT, TF_ENABLE_ONEDNN_OPTS: '1' };
    const forced = spawnSync(process.execPath, ['--import', 'tsx', path.join(cacheDir, 'init.mts')], { env: childEnv, encoding: 'utf8', cwd: path.join(here, '..') });
    expect(forced.status).toBe(0);
    expect(forced.stderr).toContain('TF_ENABLE_ONEDNN_OPTS=1 overrides the kernel self-check');
    expect(forced.stdout).toContain('oneDNN on (TF_ENABLE_ONEDNN_OPTS=1, against the self-check');

    if (routable.plan.onednn) {
      const routed = backendInChild({ REFCONV_KERNEL_CHECK_FAULT: ROUTABLE_FAULTS });
      expect(routed.stdout).toContain('1x1 conv forward on MatMul');
      expect(JSON.parse(routed.stdout.trim().split('\n').pop()!)).toMatchObject({ onednnEnv: '1', routes: routable.plan.routes });
    }

    const skipped = backendInChild({ REFCONV_KERNEL_CHECK: '0' });
    expect(skipped.stdout).toContain('oneDNN off: kernel self-check skipped (REFCONV_KERNEL_CHECK=0)');
  });
});
