/// <reference lib="dom" />
/**
 * Runs the built browser page in headless Chromium on your own images and compares it with
 * `predictOnnx` (onnxruntime-node) on the same files: top-1 and max |p_page - p_node| per image.
 *
 * ```bash
 * npx nx run deploy:web -- --model /tmp/deploy-demo/fm.onnx
 * cd packages/deploy && node --conditions=@refconv/source --import tsx tools/page-check.ts \
 *   --model /tmp/deploy-demo/fm.onnx /tmp/deploy-demo/fm0.png /tmp/deploy-demo/fm1.png
 * ```
 * `--dir` is the built page (default `web-dist`, which must hold the same model as `--model`);
 * `CHROMIUM` overrides `/usr/bin/chromium`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { predictOnnx } from '../src/index.js';
import { DEFAULT_WEB_OUT, serveDir } from './web.js';

interface PageResult {
  image: string;
  top: { name: string; probability: number }[];
  probabilities: number[];
  medianMs: number;
}

async function main(argv: string[]): Promise<void> {
  const take = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const [v] = argv.splice(i, 2).slice(1);
    return v;
  };
  const model = take('--model');
  const dir = path.resolve(take('--dir') ?? DEFAULT_WEB_OUT);
  const images = argv.map((f) => path.resolve(f));
  if (!model || images.length === 0) throw new Error('usage: page-check.ts --model F.onnx [--dir web-dist] IMAGE [IMAGE ...]');
  const served = path.join(dir, 'model.onnx');
  if (!fs.existsSync(served) || !fs.readFileSync(served).equals(fs.readFileSync(model))) throw new Error(`${served} is not ${model}; build the page with --model ${model}`);
  const server = await serveDir(dir);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: 60_000 });
    for (const img of images) {
      await page.setInputFiles('#file', img);
      await page.waitForFunction((n) => document.body.dataset.state === 'done' && (window as unknown as { refconvResult?: { image: string } }).refconvResult?.image === n, path.basename(img));
      const r = (await page.evaluate(() => (window as unknown as { refconvResult: unknown }).refconvResult)) as PageResult;
      const [node] = await predictOnnx(model, [img], { topk: r.probabilities.length });
      const diff = Math.max(...node.top.map((c) => Math.abs(r.probabilities[c.index] - c.probability)));
      const pct = (p: number): string => `${(100 * p).toFixed(2)}%`;
      console.log(`${img}: page ${r.top[0].name} ${pct(r.top[0].probability)}, node ${node.top[0].name} ${pct(node.top[0].probability)}; max |p_page - p_node| ${diff.toExponential(2)}; page latency median ${r.medianMs.toFixed(2)} ms`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
