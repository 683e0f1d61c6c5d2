/**
 * Builds and serves the browser page (`web/`): esbuild bundles `web/main.ts` (onnxruntime-web's
 * WebAssembly build, onnx-proto, the shared preprocessing of `src/metadata.ts`) into one ES module,
 * and the page, the bundle and onnxruntime-web's `.wasm` are copied into the output folder, with a
 * model copied next to them as `model.onnx` when one is given.
 *
 * ```bash
 * npx nx run deploy:web -- --model /tmp/deploy-demo/fm.onnx [--out DIR]   # default packages/deploy/web-dist
 * npx nx run deploy:serve -- [--dir DIR] [--port 8080]
 * ```
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';
import { resolveUserPath } from '@refconv/engine';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The package root (packages/deploy). */
export const PACKAGE_DIR = path.resolve(here, '..');
/** Default output folder of {@link buildWeb}. */
export const DEFAULT_WEB_OUT = path.join(PACKAGE_DIR, 'web-dist');

/** The onnxruntime-web runtime files the page loads at run time (next to the page). */
const ORT_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'];

/** Builds the page into `outDir`; copies `model` there as `model.onnx` when given. Returns the files written. */
export async function buildWeb(outDir: string, options: { model?: string; minify?: boolean } = {}): Promise<string[]> {
  if (options.model && !fs.existsSync(options.model)) throw new Error(`deploy:web: model ${options.model} does not exist`);
  fs.mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [path.join(PACKAGE_DIR, 'web', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: path.join(outDir, 'main.js'),
    minify: options.minify ?? true,
    sourcemap: true,
    logLevel: 'silent',
    absWorkingDir: PACKAGE_DIR,
  });
  if (result.errors.length > 0) throw new Error(`deploy:web: esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
  fs.copyFileSync(path.join(PACKAGE_DIR, 'web', 'index.html'), path.join(outDir, 'index.html'));
  const require = createRequire(path.join(PACKAGE_DIR, 'package.json'));
  const ortDist = path.dirname(require.resolve('onnxruntime-web')); // .../onnxruntime-web/dist/ort.min.js
  for (const f of ORT_FILES) {
    const src = path.join(ortDist, f);
    if (!fs.existsSync(src)) throw new Error(`deploy:web: ${src} is missing (onnxruntime-web install incomplete?)`);
    fs.copyFileSync(src, path.join(outDir, f));
  }
  if (options.model) fs.copyFileSync(options.model, path.join(outDir, 'model.onnx'));
  return fs.readdirSync(outDir).map((f) => path.join(outDir, f));
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
};

/** A static file server for the built page (GET only, no directory listing, nothing outside `dir`). */
export async function serveDir(dir: string, port = 0, host = '127.0.0.1'): Promise<{ url: string; close: () => Promise<void> }> {
  const root = path.resolve(dir);
  if (!fs.existsSync(path.join(root, 'index.html'))) throw new Error(`deploy:serve: ${root} has no index.html; build it first (npx nx run deploy:web)`);
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.resolve(root, `.${rel === '/' ? '/index.html' : rel}`);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${rel}`);
      return;
    }
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address() as { port: number };
  return { url: `http://${host}:${addr.port}/`, close: () => new Promise((r) => server.close(() => r())) };
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function cli(argv: string[]): Promise<void> {
  const [cmd] = argv;
  if (cmd === 'build') {
    const out = resolveUserPath(arg(argv, 'out') ?? DEFAULT_WEB_OUT);
    const model = arg(argv, 'model');
    await buildWeb(out, { model: model ? resolveUserPath(model) : undefined });
    const size = (f: string): string => `${(fs.statSync(path.join(out, f)).size / 1e6).toFixed(2)} MB`;
    console.log(`built ${out}: index.html, main.js (${size('main.js')}), ${ORT_FILES[0]} (${size(ORT_FILES[0])})${model ? `, model.onnx (${size('model.onnx')})` : ' (no --model: put an exported model.onnx there)'}`);
  } else if (cmd === 'serve') {
    const dir = resolveUserPath(arg(argv, 'dir') ?? DEFAULT_WEB_OUT);
    const { url } = await serveDir(dir, Number(arg(argv, 'port') ?? 8080), arg(argv, 'host') ?? '127.0.0.1');
    console.log(`serving ${dir} at ${url} (Ctrl-C stops)`);
  } else {
    throw new Error('usage: web.ts build [--out DIR] [--model F.onnx] | serve [--dir DIR] [--port 8080] [--host 127.0.0.1]');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
