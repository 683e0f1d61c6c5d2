/**
 * The root README's "Using RefConv from your own code" example, run as written in this checkout:
 * the code block is copied into a directory inside the repository but outside packages/ and run
 * with `node --import tsx` and no source condition, i.e. against the packages' built dist/ as a
 * user's script after `npm ci` sees them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, checkExampleOutput, readmeExample, run } from './helpers.mjs';

test('README example runs in the checkout against the built packages', { timeout: 300_000 }, () => {
  fs.mkdirSync(path.join(REPO, 'tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(REPO, 'tmp', 'readme-example-'));
  try {
    fs.writeFileSync(path.join(dir, 'try.ts'), readmeExample());
    const r = run(process.execPath, ['--import', 'tsx', 'try.ts'], { cwd: dir });
    checkExampleOutput(r.stdout, `README example in ${dir}`);
    assert.ok(fs.existsSync(path.join(dir, 'refconv-resnet18', 'model.json')), 'the example saved refconv-resnet18/model.json');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
