/** `nx run classify:experiment`: the protocol for 3 seeds (default) and the aggregated report. */
import { PreemptedError, PREEMPTED_EXIT_CODE } from '@refconv/engine';
import { main } from './train.js';

main(process.argv.slice(2), 'classify:experiment', 3).catch((e: Error) => {
  console.error(`classify:experiment failed: ${e.message}`);
  // a preempted trainer (SIGTERM / SIGUSR1) exits 75: the Slurm script requeues it
  process.exit(e instanceof PreemptedError ? PREEMPTED_EXIT_CODE : 1);
});
