"""Summarises oneDNN's verbose log (ONEDNN_VERBOSE=1) read from stdin: oneDNN version, runtime
and ISA, then total milliseconds, call count and implementation per primitive kind and
propagation kind (forward_training, backward_data, backward_weights, ...). Used to compare the
kernels TensorFlow (under tfjs-node) and PyTorch run for the same training step:

  ONEDNN_VERBOSE=1 npx nx run bench:profile -- --arch resnet18 2>&1 | python3 tools/onednn_summary.py --steps 2
  ONEDNN_VERBOSE=1 .venv-ref/bin/python tools/torch_bench.py --arch resnet18 --only trainPlain --steps 1 \\
      | python3 tools/onednn_summary.py --steps 2

`--steps N` divides the totals by N (both commands above run one warm-up and one timed step).
Lines that are not oneDNN's are ignored.
"""
import argparse
import collections
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1, help="divide totals by this many steps")
    a = ap.parse_args()
    info = []
    total = collections.defaultdict(float)
    calls = collections.Counter()
    impls = collections.defaultdict(set)
    for line in sys.stdin:
        if not line.startswith("onednn_verbose"):
            continue
        f = line.strip().split(",")
        if len(f) > 3 and f[2] == "info" and f[3].startswith("oneDNN v"):
            info.append(f[3])
        elif len(f) > 4 and f[2] == "info" and f[3] == "cpu" and f[4].startswith(("runtime", "isa")):
            info.append(",".join(f[4:]))
        if len(f) < 10 or f[3] != "exec":
            continue
        key = (f[5], f[7])  # primitive kind, propagation kind
        total[key] += float(f[-1])
        calls[key] += 1
        impls[key].add(f[6])
    print("; ".join(info))
    print(f"{'primitive':<22} {'propagation':<18} {'ms/step':>9} {'calls/step':>10}  implementation")
    for key, ms in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"{key[0]:<22} {key[1]:<18} {ms / a.steps:9.1f} {calls[key] / a.steps:10.1f}  {' '.join(sorted(impls[key]))}")
    print(f"{'all':<22} {'':<18} {sum(total.values()) / a.steps:9.1f}")


if __name__ == "__main__":
    main()
