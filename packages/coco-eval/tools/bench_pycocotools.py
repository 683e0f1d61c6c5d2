"""Times pycocotools on a GT/results pair; prints one JSON line (used by bench/bench.ts).

    python tools/bench_pycocotools.py GT.json DT.json bbox
"""
import contextlib
import io
import json
import resource
import sys
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main(gt_path, dt_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        t1 = time.perf_counter()
        c1 = time.process_time()
        E = COCOeval(gt, dt, iou_type)
        E.evaluate()
        t2 = time.perf_counter()
        E.accumulate()
        t3 = time.perf_counter()
        E.summarize()
        t4 = time.perf_counter()
        c4 = time.process_time()
    print(json.dumps({
        'load_s': t1 - t0, 'evaluate_s': t2 - t1, 'accumulate_s': t3 - t2, 'summarize_s': t4 - t3,
        'eval_total_s': t4 - t1, 'eval_cpu_s': c4 - c1, 'stats': [float(s) for s in E.stats],
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == '__main__':
    main(*sys.argv[1:4])
