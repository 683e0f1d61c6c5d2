#!/usr/bin/env node
// Launcher of the compiled CLI (dist/cli.js, built by `npm ci` / `npm run build` in the workspace
// and shipped in the published package). No TypeScript runs here; the nx target
// `coco-eval:eval` runs src/cli.ts through tsx for development.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cliUrl = new URL('../dist/cli.js', import.meta.url);
const cli = fileURLToPath(cliUrl);
if (!existsSync(cli)) {
  process.stderr.write(
    `coco-eval: error: ${cli} does not exist: the package is not built. In the RefConv workspace run ` +
      '`npm run build` (or `npx nx run coco-eval:build`); `npm ci` builds it too unless scripts are disabled.\n',
  );
  process.exit(1);
}
// dist/cli.js runs its main() only when it is the entry script (it compares import.meta.url with
// process.argv[1]), so present it as such; the arguments after it are left as the user gave them.
process.argv[1] = cli;
await import(cliUrl.href);
