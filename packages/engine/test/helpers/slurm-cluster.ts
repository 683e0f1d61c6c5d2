/**
 * A real single-node Slurm for tests (Debian's slurm-wlm 22.05 + munge): installs the packages with
 * apt when missing (as root), writes a minimal slurm.conf for this host into a scratch folder
 * (free ports picked at start, so an existing cluster or a parallel test run is left alone),
 * starts its own munged (own socket), slurmctld and
 * slurmd, waits until the node is idle. `stop()` ends exactly the daemons it started, by PID.
 * Client commands find the cluster through `SLURM_CONF`, which `start` sets in `process.env`
 * (jobs inherit it, so their `scontrol requeue` reaches the same controller).
 *
 * Also a CLI for trying the README's commands by hand:
 *   node --import tsx packages/engine/test/helpers/slurm-cluster.ts start   # prints `export SLURM_CONF=...`
 *   node --import tsx packages/engine/test/helpers/slurm-cluster.ts stop DIR
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A started cluster. */
export interface SlurmCluster {
  /** Scratch folder: slurm.conf, state, logs, pid files. */
  dir: string;
  conf: string;
  partition: string;
  /** Stops the daemons this harness started (by PID) and restores SLURM_CONF. */
  stop(): void;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port free right now (the OS picks it), so that two test runs on one host do not collide. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Why a cluster cannot be started here, or undefined when it can (installing the packages if needed). */
export function slurmUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `Slurm tests skipped: they need Linux (this is ${process.platform})`;
  if (has('slurmctld') && has('slurmd') && has('munged') && has('sbatch')) return undefined;
  if (process.getuid?.() !== 0) return 'Slurm tests skipped: slurm-wlm / munge are not installed and installing them needs root (apt-get install -y slurm-wlm munge)';
  if (!has('apt-get')) return 'Slurm tests skipped: slurm-wlm / munge are not installed and there is no apt-get';
  const r = spawnSync('apt-get', ['install', '-y', 'slurm-wlm', 'munge'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) return `Slurm tests skipped: apt-get install -y slurm-wlm munge failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  return undefined;
}

/** Starts the cluster; throws naming the daemon and its log when it does not come up. */
export async function startSlurmCluster(o: { cpus?: number; memoryMb?: number; timeoutMs?: number } = {}): Promise<SlurmCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refconv-slurm-'));
  const host = os.hostname().split('.')[0]!;
  const cpus = o.cpus ?? os.cpus().length;
  const mem = o.memoryMb ?? Math.floor((os.totalmem() / 2 ** 20) * 0.8);
  for (const d of ['state', 'spool']) fs.mkdirSync(path.join(dir, d));
  const conf = path.join(dir, 'slurm.conf');
  fs.chmodSync(dir, 0o755); // munged runs as user munge and must reach its folder
  const mungeDir = path.join(dir, 'munge');
  fs.mkdirSync(mungeDir);
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  fs.writeFileSync(
    conf,
    [
      'ClusterName=refconvtest',
      `SlurmctldHost=${host}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      // this cluster's own munged; a requeued job waits cred_expire seconds before it may start again (default 120)
      `AuthInfo=socket=${mungeDir}/munge.socket,cred_expire=10`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      // no slurmdbd here: finished jobs go to a job-completion file, which `sacct --completion` reads
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${dir}/jobcomp.txt`,
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'ReturnToService=2',
      'MpiDefault=none',
      'KillWait=20',
      'MinJobAge=600',
      `NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN`,
      `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const started: Array<{ name: string; pid: () => number | undefined }> = [];
  const previousConf = process.env.SLURM_CONF;
  const stop = () => {
    for (const s of started.reverse()) {
      const pid = s.pid();
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    started.length = 0;
    if (previousConf === undefined) delete process.env.SLURM_CONF;
    else process.env.SLURM_CONF = previousConf;
  };
  try {
    // munge: one munged per cluster, on its own socket (a shared one could be stopped by another test run)
    execFileSync('chown', ['munge:munge', mungeDir]);
    const sock = path.join(mungeDir, 'munge.socket');
    execFileSync('runuser', ['-u', 'munge', '--', 'munged', `--socket=${sock}`, `--pid-file=${mungeDir}/munged.pid`, `--log-file=${mungeDir}/munged.log`, `--seed-file=${mungeDir}/munged.seed`]);
    started.push({ name: 'munged', pid: () => readPid(path.join(mungeDir, 'munged.pid')) });
    for (let i = 0; i < 50 && spawnSync('sh', ['-c', `munge -S ${sock} -n | unmunge -S ${sock}`]).status !== 0; i++) await sleep(100);
    process.env.SLURM_CONF = conf;
    execFileSync('slurmctld', ['-c', '-f', conf], { env: process.env });
    started.push({ name: 'slurmctld', pid: () => readPid(path.join(dir, 'slurmctld.pid')) });
    execFileSync('slurmd', ['-f', conf], { env: process.env });
    started.push({ name: 'slurmd', pid: () => readPid(path.join(dir, 'slurmd.pid')) });
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    let state = '';
    while (Date.now() < deadline) {
      state = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', env: process.env }).stdout.trim();
      if (state === 'idle') return { dir, conf, partition: 'test', stop };
      await sleep(500);
    }
    throw new Error(`the Slurm node did not become idle within ${(o.timeoutMs ?? 60_000) / 1000} s (sinfo: '${state}'); logs: ${dir}/slurmctld.log, ${dir}/slurmd.log`);
  } catch (e) {
    stop();
    throw e;
  }
}

/** Waits until `done()` is true, polling every `everyMs`; throws `what` on timeout. */
export async function waitFor(done: () => boolean, timeoutMs: number, what: string, everyMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'start') {
    const why = slurmUnavailable();
    if (why) {
      console.error(why);
      process.exit(1);
    }
    const c = await startSlurmCluster();
    console.log(`export SLURM_CONF=${c.conf}   # stop: node --import tsx ${process.argv[1]} stop ${c.dir}`);
  } else if (cmd === 'stop' && arg) {
    for (const f of ['slurmd.pid', 'slurmctld.pid', 'munge/munged.pid']) {
      const pid = readPid(path.join(arg, f));
      if (pid) process.kill(pid, 'SIGTERM');
    }
  } else {
    console.error('usage: slurm-cluster.ts start | stop DIR');
    process.exit(2);
  }
}
