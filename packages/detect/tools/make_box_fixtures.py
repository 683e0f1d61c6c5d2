"""Writes test/fixtures/box_ops.json: reference outputs of torchvision's pure-Python
detection utilities (box ops, BoxCoder, Matcher, AnchorGenerator, losses) on fixed
random inputs. NMS is a naive reference here because torchvision's compiled nms is
unavailable in the reference venv.

Run from the repo root:
  .venv-ref/bin/python packages/detect/tools/make_box_fixtures.py
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tools/pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()
from torchvision.ops import boxes as box_ops  # noqa: E402
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss  # noqa: E402
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from naive_nms import naive_nms  # noqa: E402

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "../test/fixtures/box_ops.json")


def rand_boxes(n, size=100.0):
    xy = torch.rand(n, 2) * size
    wh = torch.rand(n, 2) * size * 0.5 + 1.0
    return torch.cat([xy, xy + wh], 1)


def naive_batched_nms(boxes, scores, idxs, thr):
    keep = []
    for c in sorted(set(idxs.tolist())):
        members = [i for i in range(len(idxs)) if int(idxs[i]) == c]
        sub = naive_nms(boxes[members], scores[members], thr)
        keep += [members[k] for k in sub]
    return sorted(keep, key=lambda i: (-float(scores[i]), i))


def t(x):
    return x.detach().reshape(-1).tolist()


fx = {}
a, b = rand_boxes(7), rand_boxes(5)
fx["boxes_a"], fx["boxes_b"] = t(a), t(b)
fx["box_iou"] = t(box_ops.box_iou(a, b))
fx["generalized_box_iou"] = t(box_ops.generalized_box_iou(a, b))
fx["box_area"] = t(box_ops.box_area(a))
fx["xyxy_to_cxcywh"] = t(box_ops.box_convert(a, "xyxy", "cxcywh"))
fx["xyxy_to_xywh"] = t(box_ops.box_convert(a, "xyxy", "xywh"))
fx["clip_60x40"] = t(box_ops.clip_boxes_to_image(a, (40, 60)))

# NMS: clustered boxes so that suppression actually happens
centres = rand_boxes(4)
nb = torch.cat([centres + torch.randn(4, 4) * 3 for _ in range(6)])
nb[:, 2:] = torch.maximum(nb[:, 2:], nb[:, :2] + 1)
ns = torch.rand(len(nb))
nl = torch.randint(0, 3, (len(nb),))
fx["nms_boxes"], fx["nms_scores"], fx["nms_labels"] = t(nb), t(ns), nl.tolist()
fx["nms_keep_0.5"] = naive_nms(nb, ns, 0.5)
fx["nms_keep_0.3"] = naive_nms(nb, ns, 0.3)
fx["batched_nms_keep_0.5"] = naive_batched_nms(nb, ns, nl, 0.5)

# BoxCoder
gt, anchors = rand_boxes(6), rand_boxes(6)
for name, w in [("w1111", (1.0, 1.0, 1.0, 1.0)), ("w10_10_5_5", (10.0, 10.0, 5.0, 5.0))]:
    coder = det_utils.BoxCoder(w)
    fx[f"encode_{name}"] = t(coder.encode_single(gt, anchors))
    codes = torch.randn(6, 4)
    codes[0, 2] = 9.0  # exercises the bbox_xform_clip clamp
    fx[f"codes_{name}"] = t(codes)
    fx[f"decode_{name}"] = t(coder.decode_single(codes, anchors))
fx["coder_gt"], fx["coder_anchors"] = t(gt), t(anchors)

# Matcher: IoU of gts vs. a grid of anchors, plus a tie
m_gt = rand_boxes(3)
m_pred = rand_boxes(40)
m_pred[5] = m_gt[0]
m_pred[6] = m_gt[0]
quality = box_ops.box_iou(m_gt, m_pred)
fx["matcher_quality"] = t(quality)
fx["matcher_shape"] = list(quality.shape)
fx["matcher_0.5_0.4_lowq"] = det_utils.Matcher(0.5, 0.4, True)(quality).tolist()
fx["matcher_0.7_0.3"] = det_utils.Matcher(0.7, 0.3, False)(quality).tolist()

# AnchorGenerator with torchvision RetinaNet settings, a padded 96x128 image
sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
gen = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
grids = [(12, 16), (6, 8), (3, 4), (2, 2), (1, 1)]
feats = [torch.zeros(1, 1, h, w) for h, w in grids]
anch = gen(ImageList(torch.zeros(1, 3, 96, 128), [(96, 128)]), feats)[0]
fx["anchor_image"], fx["anchor_grids"], fx["anchors"] = [96, 128], grids, t(anch)
fx["cell_anchors"] = [t(c) for c in gen.cell_anchors]

# Losses
logits = torch.randn(5, 3) * 3
targets = (torch.rand(5, 3) > 0.6).float()
fx["focal_logits"], fx["focal_targets"] = t(logits), t(targets)
fx["focal_loss"] = t(sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2, reduction="none"))
lg = logits.clone().requires_grad_(True)
sigmoid_focal_loss(lg, targets, reduction="sum").backward()
fx["focal_loss_grad"] = t(lg.grad)
x, y = torch.randn(6, 4), torch.randn(6, 4)
fx["sl1_input"], fx["sl1_target"] = t(x), t(y)
fx["smooth_l1_beta_1/9"] = t(F.smooth_l1_loss(x, y, beta=1.0 / 9, reduction="none"))
fx["smooth_l1_beta_1"] = t(F.smooth_l1_loss(x, y, beta=1.0, reduction="none"))
p1 = rand_boxes(6)
p2 = p1 + torch.randn(6, 4) * 8
p2[:, 2:] = torch.maximum(p2[:, 2:], p2[:, :2] + 1)
p2[5] = torch.tensor([500.0, 500.0, 510.0, 520.0])  # disjoint pair
fx["giou_boxes1"], fx["giou_boxes2"] = t(p1), t(p2)
fx["giou_loss"] = t(generalized_box_iou_loss(p1, p2, reduction="none"))
pg = p1.clone().requires_grad_(True)
generalized_box_iou_loss(pg, p2, reduction="sum").backward()
fx["giou_loss_grad"] = t(pg.grad)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "torchvision": tv.__version__, **fx}, f)
print("wrote", os.path.normpath(OUT))

# ---- RoIAlign (torchvision's pure-python _roi_align; boxes kept inside the map, where it
# agrees with the compiled kernel) and the FPN level mapper -> test/fixtures/roi_align.json
from torchvision.ops.roi_align import _roi_align  # noqa: E402
from torchvision.ops.poolers import LevelMapper  # noqa: E402

feat = torch.randn(2, 3, 9, 11)
rois = torch.tensor([[0, 1.0, 2.0, 30.0, 20.0], [1, 0.0, 0.0, 43.0, 35.0], [0, 10.5, 6.2, 14.0, 9.0], [1, 20.0, 3.0, 21.0, 4.0]])
fr = feat.clone().requires_grad_(True)
outs = {}
for aligned in (False, True):
    o = _roi_align(fr, rois, 0.25, 3, 2, 2, aligned)
    weights = torch.linspace(-1, 1, o.numel()).reshape(o.shape)
    (g,) = torch.autograd.grad((o * weights).sum(), fr)
    outs[str(aligned)] = {"out_nhwc": t(o.permute(0, 2, 3, 1)), "out_shape": list(o.permute(0, 2, 3, 1).shape),
                          "loss_weights_nhwc": t(weights.permute(0, 2, 3, 1)), "grad_nhwc": t(g.permute(0, 2, 3, 1))}
lm_boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 112, 112], [0, 0, 224, 224], [0, 0, 447, 447], [0, 0, 448, 448], [0, 0, 2000, 900.0]])
with open(os.path.join(os.path.dirname(OUT), "roi_align.json"), "w") as f:
    json.dump({"feature_nhwc": t(feat.permute(0, 2, 3, 1)), "feature_shape": [2, 9, 11, 3], "rois": t(rois), **outs,
               "level_boxes": t(lm_boxes), "levels_2_5": t(LevelMapper(2, 5)([lm_boxes]) + 2)}, f)
print("wrote roi_align.json")
