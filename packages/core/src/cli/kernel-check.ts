/**
 * `npx nx run core:kernel-check [-- --force] [--json] [--fault CLS/ROUTE:scale|nan|crash]`
 *
 * Runs (or reads from the cache) the kernel self-check for this host and prints, per kernel class
 * and route, how many cases passed, failed or crashed and the worst relative error, then the
 * plan the backend follows. `--fault` injects a deliberately wrong kernel into the oneDNN side
 * (a separate cache entry) to see the check catch it.
 */
import { parseArgs } from 'node:util';
import { cpuIsa, describeClass, eigenFilterGradientSpeedup, hostFacts, loadOrRunKernelCheck, oneDnnSpeedup, planOf, verdictPath } from '../kernel-check.js';

const { values } = parseArgs({
  options: {
    force: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    fault: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (values.help) {
  console.log('usage: kernel-check [--force] [--json] [--fault CLS/ROUTE:scale|nan|crash]');
  process.exit(0);
}
if (values.fault) process.env.REFCONV_KERNEL_CHECK_FAULT = values.fault;

const facts = hostFacts();
const { verdict, cached } = await loadOrRunKernelCheck({ force: values.force, log: (l) => { if (!values.json) console.log(l); } });
if (values.json) {
  process.stdout.write(`${JSON.stringify(verdict, null, 1)}\n`);
} else {
  console.log(`CPU: ${facts.cpuModel} (${cpuIsa()}), ${facts.threads} threads; TensorFlow ${verdict.tensorflowVersion ?? '?'}; ${facts.nativeLibrary}`);
  console.log(`verdict: ${cached ? 'cached' : 'measured now'} (${verdict.createdAt}, ${(verdict.durationMs / 1000).toFixed(1)} s) in ${verdictPath(facts)}`);
  console.log(`trusted path (oneDNN off) vs float64 loops: ${verdict.reference.checked} cases, worst relative L1 error ${verdict.reference.worstFloat64Error.toExponential(2)}` +
    `${verdict.reference.failures.length ? `, FAILED: ${verdict.reference.failures.join(', ')}` : ''}${verdict.reference.crashes.length ? `, CRASHED: ${verdict.reference.crashes.join(', ')}` : ''}`);
  console.log('');
  console.log('| kernel class | route | passed | failed | crashed | worst rel. L1 error | first failure |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [cls, byRoute] of Object.entries(verdict.classes)) {
    for (const [route, s] of Object.entries(byRoute)) {
      const worst = Number.isFinite(s.worstError) ? s.worstError.toExponential(2) : 'non-finite';
      console.log(`| ${describeClass(cls)} | ${route} | ${s.passed} | ${s.failed} | ${s.crashed} | ${worst} | ${s.firstFailure ?? ''} |`);
    }
  }
  console.log('');
  const plan = planOf(verdict);
  console.log(`plan: ${plan.reason}`);
  const routes = Object.entries(plan.routes);
  if (routes.length) console.log(`routes: ${routes.map(([c, r]) => `${describeClass(c)} -> ${r}`).join(', ')}`);
  const timings = verdict.filterGradientTimings ?? [];
  if (timings.length) {
    console.log('');
    console.log('| filter gradient (median of 3) | oneDNN ms | Eigen ms | Eigen speed-up |');
    console.log('|---|---|---|---|');
    for (const t of timings) console.log(`| ${t.timing.replace(' filter-grad', '')} | ${t.native.toFixed(1)} | ${t.explicit.toFixed(1)} | ${(t.native / t.explicit).toFixed(2)}x |`);
    for (const [bucket, maps] of [['small', 'output maps <= 7x7'], ['large', 'larger output maps']] as const) {
      const speedup = eigenFilterGradientSpeedup(timings, bucket);
      if (speedup !== undefined) console.log(`spatial convs with >= 64 input channels, ${maps}: Eigen ${speedup.toFixed(2)}x oneDNN's speed in total`);
    }
  }
  const maps = plan.eigenFilterGradientMaps;
  const used = maps && maps.small !== maps.large ? `used for ${maps.small ? 'output maps <= 7x7' : 'larger output maps'} only` : plan.eigenFilterGradient ? 'used' : 'not used';
  console.log(`Eigen filter-gradient speed route: ${used}`);
  const timedOn = new Set((verdict.speed?.on ?? []).map((r) => r.speed));
  if (verdict.speed && !verdict.speed.off.some((r) => timedOn.has(r.speed))) {
    console.log('speed set: not timed on both sides (a crash in a timing phase): oneDNN stays on unless the self-check turns it off');
  } else if (verdict.speed) {
    const on = new Map(verdict.speed.on.map((r) => [r.speed, r.ms]));
    console.log('');
    console.log('| speed set (batch 8, median of 3) | oneDNN off ms | oneDNN on ms | speed-up |');
    console.log('|---|---|---|---|');
    for (const r of verdict.speed.off) {
      const m = on.get(r.speed);
      if (m !== undefined) console.log(`| ${r.speed} | ${r.ms.toFixed(1)} | ${m.toFixed(1)} | ${(r.ms / m).toFixed(2)}x |`);
    }
    const total = oneDnnSpeedup(verdict.speed.off, verdict.speed.on);
    if (total !== undefined) console.log(`all: oneDNN ${total.toFixed(2)}x the speed of TF's own kernels`);
  }
}
