#!/usr/bin/env node
// Launcher: runs the TypeScript CLI through tsx with the @refconv/source condition, so no build
// step is needed. Exit code and output are the CLI's.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');
const r = spawnSync(process.execPath, ['--conditions=@refconv/source', '--import', tsx, cli, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
