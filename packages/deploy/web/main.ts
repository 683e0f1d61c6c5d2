/**
 * The browser page: loads an exported classifier (`model.onnx` next to the page, or `?model=URL`)
 * into onnxruntime-web (WebAssembly), reads its preprocessing and class names from the ONNX metadata
 * (`refconv.*`, decoded with onnx-proto), and classifies the image the user drops or chooses: top-5
 * classes with softmax probabilities and the inference latency.
 *
 * For the end-to-end test the page publishes its state on `document.body.dataset.state`
 * (`loading` -> `ready` -> `running` -> `done`, or `error`) and the last result on `window.refconvResult`.
 */
import * as ort from 'onnxruntime-web/wasm';
import onnxProto from 'onnx-proto';
import { classifierPreprocessing, parseMetadataProps, preprocessRgba, resizeCropGeometry, softmaxTopK, type ClassifierPreprocessing, type ModelMetadata, type TopClass } from '../src/metadata.js';

/** What the page computed for the last image (read by the browser test). */
export interface PageResult {
  image: string;
  width: number;
  height: number;
  top: TopClass[];
  /** All softmax probabilities, index = class. */
  probabilities: number[];
  /** Latency of the first `session.run` and the median of the timed repeats (ms). */
  firstMs: number;
  medianMs: number;
  runs: number;
  preprocessMs: number;
}

declare global {
  interface Window {
    refconvResult?: PageResult;
    refconvError?: string;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const setState = (s: string): void => void (document.body.dataset.state = s);
const status = (msg: string, error = false): void => {
  const el = $('status');
  el.textContent = msg;
  el.className = error ? 'error' : '';
};

/** Timed repeats after the first run (the median is shown). */
const REPEATS = 20;

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const modelUrl = params.get('model') ?? 'model.onnx';
  // the .wasm (and its loader) are served next to the page; one thread (no cross-origin isolation needed)
  ort.env.wasm.wasmPaths = new URL('./', location.href).href;
  ort.env.wasm.numThreads = 1;
  const res = await fetch(modelUrl);
  if (!res.ok) throw new Error(`could not load the model ${modelUrl}: HTTP ${res.status} (put an exported model.onnx next to the page, or pass ?model=URL)`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const proto = onnxProto.onnx.ModelProto.decode(bytes);
  const props: Record<string, string> = {};
  for (const p of proto.metadataProps) props[p.key ?? ''] = p.value ?? '';
  const md: ModelMetadata = parseMetadataProps(props);
  const pre = classifierPreprocessing(md);
  const opset = proto.opsetImport.find((o) => !o.domain)?.version;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const nClasses = md.classNames?.length;
  $('model').innerHTML =
    `<code>${modelUrl}</code>: ${md.arch ?? 'model'}, ${pre.crop}x${pre.crop} ${pre.channels === 1 ? 'grey' : 'RGB'} input (resize ${pre.resize}, center crop), ` +
    `${nClasses ?? '?'} classes, opset ${String(opset ?? '?')}; onnxruntime-web ${ort.env.versions.web ?? ''} (WebAssembly, 1 thread)`;
  setState('ready');
  status('Ready: choose or drop an image.');

  const run = async (file: File): Promise<void> => {
    setState('running');
    status(`classifying ${file.name} ...`);
    try {
      window.refconvResult = await classify(file, session, md, pre);
      render(window.refconvResult);
      setState('done');
      status(`${file.name}: ${window.refconvResult.width}x${window.refconvResult.height}`);
    } catch (e) {
      fail(e);
    }
  };
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => {
    if (input.files?.[0]) void run(input.files[0]);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void run(f);
  });
}

/** Decodes the file without colour management or alpha premultiplication (the bytes sharp would read). */
async function decode(file: File): Promise<{ rgba: Uint8ClampedArray; width: number; height: number; bitmap: ImageBitmap }> {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { colorSpace: 'srgb' });
  if (!ctx) throw new Error('no 2-D canvas context');
  ctx.drawImage(bitmap, 0, 0);
  return { rgba: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height, bitmap };
}

async function classify(file: File, session: ort.InferenceSession, md: ModelMetadata, pre: ClassifierPreprocessing): Promise<PageResult> {
  const { rgba, width, height, bitmap } = await decode(file);
  const t0 = performance.now();
  const { data, dims } = preprocessRgba(rgba, width, height, pre);
  const preprocessMs = performance.now() - t0;
  showInput(bitmap, pre);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  const outName = session.outputNames[0];
  let t = performance.now();
  const first = await session.run(feeds);
  const firstMs = performance.now() - t;
  const logits = first[outName].data as Float32Array;
  if (first[outName].dims.length !== 2) throw new Error(`output '${outName}' is [${first[outName].dims.join(', ')}], expected [1, classes]`);
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const all = softmaxTopK(logits, logits.length, md.classNames);
  const probabilities = new Array<number>(logits.length);
  for (const c of all) probabilities[c.index] = c.probability;
  return { image: file.name, width, height, top: all.slice(0, 5), probabilities, firstMs, medianMs: times[Math.floor(times.length / 2)], runs: REPEATS, preprocessMs };
}

/** Draws the center crop the model sees into the preview. */
function showInput(bitmap: ImageBitmap, pre: ClassifierPreprocessing): void {
  const { rw, left, top } = resizeCropGeometry(bitmap.width, bitmap.height, pre.resize, pre.crop);
  const s = bitmap.width / rw;
  const canvas = $<HTMLCanvasElement>('preview');
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmap, left * s, top * s, pre.crop * s, pre.crop * s, 0, 0, canvas.width, canvas.height);
}

function render(r: PageResult): void {
  const esc = (s: string): string => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  $('top').innerHTML = r.top
    .map((c) => `<tr><td class="p">${(100 * c.probability).toFixed(2)}%</td><td>${esc(c.name)}</td><td class="bar"><div style="width:${(100 * c.probability).toFixed(1)}%"></div></td></tr>`)
    .join('');
  $('latency').textContent = `inference ${r.medianMs.toFixed(2)} ms (median of ${r.runs} runs; first run ${r.firstMs.toFixed(1)} ms), preprocessing ${r.preprocessMs.toFixed(1)} ms`;
}

function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  window.refconvError = msg;
  setState('error');
  status(msg, true);
  console.error(e);
}

main().catch(fail);
