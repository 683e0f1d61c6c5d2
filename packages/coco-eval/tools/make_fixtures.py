"""Generates ground-truth / result pairs and records what pycocotools computes on them.

Run from packages/coco-eval with the reference venv:
    ../../.venv-ref/bin/python tools/make_fixtures.py
Writes test/fixtures/*.json (small, committed). The TypeScript tests compare against these files
only; Python is never needed to run them.
"""
import contextlib
import copy
import hashlib
import io
import json
import os
import sys

import numpy as np
import pycocotools
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures')
COCO128 = os.path.join(HERE, '..', '..', '..', '..', 'shared', 'datasets', 'coco128', 'annotations', 'instances_train2017.json')


def rnd(x, nd=2):
    return float(round(float(x), nd))


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))
    size = os.path.getsize(path)
    assert size < 2_000_000, f'{name} is {size} bytes'
    print(f'wrote {name} ({size/1024:.0f} KiB)')


def coco_from(dataset):
    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO()
        c.dataset = copy.deepcopy(dataset)
        c.createIndex()
    return c


def run_eval(gt_dataset, results, iou_type, params=None):
    """Runs pycocotools and returns everything the tests compare."""
    gt = coco_from(gt_dataset)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        dt = gt.loadRes(copy.deepcopy(results))
        E = COCOeval(gt, dt, iou_type)
        for k, v in (params or {}).items():
            setattr(E.params, k, v)
        E.evaluate()
        E.accumulate()
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        E.summarize()
    prec = E.eval['precision']
    rec = E.eval['recall']
    T, R, K, A, M = prec.shape
    # per-category AP/AR at area 'all' and the last maxDets, as detectron2 computes them
    per_cat = []
    cat_ids = E.params.catIds if E.params.useCats else [-1]
    for k, cat_id in enumerate(cat_ids):
        def mean_valid(a):
            a = a[a > -1]
            return float(np.mean(a)) if a.size else -1.0
        t50 = np.where(E.params.iouThrs == 0.5)[0]
        t75 = np.where(E.params.iouThrs == 0.75)[0]
        per_cat.append({
            'catId': int(cat_id),
            'ap': mean_valid(prec[:, :, k, 0, -1]),
            'ap50': mean_valid(prec[t50, :, k, 0, -1]),
            'ap75': mean_valid(prec[t75, :, k, 0, -1]),
            'ar': mean_valid(rec[:, k, 0, -1]),
        })
    # a few evalImgs entries in full, to check matching per detection
    some = [e for e in E.evalImgs if e is not None][:: max(1, len([e for e in E.evalImgs if e is not None]) // 6)][:6]
    eval_imgs = [{
        'image_id': int(e['image_id']), 'category_id': int(e['category_id']), 'aRng': [float(v) for v in e['aRng']],
        'maxDet': int(e['maxDet']), 'dtIds': [int(v) for v in e['dtIds']], 'gtIds': [int(v) for v in e['gtIds']],
        'dtMatches': e['dtMatches'].tolist(), 'gtMatches': e['gtMatches'].tolist(),
        'dtScores': [float(v) for v in e['dtScores']], 'gtIgnore': [int(v) for v in e['gtIgnore']],
        'dtIgnore': e['dtIgnore'].astype(int).tolist(),
    } for e in some]
    return {
        'iouType': iou_type,
        'params': {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in (params or {}).items()},
        'stats': [float(s) for s in E.stats],
        'table': table.getvalue().splitlines(),
        'counts': [int(T), int(R), int(K), int(A), int(M)],
        # recall [T,K,A,M] in full; precision and scores summed over R per [T,K,A,M]
        'recall': rec.reshape(-1).tolist(),
        'precisionSumR': prec.sum(axis=1).reshape(-1).tolist(),
        'scoresSumR': E.eval['scores'].sum(axis=1).reshape(-1).tolist(),
        'perCategory': per_cat,
        'evalImgs': eval_imgs,
    }


# ------------------------------------------------------------------------------------------------
# Synthetic data
# ------------------------------------------------------------------------------------------------

def polygon_for_box(rng, x, y, w, h):
    """A random convex-ish polygon inside a box (5..9 vertices)."""
    n = int(rng.integers(5, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.6, 1.0, n)
    cx, cy = x + w / 2, y + h / 2
    xs = cx + np.cos(ang) * rad * w / 2
    ys = cy + np.sin(ang) * rad * h / 2
    return [rnd(v) for xy in zip(xs, ys) for v in xy]


def synthetic_gt(rng, n_images, cat_ids):
    images, anns = [], []
    aid = 1
    for i in range(n_images):
        img_id = 1000 + 7 * i  # non-contiguous image ids
        H, W = int(rng.integers(120, 400)), int(rng.integers(120, 400))
        images.append({'id': img_id, 'height': H, 'width': W, 'file_name': f'{img_id}.jpg'})
        if i % 9 == 4:
            continue  # image without objects
        for _ in range(int(rng.integers(1, 9))):
            size_kind = rng.integers(0, 3)
            side = [rng.uniform(3, 30), rng.uniform(33, 95), rng.uniform(97, 220)][size_kind]
            w = min(side * rng.uniform(0.6, 1.4), W - 2)
            h = min(side * side / max(w, 1), H - 2)
            x = rng.uniform(0, W - w)
            y = rng.uniform(0, H - h)
            crowd = 1 if rng.random() < 0.08 else 0
            cat = int(rng.choice(cat_ids))
            if crowd:
                m = np.zeros((H, W), dtype=np.uint8, order='F')
                m[int(y):int(y + h) + 1, int(x):int(x + w) + 1] = 1
                rle = maskUtils.encode(m)
                # COCO stores crowd masks as uncompressed RLE: decode the runs back to a list
                counts = rle_counts_list(m)
                seg = {'size': [H, W], 'counts': counts}
                area = float(maskUtils.area(rle))
            else:
                seg = [polygon_for_box(rng, x, y, w, h)]
                if rng.random() < 0.2:
                    seg.append(polygon_for_box(rng, x, y, w * 0.5, h * 0.5))
                rles = maskUtils.frPyObjects(seg, H, W)
                area = float(maskUtils.area(maskUtils.merge(rles)))
            anns.append({'id': aid, 'image_id': img_id, 'category_id': cat, 'iscrowd': crowd,
                         'bbox': [rnd(x), rnd(y), rnd(w), rnd(h)], 'area': rnd(area, 3), 'segmentation': seg})
            aid += 1
    cats = [{'id': c, 'name': f'class{c}', 'supercategory': 'thing' if c % 2 else 'stuff'} for c in cat_ids]
    return {'info': {'description': 'synthetic'}, 'images': images, 'annotations': anns, 'categories': cats}


def rle_counts_list(m):
    flat = np.asarray(m, dtype=np.uint8).reshape(-1, order='F')
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    return counts


def perturbed_results(rng, gt, kind, cat_ids, extra_cat=None):
    """Detections near the ground truth (jitter, duplicates, misses), false positives, >100 per image."""
    imgs = {im['id']: im for im in gt['images']}
    res = []
    gt_coco = coco_from(gt)
    for ann in gt['annotations']:
        if rng.random() < 0.15:
            continue  # missed
        copies = 1 + (rng.random() < 0.2) + (rng.random() < 0.1)  # duplicates
        for _ in range(copies):
            x, y, w, h = ann['bbox']
            j = rng.normal(0, 0.12, 4)
            bb = [rnd(x + j[0] * w), rnd(y + j[1] * h), rnd(max(w * (1 + j[2]), 0.5)), rnd(max(h * (1 + j[3]), 0.5))]
            cat = ann['category_id'] if rng.random() > 0.1 else int(rng.choice(cat_ids))
            score = rnd(rng.uniform(0.05, 1.0), 2)  # 2 decimals: many exact ties
            res.append(make_result(rng, kind, ann['image_id'], cat, bb, score, imgs, gt_coco, ann))
    for im in gt['images']:
        n_fp = int(rng.integers(0, 6))
        if im['id'] % 5 == 0:
            n_fp = 130  # more than maxDets=100 in one image
        for _ in range(n_fp):
            W, H = im['width'], im['height']
            w, h = rng.uniform(2, W / 2), rng.uniform(2, H / 2)
            bb = [rnd(rng.uniform(0, W - w)), rnd(rng.uniform(0, H - h)), rnd(w), rnd(h)]
            cat = int(rng.choice(cat_ids + ([extra_cat] if extra_cat else [])))
            res.append(make_result(rng, kind, im['id'], cat, bb, rnd(rng.uniform(0, 0.9), 3), imgs, gt_coco, None))
    return res


def make_result(rng, kind, img_id, cat, bb, score, imgs, gt_coco, ann):
    r = {'image_id': img_id, 'category_id': cat, 'score': score}
    if kind == 'bbox':
        r['bbox'] = bb
        return r
    im = imgs[img_id]
    H, W = im['height'], im['width']
    if ann is not None and not ann['iscrowd'] and rng.random() < 0.6:
        # a perturbed copy of the gt polygons
        dx, dy, s = rng.normal(0, 2), rng.normal(0, 2), rng.uniform(0.85, 1.15)
        polys = []
        for p in ann['segmentation']:
            xy = np.array(p).reshape(-1, 2)
            c = xy.mean(axis=0)
            xy = (xy - c) * s + c + [dx, dy]
            polys.append([rnd(v) for v in xy.reshape(-1)])
        rle = maskUtils.merge(maskUtils.frPyObjects(polys, H, W))
    elif ann is not None:
        m = gt_coco.annToMask(ann)
        m = np.roll(m, int(rng.integers(-3, 4)), axis=1)
        rle = maskUtils.encode(np.asfortranarray(m))
    else:
        rle = maskUtils.frPyObjects(np.array([bb], dtype=np.double), H, W)[0]
    r['segmentation'] = {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}
    return r


# ------------------------------------------------------------------------------------------------
# Mask API fixtures
# ------------------------------------------------------------------------------------------------

def mask_fixtures(rng):
    out = {'polygons': [], 'boxes': [], 'encode': [], 'merge': [], 'iou': [], 'uncompressed': [], 'toBbox': []}
    H, W = 47, 61
    polys = []
    for i in range(40):
        n = int(rng.integers(3, 12))
        pts = rng.uniform(-8, 70, n * 2)
        if i % 4 == 0:
            pts = np.round(pts * 2) / 2  # half-pixel coordinates: rounding edge cases
        if i % 4 == 1:
            pts = np.round(pts)
        polys.append([float(v) for v in pts])
    polys.append([10.0, 10.0, 10.0, 10.0, 10.0, 10.0])  # degenerate
    polys.append([0.0, 0.0, 61.0, 0.0, 61.0, 47.0, 0.0, 47.0])  # whole image
    for p in polys:
        rle = maskUtils.frPyObjects([p], H, W)[0]
        out['polygons'].append({'poly': p, 'h': H, 'w': W, 'counts': rle['counts'].decode('ascii'),
                                'area': int(maskUtils.area(rle)), 'bbox': maskUtils.toBbox(rle).tolist()})
    for _ in range(20):
        b = [rnd(rng.uniform(-5, 50)), rnd(rng.uniform(-5, 40)), rnd(rng.uniform(0, 30)), rnd(rng.uniform(0, 30))]
        rle = maskUtils.frPyObjects(np.array([b], dtype=np.double), H, W)[0]
        out['boxes'].append({'box': b, 'h': H, 'w': W, 'counts': rle['counts'].decode('ascii')})
    for i in range(12):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        m = (rng.random((h, w)) < [0.05, 0.5, 0.95][i % 3]).astype(np.uint8)
        if i == 0:
            m[:] = 0
        rle = maskUtils.encode(np.asfortranarray(m))
        out['encode'].append({'h': h, 'w': w, 'maskColMajor': m.reshape(-1, order='F').tolist(),
                              'counts': rle['counts'].decode('ascii')})
    # large counts: multi-character groups and negative differences
    big = np.zeros((500, 400), dtype=np.uint8, order='F')
    big[100:480, 50:390] = 1
    big[0:3, 0:2] = 1
    rle = maskUtils.encode(big)
    out['encode'].append({'h': 500, 'w': 400, 'rect': [[100, 480, 50, 390], [0, 3, 0, 2]], 'counts': rle['counts'].decode('ascii')})
    rles = [maskUtils.frPyObjects([p], H, W)[0] for p in polys]
    for i in range(0, 12, 3):
        group = rles[i:i + 3]
        out['merge'].append({'counts': [r['counts'].decode('ascii') for r in group], 'h': H, 'w': W,
                             'union': maskUtils.merge(group)['counts'].decode('ascii'),
                             'intersection': maskUtils.merge(group, intersect=True)['counts'].decode('ascii')})
    dts, gts = rles[12:20], rles[20:26]
    crowd = [0, 1, 0, 0, 1, 0]
    out['iou'].append({'h': H, 'w': W, 'dt': [r['counts'].decode('ascii') for r in dts],
                       'gt': [r['counts'].decode('ascii') for r in gts], 'iscrowd': crowd,
                       'iou': maskUtils.iou(dts, gts, crowd).tolist()})
    bdt = [[rnd(v) for v in rng.uniform(0, 40, 4)] for _ in range(9)]
    bgt = [[rnd(v) for v in rng.uniform(0, 40, 4)] for _ in range(7)]
    bcrowd = [0, 0, 1, 0, 1, 0, 0]
    out['bboxIou'] = {'dt': bdt, 'gt': bgt, 'iscrowd': bcrowd, 'iou': maskUtils.iou(bdt, bgt, bcrowd).tolist()}
    for _ in range(6):
        counts = [int(v) for v in rng.integers(0, 9, int(rng.integers(1, 12)))]
        tot = sum(counts)
        h = int(rng.integers(1, 6))
        w = tot // h + 1
        counts.append(h * w - tot)
        obj = maskUtils.frPyObjects({'size': [h, w], 'counts': counts}, h, w)
        out['uncompressed'].append({'h': h, 'w': w, 'counts': counts, 'compressed': obj['counts'].decode('ascii'),
                                    'bbox': maskUtils.toBbox(obj).tolist(), 'area': int(maskUtils.area(obj))})
    return out


def edge_cases():
    """Hand-made corner cases: crowd-only images, a category without gt, exact IoU and area boundaries, score ties."""
    def box_ann(aid, img, cat, bb, crowd=0, area=None):
        x, y, w, h = bb
        seg = [[x, y, x, y + h, x + w, y + h, x + w, y]]
        if crowd:
            m = np.zeros((100, 100), dtype=np.uint8, order='F')
            m[int(y):int(y + h), int(x):int(x + w)] = 1
            seg = {'size': [100, 100], 'counts': rle_counts_list(m)}
        return {'id': aid, 'image_id': img, 'category_id': cat, 'bbox': bb, 'iscrowd': crowd,
                'area': float(w * h) if area is None else area, 'segmentation': seg}
    gt = {
        'images': [{'id': i, 'height': 100, 'width': 100} for i in (1, 2, 3, 4, 5)],
        'categories': [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}, {'id': 3, 'name': 'c'}],
        'annotations': [
            box_ann(1, 1, 1, [10, 10, 40, 40], crowd=1),                   # image 1: crowd only
            box_ann(2, 3, 1, [0, 0, 10, 20]),                               # IoU exactly .5 with [0,0,10,10]
            box_ann(3, 3, 1, [50, 50, 20, 20]),
            box_ann(4, 4, 1, [0, 0, 32, 32]),                               # area exactly 32**2
            box_ann(5, 4, 1, [40, 40, 96, 60], area=96.0 ** 2),             # area exactly 96**2
            box_ann(6, 5, 3, [5, 5, 30, 30]),
            box_ann(7, 5, 3, [5, 5, 30, 30]),                               # duplicate gt
        ],
    }
    dts = [
        {'image_id': 1, 'category_id': 1, 'bbox': [12, 12, 10, 10], 'score': 0.9},   # inside crowd: ignored
        {'image_id': 1, 'category_id': 1, 'bbox': [20, 20, 10, 10], 'score': 0.8},   # inside crowd again
        {'image_id': 1, 'category_id': 1, 'bbox': [70, 70, 10, 10], 'score': 0.8},   # false positive
        {'image_id': 2, 'category_id': 2, 'bbox': [0, 0, 10, 10], 'score': 0.7},     # category without gt
        {'image_id': 3, 'category_id': 1, 'bbox': [0, 0, 10, 10], 'score': 0.6},     # IoU .5
        {'image_id': 3, 'category_id': 1, 'bbox': [50, 50, 20, 15], 'score': 0.6},   # IoU .75, tie
        {'image_id': 3, 'category_id': 1, 'bbox': [50, 50, 20, 20], 'score': 0.6},   # perfect, tie
        {'image_id': 4, 'category_id': 1, 'bbox': [0, 0, 32, 32], 'score': 0.6},     # tie across images
        {'image_id': 4, 'category_id': 1, 'bbox': [40, 40, 96, 60], 'score': 0.5},
        {'image_id': 5, 'category_id': 3, 'bbox': [5, 5, 30, 30], 'score': 0.4},
        {'image_id': 5, 'category_id': 3, 'bbox': [5, 5, 30, 30], 'score': 0.4},
        {'image_id': 5, 'category_id': 3, 'bbox': [5, 5, 30, 30], 'score': 0.4},
    ]
    return gt, dts


def keypoint_data(rng):
    """Person keypoints: visible/occluded/absent points, gts without keypoints, crowd, jittered detections."""
    images, anns, res = [], [], []
    aid = 1
    for i in range(30):
        img_id = 500 + i
        images.append({'id': img_id, 'height': 300, 'width': 400})
        for _ in range(int(rng.integers(0, 5))):
            w, h = rng.uniform(20, 150), rng.uniform(40, 250)
            x, y = rng.uniform(0, 400 - w), rng.uniform(0, 300 - h)
            xs = rng.uniform(x, x + w, 17)
            ys = rng.uniform(y, y + h, 17)
            v = rng.choice([0, 1, 2], 17, p=[0.3, 0.2, 0.5])
            if rng.random() < 0.15:
                v[:] = 0
            kp = []
            for q in range(17):
                kp += [rnd(xs[q]) if v[q] else 0.0, rnd(ys[q]) if v[q] else 0.0, int(v[q])]
            crowd = 1 if rng.random() < 0.05 else 0
            anns.append({'id': aid, 'image_id': img_id, 'category_id': 1, 'iscrowd': crowd, 'bbox': [rnd(x), rnd(y), rnd(w), rnd(h)],
                         'area': rnd(w * h * 0.7), 'num_keypoints': int((v > 0).sum()), 'keypoints': kp,
                         'segmentation': [[rnd(x), rnd(y), rnd(x + w), rnd(y), rnd(x + w), rnd(y + h)]]})
            aid += 1
            for _c in range(int(rng.integers(0, 3))):
                s = rng.uniform(1, 15)
                dk = []
                for q in range(17):
                    dk += [rnd(xs[q] + rng.normal(0, s)), rnd(ys[q] + rng.normal(0, s)), 1]
                res.append({'image_id': img_id, 'category_id': 1, 'keypoints': dk, 'score': rnd(rng.uniform(0.1, 1), 2)})
        for _ in range(int(rng.integers(0, 25))):
            cx, cy = rng.uniform(0, 400), rng.uniform(0, 300)
            dk = []
            for q in range(17):
                dk += [rnd(cx + rng.normal(0, 30)), rnd(cy + rng.normal(0, 40)), 1]
            res.append({'image_id': img_id, 'category_id': 1, 'keypoints': dk, 'score': rnd(rng.uniform(0, 0.8), 2)})
    gt = {'images': images, 'annotations': anns, 'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person'}]}
    return gt, res


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261128)
    meta = {'pycocotools': pycocotools.__version__ if hasattr(pycocotools, '__version__') else 'unknown',
            'numpy': np.__version__, 'python': sys.version.split()[0]}
    try:
        from importlib.metadata import version
        meta['pycocotools'] = version('pycocotools')
    except Exception:
        pass

    # params as numpy computes them (bit patterns checked by the tests)
    with contextlib.redirect_stdout(io.StringIO()):
        P = COCOeval(iouType='bbox').params
    meta['iouThrs'] = P.iouThrs.tolist()
    meta['recThrs'] = P.recThrs.tolist()
    write('meta.json', meta)
    write('mask_api.json', mask_fixtures(rng))

    cat_ids = [1, 3, 7, 42, 90]
    gt = synthetic_gt(rng, 48, cat_ids)
    # one gt with id 0: pycocotools stores matched gt ids, so a match to id 0 reads as unmatched
    gt['annotations'][5]['id'] = 0
    write('synthetic_gt.json', gt)
    dt_bbox = perturbed_results(rng, gt, 'bbox', cat_ids, extra_cat=55)
    dt_segm = perturbed_results(rng, gt, 'segm', cat_ids)
    write('synthetic_dt_bbox.json', dt_bbox)
    write('synthetic_dt_segm.json', dt_segm)
    evals = {
        'bbox': run_eval(gt, dt_bbox, 'bbox'),
        'segm': run_eval(gt, dt_segm, 'segm'),
        'bbox_agnostic': run_eval(gt, dt_bbox, 'bbox', {'useCats': 0}),
        'bbox_subset': run_eval(gt, dt_bbox, 'bbox', {'imgIds': [g['id'] for g in gt['images'][:30]], 'catIds': [3, 42, 90],
                                                        'maxDets': [1, 5, 50]}),
        # segm results carry no bbox: pycocotools computes it from the mask; bbox eval of them
        'segm_as_bbox': run_eval(gt, dt_segm, 'bbox'),
    }
    write('synthetic_evals.json', evals)

    egt, edt = edge_cases()
    write('edge_gt.json', egt)
    write('edge_dt.json', edt)
    write('edge_evals.json', {
        'bbox': run_eval(egt, edt, 'bbox'),
        'segm_of_boxes': run_eval(egt, edt, 'segm'),
        'bbox_thresholds': run_eval(egt, edt, 'bbox', {'iouThrs': np.array([0.5, 0.75, 0.8]), 'recThrs': np.array([0.0, 0.33, 0.5, 0.9, 1.0]),
                                                        'maxDets': [1, 2, 100]}),
        'bbox_agnostic': run_eval(egt, edt, 'bbox', {'useCats': 0}),
    })

    kgt, kdt = keypoint_data(np.random.default_rng(17))
    write('keypoints_gt.json', kgt)
    write('keypoints_dt.json', kdt)
    write('keypoints_evals.json', {'keypoints': run_eval(kgt, kdt, 'keypoints'),
                                   'keypoints_maxdets': run_eval(kgt, kdt, 'keypoints', {'maxDets': [5, 20]})})

    # real COCO ground truth (coco128): perturbed boxes and masks
    with open(COCO128) as f:
        real = json.load(f)
    sha = hashlib.sha256(open(COCO128, 'rb').read()).hexdigest()
    real_cats = sorted(c['id'] for c in real['categories'])
    r_bbox = perturbed_results(rng, real, 'bbox', real_cats)
    r_segm = perturbed_results(rng, real, 'segm', real_cats)
    r_segm = r_segm[::2]  # keeps the fixture under 1 MB
    write('coco128_dt_bbox.json', r_bbox)
    write('coco128_dt_segm.json', r_segm)
    write('coco128_evals.json', {
        'gtSha256': sha,
        'bbox': run_eval(real, r_bbox, 'bbox'),
        'segm': run_eval(real, r_segm, 'segm'),
        'bbox_area_custom': run_eval(real, r_bbox, 'bbox', {'areaRng': [[0, 1e10], [0, 40 ** 2], [40 ** 2, 120 ** 2], [120 ** 2, 1e10]]}),
    })
    # annToRLE of every real annotation (polygons and crowd RLE) for a few images
    gt_coco = coco_from(real)
    rle_samples = []
    for ann in real['annotations'][:60]:
        r = gt_coco.annToRLE(ann)
        if isinstance(r['counts'], list):
            r = maskUtils.frPyObjects(r, *r['size'])
        rle_samples.append({'id': ann['id'], 'counts': r['counts'].decode('ascii') if isinstance(r['counts'], bytes) else r['counts'],
                            'area': int(maskUtils.area(r)), 'bbox': maskUtils.toBbox(r).tolist()})
    crowd = [a for a in real['annotations'] if a['iscrowd']]
    for ann in crowd[:5]:
        r = gt_coco.annToRLE(ann)
        rle_samples.append({'id': ann['id'], 'counts': r['counts'].decode('ascii'), 'area': int(maskUtils.area(r)),
                            'bbox': maskUtils.toBbox(r).tolist()})
    write('coco128_ann_rles.json', {'gtSha256': sha, 'rles': rle_samples})


def random_case(seed, out_dir):
    """Live cross-check mode: one random synthetic case (bbox, segm, keypoints) and pycocotools' stats."""
    rng = np.random.default_rng(seed)
    cat_ids = sorted(int(c) for c in rng.choice(np.arange(1, 100), int(rng.integers(1, 8)), replace=False))
    gt = synthetic_gt(rng, int(rng.integers(5, 40)), cat_ids)
    dt_bbox = perturbed_results(rng, gt, 'bbox', cat_ids)
    dt_segm = perturbed_results(rng, gt, 'segm', cat_ids)
    kgt, kdt = keypoint_data(rng)
    os.makedirs(out_dir, exist_ok=True)
    files = {'gt.json': gt, 'dt_bbox.json': dt_bbox, 'dt_segm.json': dt_segm, 'kgt.json': kgt, 'kdt.json': kdt}
    for name, obj in files.items():
        with open(os.path.join(out_dir, name), 'w') as f:
            json.dump(obj, f)
    stats = {}
    if dt_bbox:
        stats['bbox'] = run_eval(gt, dt_bbox, 'bbox')['stats']
        stats['bbox_agnostic'] = run_eval(gt, dt_bbox, 'bbox', {'useCats': 0})['stats']
    if dt_segm:
        stats['segm'] = run_eval(gt, dt_segm, 'segm')['stats']
    if kdt:
        stats['keypoints'] = run_eval(kgt, kdt, 'keypoints')['stats']
    with open(os.path.join(out_dir, 'stats.json'), 'w') as f:
        json.dump(stats, f)


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--random-case':
        random_case(int(sys.argv[2]), sys.argv[3])
    else:
        main()
