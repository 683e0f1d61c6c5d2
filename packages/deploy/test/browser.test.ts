/// <reference lib="dom" />
/**
 * End to end in a real browser: the page of `web/` is built with esbuild (tools/web.ts) next to a
 * freshly exported fused model, served over HTTP, and driven in headless Chromium (Debian's
 * `chromium`, through playwright-core). An image is chosen in the page's file input; the page's
 * top-5 and softmax probabilities (onnxruntime-web, WebAssembly) must equal `predictOnnx`'s
 * (onnxruntime-node, sharp decoding) for the same file: same classes in the same order,
 * probabilities within 1e-4. The page is screenshotted (`UPDATE_SCREENSHOT=1` writes
 * `docs/browser-demo.png`, otherwise the temp folder).
 *
 * Chromium: used from `/usr/bin/chromium` (or `CHROMIUM`); when missing and running as root with
 * apt-get, the test installs Debian's `chromium` package (`apt-get install -y chromium`) first; else
 * it is skipped with a message saying so.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createModel } from '@refconv/backbones';
import { fuse } from '@refconv/core';
import { exportOnnx, predictOnnx, RESIZE_KEY } from '../src/index.js';
import { buildWeb, serveDir } from '../tools/web.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '../../..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SOURCE_IMAGE = path.join(REPO, 'datasets/bccd/BCCD/JPEGImages/BloodImage_00000.jpg');
const CIFAR10 = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why the browser test cannot run here, or undefined (installing Chromium with apt when root and missing). */
function chromiumUnavailable(): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined;
  if (process.env.CHROMIUM) return `browser test skipped: CHROMIUM=${CHROMIUM} does not exist`;
  if (process.platform !== 'linux') return `browser test skipped: ${CHROMIUM} is missing (install Chromium and set CHROMIUM=<path>)`;
  if (process.getuid?.() !== 0) return `browser test skipped: ${CHROMIUM} is missing and installing it needs root (apt-get install -y chromium)`;
  if (!has('apt-get')) return `browser test skipped: ${CHROMIUM} is missing and there is no apt-get`;
  process.stderr.write('browser test: installing Debian chromium (apt-get install -y chromium) ...\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', 'chromium'], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { encoding: 'utf8', env }); // a fresh container has no package lists yet
    r = spawnSync('apt-get', ['install', '-y', 'chromium'], { encoding: 'utf8', env });
  }
  if (r.status !== 0 || !fs.existsSync(CHROMIUM)) return `browser test skipped: apt-get install -y chromium failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  return undefined;
}

const skip = chromiumUnavailable();
if (skip) console.warn(skip);

/** A fused, BN-folded MobileNetV2 (width 0.35, 32 px, CIFAR-10 names) with seeded random BN statistics, exported. */
function exportDemoModel(file: string): void {
  const model = createModel('mobilenet_v2', { width: 0.35, inputSize: 32, numClasses: 10 });
  // every weight from one seeded generator (the same file on every run): kernels uniform with
  // variance 2 / fan_in (He), the classifier narrower so the top-5 is spread (not one class at 100 %), random BN statistics
  let s = 12345;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const fill = (shape: number[], f: () => number): tf.Tensor => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f), shape);
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const names = layer.weights.map((v) => v.originalName.split('/').pop());
    layer.setWeights(
      layer.getWeights().map((w, i) => {
        const n = names[i];
        if (cls === 'BatchNormalization') return fill(w.shape, () => (n === 'beta' ? rnd() - 0.5 : n === 'moving_mean' ? (rnd() - 0.5) * 0.4 : 0.5 + rnd()));
        if (n === 'bias') return fill(w.shape, () => 0.1 * (rnd() - 0.5));
        const fanIn = w.shape.length === 4 ? w.shape[0] * w.shape[1] * (cls === 'DepthwiseConv2D' ? 1 : w.shape[2]) : w.shape[0];
        const limit = Math.sqrt(6 / fanIn) * (cls === 'Dense' ? 0.2 : 1);
        return fill(w.shape, () => (2 * rnd() - 1) * limit);
      }),
    );
  }
  const fused = fuse(model, { foldBatchNorm: true });
  const bytes = exportOnnx(fused, {
    metadata: { arch: 'mobilenet_v2', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], classNames: CIFAR10, extra: { [RESIZE_KEY]: '37' } },
  });
  fs.writeFileSync(file, bytes);
  model.dispose();
  fused.dispose();
}

interface PageResult {
  top: { index: number; name: string; probability: number }[];
  probabilities: number[];
  medianMs: number;
  firstMs: number;
  width: number;
  height: number;
}

describe.skipIf(skip !== undefined)('browser page (onnxruntime-web in headless Chromium) vs onnxruntime-node', () => {
  let dir = '';
  let server: { url: string; close: () => Promise<void> } | undefined;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-web-'));
    exportDemoModel(path.join(dir, 'demo.onnx'));
    await buildWeb(path.join(dir, 'site'), { model: path.join(dir, 'demo.onnx') });
    server = await serveDir(path.join(dir, 'site'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 820, height: 400 }, deviceScaleFactor: 1 });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    if (state !== 'ready') throw new Error(`the page did not load the model: ${await page.evaluate(() => (window as unknown as { refconvError?: string }).refconvError)}; console: ${logs.join(' | ')}`);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function classifyInPage(image: string): Promise<PageResult> {
    await page.setInputFiles('#file', image);
    await page.waitForFunction((name) => document.body.dataset.state === 'done' && (window as unknown as { refconvResult?: { image: string } }).refconvResult?.image === name, path.basename(image), { timeout: 60_000 });
    return (await page.evaluate(() => (window as unknown as { refconvResult: unknown }).refconvResult)) as PageResult;
  }

  it('an image at the resize size (PNG, no resampling): same top-5 and probabilities as predictOnnx (1e-4)', async () => {
    // the BCCD image scaled so its shorter side is the model's resize (37): both sides only crop
    const png = path.join(dir, 'blood-49x37.png');
    await sharp(SOURCE_IMAGE).resize(49, 37, { fit: 'fill' }).png().toFile(png);
    const pageRes = await classifyInPage(png);
    const [node] = await predictOnnx(path.join(dir, 'demo.onnx'), [png], { topk: 10 });
    const diffs = node.top.map((c) => Math.abs(pageRes.probabilities[c.index] - c.probability));
    const maxDiff = Math.max(...diffs);
    console.log(
      `browser vs onnxruntime-node (${path.basename(png)}): top-5 page [${pageRes.top.map((c) => `${c.name} ${(100 * c.probability).toFixed(2)}%`).join(', ')}], ` +
        `node [${node.top.slice(0, 5).map((c) => `${c.name} ${(100 * c.probability).toFixed(2)}%`).join(', ')}]; max |p_page - p_node| over 10 classes ${maxDiff.toExponential(2)}; ` +
        `page latency median ${pageRes.medianMs.toFixed(2)} ms (first ${pageRes.firstMs.toFixed(1)} ms)`,
    );
    expect(pageRes.width).toBe(49);
    expect(pageRes.top.map((c) => c.index)).toEqual(node.top.slice(0, 5).map((c) => c.index));
    expect(pageRes.top.map((c) => c.name)).toEqual(node.top.slice(0, 5).map((c) => c.name));
    expect(pageRes.probabilities).toHaveLength(10);
    expect(maxDiff).toBeLessThan(1e-4);
    const shot = process.env.UPDATE_SCREENSHOT ? path.join(here, '..', 'docs', 'browser-demo.png') : path.join(dir, 'browser-demo.png');
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
  }, 120_000);

  it('a larger JPEG (resized in the page, bilinear, vs sharp): reports how close the two preprocessings are', async () => {
    const pageRes = await classifyInPage(SOURCE_IMAGE);
    const [node] = await predictOnnx(path.join(dir, 'demo.onnx'), [SOURCE_IMAGE], { topk: 10 });
    const maxDiff = Math.max(...node.top.map((c) => Math.abs(pageRes.probabilities[c.index] - c.probability)));
    console.log(`browser vs onnxruntime-node (${path.basename(SOURCE_IMAGE)}, 640x480 -> 49x37 resized separately): top-1 page ${pageRes.top[0].name}, node ${node.top[0].name}; max |p_page - p_node| ${maxDiff.toExponential(2)}`);
    expect(pageRes.width).toBe(640);
    const sum = pageRes.probabilities.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
  }, 120_000);
});
