/** Shared by the package tests: the repository layout, the README's example, child processes. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const README = path.join(REPO, 'README.md');
const SECTION = '## Using RefConv from your own code';

/** The first ```ts block of the README's "Using RefConv from your own code" section. */
export function readmeExample() {
  const text = fs.readFileSync(README, 'utf8');
  const at = text.indexOf(SECTION);
  if (at < 0) throw new Error(`${README}: no "${SECTION}" section`);
  const m = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`${README}: the "${SECTION}" section has no \`\`\`ts code block`);
  return m[1];
}

/** The lines the README says its example prints (checked on its output). */
export function checkExampleOutput(output, where) {
  const stdout = output.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => {
    const m = new RegExp(`${label.replace(/[|()]/g, '\\$&')}\\s*([-0-9.e]+)`).exec(stdout);
    if (!m) throw new Error(`${where}: no "${label}" line in its output:\n${stdout}`);
    return Number(m[1]);
  };
  const loss = num('loss:');
  if (!Number.isFinite(loss)) throw new Error(`${where}: loss ${loss} is not finite`);
  const fused = num('max |refocused - deployed|:');
  if (!(fused < 1e-4)) throw new Error(`${where}: fused model differs from the refocused one by ${fused}`);
  const params = /params: (\d+) deployed, (\d+) pretrained/.exec(stdout);
  if (!params || params[1] !== params[2]) throw new Error(`${where}: deployed and pretrained parameter counts differ: ${params?.[0]}`);
  const reload = num('max |deployed - reloaded|:');
  if (reload !== 0) throw new Error(`${where}: the reloaded model differs by ${reload}`);
  if (!process.env.REFCONV_BACKEND && !/^backend: tensorflow/m.test(stdout)) {
    throw new Error(`${where}: not on the native TensorFlow backend (set REFCONV_BACKEND to allow another):\n${stdout}`);
  }
}

/**
 * The environment for child npm / node processes: without the npm_* variables of an enclosing
 * `npm test` (npm_config_local_prefix etc. would point npm at this workspace) and without
 * NODE_OPTIONS conditions, so children see what a user's shell gives them.
 */
export function cleanEnv(extra = {}) {
  const keep = new Set(['npm_config_registry', 'npm_config_cache', 'npm_config_userconfig']);
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.has(k.toLowerCase())) continue;
    if (k === 'NODE_OPTIONS' || k === 'INIT_CWD' || k === 'FORCE_COLOR') continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs a command; throws with its output when it fails. */
export function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: cleanEnv(), ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}): ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) exited ${r.status}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  }
  return r;
}
