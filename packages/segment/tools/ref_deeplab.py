"""PyTorch/torchvision references for the segment package (fixtures only).

1. `deeplab_head.safetensors`: torchvision's ASPP + the DeepLabHead layout (3x3 conv, BN,
   ReLU, 1x1 classifier) at a reduced width, random weights and BN statistics, eval mode,
   applied to a random feature map. Tensors: torchvision state-dict names, plus `input`
   (NCHW) and `output` (NCHW logits).
2. `cross_entropy.safetensors`: logits / labels with ignore pixels and
   `F.cross_entropy(..., ignore_index=255)` (mean over non-ignored pixels), plus the value
   with an aux term `loss + 0.4 * aux`.

Run: /work/main/.venv-ref/bin/python packages/segment/tools/ref_deeplab.py
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools", "pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()
from torchvision.models.segmentation.deeplabv3 import ASPP  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures")


def deeplab_head():
    torch.manual_seed(0)
    cin, width, k = 8, 16, 5
    head = torch.nn.Sequential(
        ASPP(cin, [6, 12, 18], width),
        torch.nn.Conv2d(width, width, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(width),
        torch.nn.ReLU(),
        torch.nn.Conv2d(width, k, 1),
    )
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    head.eval()
    x = torch.randn(2, cin, 20, 24)
    with torch.no_grad():
        y = head(x)
    tensors = {name: t.contiguous() for name, t in head.state_dict().items() if not name.endswith("num_batches_tracked")}
    tensors["input"] = x
    tensors["output"] = y
    save_file(tensors, os.path.join(OUT, "deeplab_head.safetensors"))


def cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(2, 6, 5, 7) * 3
    aux = torch.randn(2, 6, 5, 7)
    labels = torch.randint(0, 6, (2, 5, 7))
    labels[torch.rand(2, 5, 7) < 0.3] = 255
    loss = F.cross_entropy(logits, labels, ignore_index=255)
    total = loss + 0.4 * F.cross_entropy(aux, labels, ignore_index=255)
    save_file(
        {"logits": logits, "aux": aux, "labels": labels.to(torch.int32), "loss": loss.reshape(1), "loss_with_aux": total.reshape(1)},
        os.path.join(OUT, "cross_entropy.safetensors"),
    )


if __name__ == "__main__":
    deeplab_head()
    cross_entropy()
    print("wrote", [f for f in os.listdir(OUT) if f.endswith(".safetensors")])
