/** `nx run classify:experiment`: the protocol for 3 seeds (default) and the aggregated report. */
import { main } from './train.js';

main(process.argv.slice(2), 'classify:experiment', 3).catch((e: Error) => {
  console.error(`classify:experiment failed: ${e.message}`);
  process.exit(1);
});
