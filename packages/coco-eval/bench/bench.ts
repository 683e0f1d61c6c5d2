/**
 * Benchmark: a COCO val2017-sized problem (5,000 images, ~38k ground-truth boxes, ~188k
 * detections by default), evaluated by this package and, when the reference venv has pycocotools,
 * by pycocotools on the same files. Prints both timings, the speed ratio and the largest stat
 * difference.
 *
 * With `--rounds R` (default 3) it also times whole processes, as a user sees them: the compiled
 * CLI (`bin/coco-eval.js --json`, i.e. Node start-up, JSON parsing, evaluation) against
 * `python tools/bench_pycocotools.py` (interpreter start-up, imports, loading, evaluation), R
 * rounds alternating which goes first, and reports the ratio of every round; it exits with code 1
 * when one round is below `--target` (default 5 for bbox, 3 for segm). The in-process numbers
 * of pycocotools come from the same runs.
 *
 *   nx run coco-eval:bench [-- --dets 500000 --images 5000 --skip-python --iou-type segm --rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COCO, COCOeval } from '../src/index.js';

/** The 80 COCO category ids (non-contiguous, 1..90). */
const COCO_CAT_IDS = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38,
  39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75,
  76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** Writes a synthetic GT and results file with COCO-like statistics; returns their paths and sizes. */
function synthesize(dir: string, images: number, gtPerImage: number, dets: number, seed: number) {
  const rand = rng(seed);
  const imgs: object[] = [];
  const anns: object[] = [];
  const gtBoxes: { img: number; cat: number; b: number[] }[] = [];
  const imageCats = new Map<number, number[]>();
  let aid = 1;
  for (let i = 0; i < images; i++) {
    const id = 100000 + i * 3;
    const W = 640;
    const H = 360 + Math.floor(rand() * 120);
    imgs.push({ id, width: W, height: H, file_name: `${id}.jpg` });
    const n = Math.floor(rand() * 2 * gtPerImage + 0.5);
    for (let j = 0; j < n; j++) {
      // COCO val2017: ~41% small, ~34% medium, ~25% large
      const u = rand();
      const side = u < 0.41 ? 4 + rand() * 27 : u < 0.75 ? 33 + rand() * 62 : 97 + rand() * 250;
      const w = Math.min(W - 1, side * (0.6 + rand() * 0.8));
      const h = Math.min(H - 1, (side * side) / w);
      const x = rand() * (W - w);
      const y = rand() * (H - h);
      const cat = COCO_CAT_IDS[Math.floor(rand() * 80)]!;
      const b = [r2(x), r2(y), r2(w), r2(h)];
      const crowd = rand() < 0.01 ? 1 : 0;
      anns.push({ id: aid++, image_id: id, category_id: cat, bbox: b, area: r2(w * h * 0.8), iscrowd: crowd, segmentation: [[b[0], b[1], b[0]! + b[2]!, b[1], b[0]! + b[2]!, b[1]! + b[3]!]] });
      gtBoxes.push({ img: id, cat, b });
      imageCats.set(id, [...(imageCats.get(id) ?? []), cat]);
    }
  }
  const categories = COCO_CAT_IDS.map((id) => ({ id, name: `class${id}`, supercategory: 'thing' }));
  const gtPath = join(dir, 'gt.json');
  writeFileSync(gtPath, JSON.stringify({ info: { description: 'synthetic val2017-sized' }, images: imgs, annotations: anns, categories }));
  // detections: jittered copies of ground truth (some duplicated, some relabelled) + false positives
  const res: string[] = [];
  const perGt = Math.min(2.5, (dets * 0.6) / Math.max(1, gtBoxes.length));
  for (const g of gtBoxes) {
    const copies = Math.floor(perGt + rand());
    for (let c = 0; c < copies; c++) {
      const [x, y, w, h] = g.b as [number, number, number, number];
      const j = () => (rand() - 0.5) * 0.3;
      const cat = rand() < 0.9 ? g.cat : COCO_CAT_IDS[Math.floor(rand() * 80)]!;
      res.push(JSON.stringify({ image_id: g.img, category_id: cat, bbox: [r2(x + j() * w), r2(y + j() * h), r2(w * (1 + j())), r2(h * (1 + j()))], score: Math.round(rand() * 1000) / 1000 }));
    }
  }
  // false positives: like a real detector's, mostly in the categories present in the image
  while (res.length < dets) {
    const img = 100000 + Math.floor(rand() * images) * 3;
    const present = imageCats.get(img) ?? [];
    const cat = present.length > 0 && rand() < 0.75 ? present[Math.floor(rand() * present.length)]! : COCO_CAT_IDS[Math.floor(rand() * 80)]!;
    const w = 2 + rand() * 200;
    const h = 2 + rand() * 200;
    res.push(JSON.stringify({ image_id: img, category_id: cat, bbox: [r2(rand() * 440), r2(rand() * 200), r2(w), r2(h)], score: Math.round(rand() * 600) / 1000 }));
  }
  const dtPath = join(dir, 'dt.json');
  writeFileSync(dtPath, `[${res.join(',\n')}]`);
  return { gtPath, dtPath, nImages: images, nGt: anns.length, nDt: res.length };
}

function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

async function main(): Promise<void> {
  const a = await yargs(hideBin(process.argv))
    .option('images', { type: 'number', default: 5000 })
    .option('gt-per-image', { type: 'number', default: 7.6, describe: 'mean ground-truth boxes per image' })
    .option('dets', { type: 'number', default: 188000 })
    .option('seed', { type: 'number', default: 1 })
    .option('iou-type', { choices: ['bbox', 'segm'] as const, default: 'bbox' as const, describe: 'segm compares the box polygons of the results with polygon ground truth' })
    .option('repeats', { type: 'number', default: 3, describe: 'our timed runs (median reported)' })
    .option('python', { type: 'string', default: resolve(import.meta.dirname, '../../../.venv-ref/bin/python') })
    .option('skip-python', { type: 'boolean', default: false })
    .option('rounds', { type: 'number', default: 3, describe: 'whole-process rounds (compiled CLI vs pycocotools script); 0: none' })
    .option('target', { type: 'number', describe: 'whole-process speed ratio every round must reach (default 5 for bbox, 3 for segm)' })
    .option('dir', { type: 'string', default: join(tmpdir(), 'coco-eval-bench') })
    .strict()
    .parseAsync();
  mkdirSync(a.dir, { recursive: true });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const data = synthesize(a.dir, a.images, a['gt-per-image'], a.dets, a.seed);
  console.log(`data: ${data.nImages} images, ${data.nGt} gt boxes, ${data.nDt} detections, iouType ${a['iou-type']} (${a.dir})`);

  let t = performance.now();
  const gt = new COCO(data.gtPath);
  const dt = gt.loadRes(data.dtPath);
  const loadS = (performance.now() - t) / 1000;
  const times: number[] = [];
  const cpus: number[] = [];
  let stats: number[] = [];
  for (let r = 0; r < a.repeats; r++) {
    t = performance.now();
    const c0 = process.cpuUsage();
    const E = new COCOeval(gt, dt, a['iou-type']);
    E.evaluate();
    E.accumulate();
    stats = E.summarize({ log: r === 0 ? undefined : null });
    times.push((performance.now() - t) / 1000);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1e6);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  clearInterval(sampler);
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]!;
  const ours = median(times);
  const oursCpu = median(cpus);
  console.log(
    `ours: load ${loadS.toFixed(2)} s; evaluate+accumulate+summarize ${ours.toFixed(2)} s wall, ${oursCpu.toFixed(2)} s CPU ` +
      `(median of ${times.length}: ${times.map((v) => v.toFixed(2)).join(', ')}); peak RSS ${mb(peakRss)} MB`,
  );

  if (a['skip-python'] || !existsSync(a.python)) {
    console.log(a['skip-python'] ? 'pycocotools: skipped' : `pycocotools: no python at ${a.python}, skipped`);
    return;
  }
  const script = resolve(import.meta.dirname, '../tools/bench_pycocotools.py');
  const runPython = () => {
    const t0 = performance.now();
    const c0 = childCpuSeconds();
    const py = spawnSync(a.python, [script, data.gtPath, data.dtPath, a['iou-type']], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const wall = (performance.now() - t0) / 1000;
    const cpu = childCpuSeconds() - c0;
    if (py.status !== 0) throw new Error(`pycocotools failed (${a.python} ${script}): ${py.stderr.trim().split('\n').pop()}`);
    return { wall, cpu, ref: JSON.parse(py.stdout.trim().split('\n').pop()!) as PyResult };
  };
  const bin = resolve(import.meta.dirname, '../bin/coco-eval.js');
  const runOurs = () => {
    const t0 = performance.now();
    const c0 = childCpuSeconds();
    const r = spawnSync(process.execPath, [bin, '--gt', data.gtPath, '--dt', data.dtPath, '--iou-type', a['iou-type'], '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const wall = (performance.now() - t0) / 1000;
    const cpu = childCpuSeconds() - c0;
    if (r.status !== 0) throw new Error(`${bin} failed (exit ${r.status}): ${r.stderr.trim()}`);
    return { wall, cpu, stats: JSON.parse(r.stdout).stats as number[] };
  };
  const diffTo = (ref: number[], v: number[]) => Math.max(...v.map((x, i) => Math.abs(x - ref[i]!)));

  const rounds = Math.max(1, a.rounds);
  const py: { wall: number; cpu: number; ref: PyResult }[] = [];
  const cli: { wall: number; cpu: number; stats: number[] }[] = [];
  for (let r = 0; r < rounds; r++) {
    // alternate which runs first, so neither always meets a warmer page cache or a quieter machine
    if (r % 2 === 0) {
      if (a.rounds > 0) cli.push(runOurs());
      py.push(runPython());
    } else {
      py.push(runPython());
      if (a.rounds > 0) cli.push(runOurs());
    }
  }
  const ref = py[0]!.ref;
  console.log(
    `pycocotools: load ${ref.load_s.toFixed(2)} s; evaluate ${ref.evaluate_s.toFixed(2)} + accumulate ${ref.accumulate_s.toFixed(2)} + summarize ${ref.summarize_s.toFixed(2)} = ${ref.eval_total_s.toFixed(2)} s wall, ${ref.eval_cpu_s.toFixed(2)} s CPU; peak RSS ${ref.peak_rss_mb.toFixed(0)} MB (first run)`,
  );
  console.log(
    `speed ratio (pycocotools / ours, evaluate+accumulate+summarize in process): ${(ref.eval_total_s / ours).toFixed(1)}x wall, ` +
      `${(ref.eval_cpu_s / oursCpu).toFixed(1)}x CPU time`,
  );
  console.log(`largest |stat difference| (in process): ${diffTo(ref.stats, stats).toExponential(2)}`);
  if (a.rounds <= 0) return;
  const target = a.target ?? (a['iou-type'] === 'segm' ? 3 : 5);
  const ratios = cli.map((c, r) => py[r]!.wall / c.wall);
  console.log(`whole process, ${rounds} rounds: ours = node bin/coco-eval.js --json (compiled); pycocotools = python tools/bench_pycocotools.py`);
  cli.forEach((c, r) =>
    console.log(
      `  round ${r + 1}: ours ${c.wall.toFixed(2)} s, pycocotools ${py[r]!.wall.toFixed(2)} s -> ${ratios[r]!.toFixed(1)}x wall` +
        (Number.isNaN(c.cpu) ? '' : `; CPU ${c.cpu.toFixed(2)} s vs ${py[r]!.cpu.toFixed(2)} s -> ${(py[r]!.cpu / c.cpu).toFixed(1)}x`) +
        ` (stats diff ${diffTo(py[r]!.ref.stats, c.stats).toExponential(2)})`,
    ),
  );
  const worst = Math.min(...ratios);
  const cpuRatios = cli.map((c, r) => py[r]!.cpu / c.cpu);
  console.log(
    `whole-process speed ratio (wall): min ${worst.toFixed(1)}x, median ${median(ratios).toFixed(1)}x over ${rounds} rounds (target >= ${target}x every round): ${worst >= target ? 'met' : 'MISSED'}` +
      (cpuRatios.some(Number.isNaN) ? '' : `; CPU time: min ${Math.min(...cpuRatios).toFixed(1)}x, median ${median(cpuRatios).toFixed(1)}x`),
  );
  if (worst < target) process.exitCode = 1;
}

/**
 * CPU seconds (user + system) of this process's terminated, waited-for children: fields 16 and 17
 * of /proc/self/stat (Linux), in clock ticks of 1/100 s. NaN where there is no /proc.
 */
function childCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** What tools/bench_pycocotools.py prints. */
interface PyResult {
  load_s: number;
  evaluate_s: number;
  accumulate_s: number;
  summarize_s: number;
  eval_total_s: number;
  eval_cpu_s: number;
  stats: number[];
  peak_rss_mb: number;
}

await main();
