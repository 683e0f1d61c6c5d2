/**
 * The lifecycle of a real single-node Slurm cluster around a vitest suite (classify's and detect's
 * real-Slurm tests): started before the suite's tests, and afterwards every job cancelled, the
 * queue drained and the daemons stopped, so nothing of the cluster outlives the suite.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { startSlurmCluster, waitFor, type SlurmCluster } from './slurm-cluster.js';

/** Registers the hooks in the current `describe`; returns the running cluster (after beforeAll). */
export function useSlurmCluster(o: { cpus?: number } = {}): () => SlurmCluster | undefined {
  let cluster: SlurmCluster | undefined;
  beforeAll(async () => {
    cluster = await startSlurmCluster({ cpus: o.cpus ?? 2 });
  }, 120_000);
  afterAll(async () => {
    if (cluster) {
      spawnSync('scancel', ['--user', 'root'], { env: process.env });
      await waitFor(() => spawnSync('squeue', ['-h'], { encoding: 'utf8', env: process.env }).stdout.trim() === '', 60_000, 'the queue to drain').catch(() => undefined);
    }
    cluster?.stop();
  }, 90_000);
  return () => cluster;
}
