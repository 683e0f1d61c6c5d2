#!/usr/bin/env node
/**
 * Provisions the native TensorFlow backend for tfjs (`@tensorflow/tfjs-node`, or
 * `@tensorflow/tfjs-node-gpu` on a CUDA machine) without any manual step.
 *
 * Why this exists: tfjs-node's own install script downloads libtensorflow from
 * storage.googleapis.com, which fails (and fails `npm ci`) on machines that only
 * reach the npm registry. So tfjs-node is not a plain dependency; this postinstall
 * script installs it next to `@tensorflow/tfjs` and provisions its C library in
 * this order:
 *   1. a cached build from an earlier install (~/.cache/refconv/tfjs-native);
 *   2. the official libtensorflow download (what tfjs-node itself would do);
 *   3. the TensorFlow C library inside the `tensorflow-cpu` pip wheel, fetched
 *      with `python3 -m pip download` from the machine's configured pip index
 *      (or a wheel named by REFCONV_TF_WHEEL).
 * It then compiles the addon from source with node-gyp against the Node headers
 * on the machine and checks that a conv runs. Nothing third-party is committed.
 *
 * Last, it compiles RefConv's own TensorFlow kernels (`native/refconv_ops.cc`: a one-pass
 * momentum-SGD update and a faster max-pool gradient) with g++ against that TensorFlow library,
 * into `native/build/refconv_ops.node`. Those kernels are a speed route only: where they cannot
 * be built the runtime keeps TensorFlow's own ops.
 *
 * Environment:
 *   REFCONV_NATIVE=skip      do nothing (the pure-JS backend will be used)
 *   REFCONV_NATIVE=gpu|cpu   force the variant (default: gpu when nvidia-smi works)
 *   REFCONV_TF_WHEEL=path    use this TensorFlow wheel instead of pip download
 *   REFCONV_CACHE_DIR=dir    cache location (default ~/.cache/refconv)
 *
 * A failure never fails `npm install`: it prints what went wrong and how to fix it,
 * and @refconv/core then warns at run time and falls back to the pure-JS backend.
 *
 * The same script is the package's bin `refconv-native`, for projects where npm skipped or
 * denied the install script (npm 11's `allowScripts`): `npx refconv-native` provisions the
 * backend then, and exits 1 when it cannot.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const TFJS_NODE_VERSION = '4.22.0';
const OFFICIAL_LIBTF_VERSION = '2.9.1';
const WHEEL_TF_VERSION = '2.21.0';
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));

function log(msg) {
  console.log(`[refconv native backend] ${msg}`);
}

function warn(msg) {
  console.warn(`[refconv native backend] WARNING: ${msg}`);
}

function hasCuda() {
  try {
    return spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore', timeout: 10000 }).status === 0;
  } catch {
    return false;
  }
}

function chooseVariant() {
  const forced = process.env.REFCONV_NATIVE;
  if (forced === 'gpu' || forced === 'cpu') return forced;
  return hasCuda() ? 'gpu' : 'cpu';
}

/** Where `@tensorflow/tfjs` was installed: tfjs-node must sit beside it to share one engine. */
function tensorflowScopeDir() {
  const tfjsPkg = require.resolve('@tensorflow/tfjs/package.json');
  return path.dirname(path.dirname(tfjsPkg));
}

function addonPath(pkgDir) {
  return path.join(pkgDir, 'lib', `napi-v${process.versions.napi >= 8 ? 8 : process.versions.napi}`, 'tfjs_binding.node');
}

/** Loads the package in a child process and runs a small conv; returns the error text or null. */
function verify(pkgDir) {
  const script = `
    process.env.TF_CPP_MIN_LOG_LEVEL = '3';
    const tf = require(${JSON.stringify(pkgDir)});
    const x = tf.ones([1, 5, 5, 2]);
    const w = tf.ones([3, 3, 2, 4]);
    const y = tf.conv2d(x, w, 1, 'same');
    const v = y.dataSync()[6 * 4];
    if (tf.getBackend() !== 'tensorflow' || v !== 18) throw new Error('bad result ' + v + ' on ' + tf.getBackend());
    console.log(tf.version['tfjs-node'] + ' TF ' + tf.backend().binding.TF_Version);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
  if (r.status === 0) return { ok: true, info: r.stdout.trim() };
  return { ok: false, info: (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-5).join('\n') };
}

function copyDir(src, dst) {
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.cpSync(src, dst, { recursive: true, verbatimSymlinks: true });
}

function npmCommand() {
  return process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')
    ? [process.execPath, [process.env.npm_execpath]]
    : ['npm', []];
}

/** Fetches the tfjs-node package tarball from the npm registry (through npm's cache) and unpacks it. */
function unpackPackage(pkgName, destDir, workDir) {
  const [npm, npmArgs] = npmCommand();
  const out = execFileSync(
    npm,
    [...npmArgs, 'pack', `${pkgName}@${TFJS_NODE_VERSION}`, '--pack-destination', workDir, '--silent'],
    { encoding: 'utf8', cwd: workDir, env: { ...process.env, npm_config_ignore_scripts: 'true' } },
  );
  const tgz = path.join(workDir, out.trim().split('\n').pop());
  const extractDir = path.join(workDir, 'extract');
  fs.rmSync(extractDir, { recursive: true, force: true });
  fs.mkdirSync(extractDir, { recursive: true });
  execFileSync('tar', ['xzf', tgz, '-C', extractDir]);
  copyDir(path.join(extractDir, 'package'), destDir);
}

function download(url, file, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode} for ${url}`));
        return;
      }
      const out = fs.createWriteStream(file);
      res.pipe(out);
      out.on('finish', () => out.close(() => resolve()));
      out.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

/** Option 2: the official libtensorflow tarball, as tfjs-node's own installer would fetch it. */
async function provisionOfficial(variant, depsDir, workDir) {
  const base = process.env.TFJS_NODE_BASE_URI || 'https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-';
  const url = `${base}${variant}-linux-x86_64-${OFFICIAL_LIBTF_VERSION}.tar.gz`;
  const tgz = path.join(workDir, 'libtensorflow.tar.gz');
  await download(url, tgz, 20000);
  fs.rmSync(depsDir, { recursive: true, force: true });
  fs.mkdirSync(depsDir, { recursive: true });
  execFileSync('tar', ['xzf', tgz, '-C', depsDir]);
  return `official libtensorflow ${OFFICIAL_LIBTF_VERSION} (${url})`;
}

function findPython() {
  for (const py of ['python3', 'python']) {
    const r = spawnSync(py, ['-c', 'import sys; print(sys.version_info[0])'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === '3') return py;
  }
  throw new Error('no python3 on PATH (needed to fetch the TensorFlow wheel with pip)');
}

/** Option 3: the C library inside the TensorFlow pip wheel. */
function provisionFromWheel(depsDir, cacheDir) {
  const python = findPython();
  let wheel = process.env.REFCONV_TF_WHEEL;
  if (!wheel) {
    const wheelDir = path.join(cacheDir, 'wheels');
    fs.mkdirSync(wheelDir, { recursive: true });
    wheel = fs.readdirSync(wheelDir).find((f) => f.startsWith(`tensorflow_cpu-${WHEEL_TF_VERSION}-`) && f.endsWith('.whl'));
    if (!wheel) {
      log(`fetching tensorflow-cpu==${WHEEL_TF_VERSION} with pip (no internet needed if a pip index is configured)`);
      execFileSync(
        python,
        ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', `tensorflow-cpu==${WHEEL_TF_VERSION}`, '-d', wheelDir],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      wheel = fs.readdirSync(wheelDir).find((f) => f.startsWith(`tensorflow_cpu-${WHEEL_TF_VERSION}-`) && f.endsWith('.whl'));
      if (!wheel) throw new Error('pip download finished but no tensorflow_cpu wheel was found');
    }
    wheel = path.join(wheelDir, wheel);
  }
  fs.rmSync(depsDir, { recursive: true, force: true });
  // Only the two shared libraries and the C API headers the binding includes are needed.
  const extract = `
import os, sys, zipfile
wheel, deps = sys.argv[1], sys.argv[2]
libdir, incdir = os.path.join(deps, 'lib'), os.path.join(deps, 'include')
os.makedirs(libdir, exist_ok=True)
keep_inc = ('tensorflow/c/', 'tensorflow/core/platform/ctstring', 'tsl/platform/ctstring', 'xla/tsl/c/', 'tsl/c/')
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith('/'):
            continue
        if name in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):
            target = os.path.join(libdir, os.path.basename(name))
        elif name.startswith('tensorflow/include/') and name[len('tensorflow/include/'):].startswith(keep_inc):
            target = os.path.join(incdir, name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, 'wb') as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk: break
                dst.write(chunk)
`;
  execFileSync(python, ['-c', extract, wheel, depsDir], { stdio: 'inherit' });
  const lib = path.join(depsDir, 'lib');
  if (!fs.existsSync(path.join(lib, 'libtensorflow_cc.so.2'))) throw new Error(`${wheel} holds no tensorflow/libtensorflow_cc.so.2`);
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so'));
  fs.symlinkSync('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  return `TensorFlow C library from ${path.basename(wheel)}`;
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const candidates = [];
  try {
    candidates.push(path.join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  } catch { /* npm not on PATH */ }
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error('node-gyp not found (it ships with npm); set npm_config_node_gyp to its path');
  return found;
}

function nodeHeadersDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? prefix : null;
}

/** Compiles tfjs_binding.node from source against deps/. */
function buildAddon(pkgDir) {
  const nodePreGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp');
  const args = [nodePreGyp, 'install', '--build-from-source'];
  const nodedir = nodeHeadersDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  const env = { ...process.env, npm_config_node_gyp: findNodeGyp() };
  if (nodedir) env.npm_config_nodedir = nodedir;
  const r = spawnSync(process.execPath, args, { cwd: pkgDir, env, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`building the tfjs-node addon failed:\n${(r.stderr || r.stdout).split('\n').slice(-20).join('\n')}`);
  }
}

/** Installs and checks one variant; throws with the reason when it cannot. */
async function installVariant(variant, cacheDir) {
  const pkgName = variant === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const pkgDir = path.join(tensorflowScopeDir(), pkgName.split('/')[1]);

  if (fs.existsSync(addonPath(pkgDir)) && verify(pkgDir).ok) {
    log(`${pkgName} already installed and working`);
    return;
  }

  const cachedPkg = path.join(cacheDir, 'tfjs-native', `${pkgName.split('/')[1]}-${TFJS_NODE_VERSION}-napi${process.versions.napi}`);
  if (fs.existsSync(addonPath(cachedPkg))) {
    copyDir(cachedPkg, pkgDir);
    const v = verify(pkgDir);
    if (v.ok) {
      log(`${pkgName} restored from cache ${cachedPkg}: ${v.info}`);
      return;
    }
    warn(`cached build at ${cachedPkg} does not load, rebuilding (${v.info})`);
  }

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-native-'));
  try {
    log(`installing ${pkgName}@${TFJS_NODE_VERSION} into ${pkgDir}`);
    unpackPackage(pkgName, pkgDir, workDir);
    const depsDir = path.join(pkgDir, 'deps');
    let source;
    try {
      source = await provisionOfficial(variant, depsDir, workDir);
    } catch (e) {
      if (variant === 'gpu') throw new Error(`the CUDA libtensorflow download is unavailable (${e.message})`);
      log(`official libtensorflow download unavailable (${e.message}); using the TensorFlow pip wheel`);
      source = provisionFromWheel(depsDir, cacheDir);
    }
    log(`building the addon against ${source}`);
    buildAddon(pkgDir);
    const v = verify(pkgDir);
    if (!v.ok) throw new Error(`the built backend does not run:\n${v.info}`);
    copyDir(pkgDir, cachedPkg);
    log(`ready: ${pkgName} ${v.info} (built against ${source}; cached in ${cachedPkg})`);
  } catch (e) {
    // Never leave a half-installed package behind: @refconv/core would try to load it.
    fs.rmSync(pkgDir, { recursive: true, force: true });
    throw e;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Builds native/refconv_ops.node against the installed tfjs-node's TensorFlow library (skipped
 * when the build there is from the same source and library). Warns instead of failing.
 */
function buildRefconvOps(pkgName) {
  const pkgDir = path.join(tensorflowScopeDir(), pkgName.split('/')[1]);
  const src = path.join(here, '..', 'native', 'refconv_ops.cc');
  const outDir = path.join(here, '..', 'native', 'build');
  const out = path.join(outDir, 'refconv_ops.node');
  const stamp = path.join(outDir, 'refconv_ops.stamp');
  try {
    const deps = path.join(pkgDir, 'deps');
    const libDir = path.join(deps, 'lib');
    const nodedir = nodeHeadersDir();
    if (!nodedir) throw new Error(`no Node headers under ${path.resolve(path.dirname(process.execPath), '..', 'include', 'node')}`);
    const libs = fs.readdirSync(libDir).sort().map((f) => `${f}:${fs.lstatSync(path.join(libDir, f)).size}`).join(',');
    const key = `${createHash('sha256').update(fs.readFileSync(src)).digest('hex')}|${libDir}|${libs}|${process.versions.napi}`;
    if (fs.existsSync(out) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === key) {
      log('RefConv kernels already built');
      return;
    }
    fs.mkdirSync(outDir, { recursive: true });
    const cxx = process.env.CXX || 'g++';
    // -ffp-contract=off: no fused multiply-adds, so the SGD update rounds exactly like the tfjs ops it replaces.
    const args = ['-O3', '-std=c++17', '-fPIC', '-shared', '-ffp-contract=off', '-pthread', '-DNODE_GYP_MODULE_NAME=refconv_ops',
      '-I', path.join(nodedir, 'include', 'node'), '-I', path.join(deps, 'include'), src,
      '-L', libDir, '-ltensorflow_framework', `-Wl,-rpath,${libDir}`, '-o', `${out}.tmp`];
    const r = spawnSync(cxx, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cxx} failed: ${(r.stderr || r.stdout || r.error?.message || '').trim().split('\n').slice(-6).join(' | ')}`);
    fs.renameSync(`${out}.tmp`, out);
    fs.writeFileSync(stamp, key);
    log(`RefConv kernels built: ${out}`);
  } catch (e) {
    warn(`RefConv's own kernels not built (${e.message}); TensorFlow's ops are used instead (slower max-pool gradient and SGD update)`);
  }
}

async function main() {
  if (process.env.REFCONV_NATIVE === 'skip') {
    log('REFCONV_NATIVE=skip: not installing the native backend');
    return;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    warn(`automatic provisioning supports linux-x64 only (this is ${process.platform}-${process.arch}); ` +
      'run `npm install @tensorflow/tfjs-node@4.22.0` yourself, @refconv/core will use it');
    return;
  }
  const cacheDir = process.env.REFCONV_CACHE_DIR || path.join(os.homedir(), '.cache', 'refconv');
  // GPU first where CUDA is present, then the CPU build (unless a variant is forced).
  const first = chooseVariant();
  const variants = first === 'gpu' && process.env.REFCONV_NATIVE !== 'gpu' ? ['gpu', 'cpu'] : [first];
  let lastError;
  for (const variant of variants) {
    try {
      await installVariant(variant, cacheDir);
      if (variant === 'cpu') buildRefconvOps('@tensorflow/tfjs-node');
      return;
    } catch (e) {
      lastError = e;
      if (variant !== variants[variants.length - 1]) warn(`${variant} backend not installed (${e.message}); trying the CPU build`);
    }
  }
  throw lastError;
}

// As npm's install script it never fails the install; run by hand (`npx refconv-native`) it exits 1.
const asInstallScript = process.env.npm_lifecycle_event === 'postinstall';

main().catch((e) => {
  warn(`could not provision the native TensorFlow backend: ${e.message}`);
  warn('RefConv will fall back to the pure-JS backend (about 1000x slower for training). ' +
    'Fix the cause above and re-run `npx refconv-native` (or `npm rebuild @refconv/core`), or see README "Backends".');
  process.exitCode = asInstallScript ? 0 : 1;
});
