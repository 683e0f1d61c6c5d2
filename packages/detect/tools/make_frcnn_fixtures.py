"""Writes test/fixtures/fasterrcnn.json: torchvision's own RPN and RoI-head code
(`RegionProposalNetwork.filter_proposals / assign_targets_to_anchors / compute_loss`,
`RoIHeads.select_training_samples / postprocess_detections`, `fastrcnn_loss`) run on fixed
random predictions, with the losses' gradients from autograd.

Two substitutions make the reference runnable and deterministic, and the JS test mirrors them:
- `torch.randperm` is the identity, so the balanced sampler takes the first positives and
  negatives in index order (the JS test passes the same identity permutation);
- `torchvision.ops.boxes.nms` (a compiled op missing from the reference venv) is the naive greedy
  NMS of `naive_nms.py`.

Run from the repo root:
  .venv-ref/bin/python packages/detect/tools/make_frcnn_fixtures.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../tools/pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()
import torchvision.ops.boxes as box_ops  # noqa: E402
from torchvision.models.detection import roi_heads as tv_roi  # noqa: E402
from torchvision.models.detection import rpn as tv_rpn  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from naive_nms import naive_nms  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "../test/fixtures/fasterrcnn.json")


box_ops.nms = lambda boxes, scores, thr: torch.tensor(naive_nms(boxes, scores, thr), dtype=torch.int64)
torch.randperm = lambda n, **kw: torch.arange(n, device=kw.get("device"))
torch.manual_seed(0)


def t(x):
    return x.detach().reshape(-1).tolist()


fx = {}
# Two images in a 64x64 padded batch; level grids as P2..P3 of a tiny FPN.
image_sizes = [(64, 64), (64, 48)]
grids = [(8, 8), (4, 4)]
gen = AnchorGenerator(((16,), (32,)), ((0.5, 1.0, 2.0),) * 2)
anchors = gen(ImageList(torch.zeros(2, 3, 64, 64), image_sizes), [torch.zeros(2, 1, h, w) for h, w in grids])
A = anchors[0]
T = A.shape[0]
levels = [h * w * 3 for h, w in grids]
gt = [
    {"boxes": torch.tensor([[4.0, 6.0, 20.0, 22.0], [30.0, 10.0, 62.0, 40.0]]), "labels": torch.tensor([2, 1])},
    {"boxes": torch.tensor([[10.0, 10.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
]
objectness = (torch.randn(2 * T) * 2).requires_grad_()
deltas = (torch.randn(2 * T, 4) * 0.3).requires_grad_()
fx["image_sizes"], fx["grids"], fx["level_sizes"] = image_sizes, grids, levels
fx["anchors"], fx["objectness"], fx["deltas"] = t(A), t(objectness), t(deltas)
fx["gt_boxes"] = [t(g["boxes"]) for g in gt]
fx["gt_labels"] = [(g["labels"] - 1).tolist() for g in gt]  # contiguous 0..K-1 on the JS side

rpn = tv_rpn.RegionProposalNetwork(
    gen, None, fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=32, positive_fraction=0.5,
    pre_nms_top_n=dict(training=40, testing=40), post_nms_top_n=dict(training=30, testing=30), nms_thresh=0.7)
rpn.train()
proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(2, -1, 4)
boxes, scores = rpn.filter_proposals(proposals, objectness.detach(), image_sizes, levels)
fx["rpn"] = {"pre_nms_top_n": 40, "post_nms_top_n": 30, "nms_thresh": 0.7, "batch_size_per_image": 32, "positive_fraction": 0.5}
fx["proposals"] = [t(b) for b in boxes]
labels, matched = rpn.assign_targets_to_anchors(anchors, gt)
targets = rpn.box_coder.encode(matched, anchors)
loss_obj, loss_box = rpn.compute_loss(objectness, deltas, labels, targets)
g_obj, g_deltas = torch.autograd.grad(loss_obj + loss_box, [objectness, deltas])
fx["loss_objectness"], fx["loss_rpn_box_reg"] = float(loss_obj.detach()), float(loss_box.detach())
fx["grad_objectness"], fx["grad_deltas"] = t(g_obj), t(g_deltas)

K1 = 3
roi = tv_roi.RoIHeads(None, None, None, 0.5, 0.5, 24, 0.25, None, 0.05, 0.5, 100)
roi.train()
props, _, roi_labels, reg_targets = roi.select_training_samples([b.clone() for b in boxes], gt)
fx["roi"] = {"batch_size_per_image": 24, "positive_fraction": 0.25}
fx["roi_boxes"] = [t(p) for p in props]
fx["roi_labels"] = torch.cat(roi_labels).tolist()
fx["roi_regression_targets"] = t(torch.cat(reg_targets))
R = sum(len(p) for p in props)
class_logits = torch.randn(R, K1).requires_grad_()
box_regression = (torch.randn(R, 4 * K1) * 0.5).requires_grad_()
loss_cls, loss_reg = tv_roi.fastrcnn_loss(class_logits, box_regression, roi_labels, reg_targets)
g_cls, g_reg = torch.autograd.grad(loss_cls + loss_reg, [class_logits, box_regression])
fx["class_logits"], fx["box_regression"] = t(class_logits), t(box_regression)
fx["loss_classifier"], fx["loss_box_reg"] = float(loss_cls.detach()), float(loss_reg.detach())
fx["grad_class_logits"], fx["grad_box_regression"] = t(g_cls), t(g_reg)

# Inference post-processing of image 0's proposals with confident logits, so detections survive.
n0 = len(boxes[0])
test_logits = torch.randn(n0, K1) * 3
test_reg = torch.randn(n0, 4 * K1) * 0.5
det_boxes, det_scores, det_labels = roi.postprocess_detections(test_logits, test_reg, [boxes[0]], [image_sizes[0]])
fx["test_logits"], fx["test_box_regression"] = t(test_logits), t(test_reg)
fx["det_boxes"], fx["det_scores"] = t(det_boxes[0]), t(det_scores[0])
fx["det_labels"] = (det_labels[0] - 1).tolist()

with open(OUT, "w") as f:
    json.dump(fx, f)
print(f"wrote {OUT}: T={T}, proposals {[len(b) for b in boxes]}, sampled RoIs {R}, "
      f"positive anchors {int(sum((l == 1).sum() for l in labels))}, detections {len(det_scores[0])}")
