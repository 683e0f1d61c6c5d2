"""Greedy NMS written out as a plain loop: the reference both fixture scripts use, because
torchvision's compiled `nms` op is missing from the reference venv."""
from torchvision.ops import boxes as box_ops


def naive_nms(boxes, scores, thr):
    """Indices kept, by decreasing score (ties by index); a box is dropped when IoU > thr."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep, removed = [], set()
    iou = box_ops.box_iou(boxes, boxes)
    for a, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            if float(iou[i, j]) > thr:
                removed.add(j)
    return keep
