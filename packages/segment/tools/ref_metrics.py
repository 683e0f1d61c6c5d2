"""Independent numpy reference for the segmentation metrics (fixtures only, not a product dependency).

Draws random ground-truth / prediction label maps (with ignore pixels and with classes that are
absent from both over the whole split), computes the confusion matrix with np.bincount and the
metrics the way mmsegmentation's `total_area_to_metrics` does (IoU = I / U, acc = I / label area,
nanmean over classes), and writes them to test/fixtures/metrics_random.json.

Run: /work/main/.venv-ref/bin/python packages/segment/tools/ref_metrics.py
"""
import json
import os

import numpy as np

IGNORE = 255


def confusion(gts, preds, n):
    mat = np.zeros((n, n), dtype=np.int64)
    for gt, pred in zip(gts, preds):
        keep = gt != IGNORE
        mat += np.bincount(n * gt[keep].astype(np.int64) + pred[keep], minlength=n * n).reshape(n, n)
    return mat


def metrics(mat):
    inter = np.diag(mat).astype(np.float64)
    area_label = mat.sum(1).astype(np.float64)
    area_pred = mat.sum(0).astype(np.float64)
    union = area_label + area_pred - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
        acc = inter / area_label
    return {
        "mIoU": float(np.nanmean(iou)),
        "pixelAccuracy": float(inter.sum() / area_label.sum()),
        "meanAccuracy": float(np.nanmean(acc)),
        "iou": [None if np.isnan(v) else float(v) for v in iou],
        "accuracy": [None if np.isnan(v) else float(v) for v in acc],
        "numPixels": int(area_label.sum()),
    }


def case(rng, n, shapes, absent, only_pred, ignore_frac):
    """absent: classes in neither gt nor pred; only_pred: classes predicted but never in gt."""
    allowed_gt = [c for c in range(n) if c not in absent and c not in only_pred]
    allowed_pred = [c for c in range(n) if c not in absent]
    gts, preds = [], []
    for h, w in shapes:
        gt = rng.choice(allowed_gt, size=(h, w)).astype(np.int64)
        # predictions agree with gt ~60% of the time so that IoUs are spread out
        noise = rng.choice(allowed_pred, size=(h, w))
        pred = np.where(rng.random((h, w)) < 0.6, gt, noise).astype(np.int64)
        gt[rng.random((h, w)) < ignore_frac] = IGNORE
        gts.append(gt)
        preds.append(pred)
    mat = confusion(gts, preds, n)
    return {
        "numClasses": n,
        "ignoreIndex": IGNORE,
        "images": [{"shape": list(g.shape), "gt": g.ravel().tolist(), "pred": p.ravel().tolist()} for g, p in zip(gts, preds)],
        "confusion": mat.ravel().tolist(),
        "expected": metrics(mat),
    }


def main():
    rng = np.random.default_rng(20260128)
    cases = [
        case(rng, 6, [(17, 23), (9, 31), (20, 20)], absent=[4], only_pred=[], ignore_frac=0.1),
        case(rng, 11, [(24, 32), (13, 7)], absent=[2, 9], only_pred=[5], ignore_frac=0.2),
        case(rng, 21, [(30, 40), (40, 30), (8, 8)], absent=[0, 20], only_pred=[7, 13], ignore_frac=0.05),
    ]
    out = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "metrics_random.json")
    with open(out, "w") as f:
        json.dump({"generator": "tools/ref_metrics.py (numpy %s)" % np.__version__, "cases": cases}, f)
    print("wrote", os.path.normpath(out), os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
