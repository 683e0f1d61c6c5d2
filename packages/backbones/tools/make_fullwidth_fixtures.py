"""Full-width ResNet-50 / ResNet-101 parity fixtures, made with PyTorch + torchvision.

Run from the repository root (the tests read the committed JSON files):

    .venv-ref/bin/python packages/backbones/tools/make_fullwidth_fixtures.py

Full-width weights are 100-180 MB, too large to commit. So every weight, BN statistic and the
input are a *formula* of their name and index (see `stream`), which the TypeScript test computes
the same way (`test/fullwidth/streams.ts`): the fixture only has to hold the state-dict layout
that torchvision defines (names and shapes, which the test writes out as a torchvision-format
safetensors file and loads through `loadTorchWeights`) and what PyTorch computed:

    eval-mode logits [2, 1000] at 224 px,
    one training step with train-mode BN (batch statistics) and one with eval-mode BN (frozen, as
    detectors fine-tune), softmax cross-entropy on labels [3, 917]: the loss, and per parameter
    the gradient's L2 norm and K = 4 projections <grad, r_k> on formula tensors r_k (a wrong
    gradient moves the projections; storing 44 M gradient values would not fit).

The reference is PyTorch in float64. A train-mode step of a deep, randomly initialised ResNet
is ill-conditioned (batch-statistics BN over near-constant channels, ReLU sign flips): PyTorch's
own float32 step lands 1.5-3.5 % from float64 in the median tensor (the eval-mode step ~5e-4). So the fixture also stores how
far PyTorch float32 lands (`torch32*`), and the test holds ours to the same standard.

Writes test/fixtures/fullwidth_<arch>.json.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()

OUT = os.path.join(HERE, "..", "test", "fixtures")
PROJECTIONS = 4
LABELS = [3, 917]


def fnv1a(name: str) -> int:
    h = 2166136261
    for ch in name.encode("utf-8"):
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def stream(name: str, size: int) -> np.ndarray:
    """Uniform values in [-1, 1) (float64): lowbias32 of (i * 0x9E3779B1 + fnv1a(name)) mod 2^32."""
    i = np.arange(size, dtype=np.uint64)
    x = ((i * np.uint64(0x9E3779B1) + np.uint64(fnv1a(name))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return (x.astype(np.float64) / 4294967296.0) * 2.0 - 1.0


def value_of(name: str, shape) -> np.ndarray:
    """The formula for one state-dict entry (float32), mirrored in test/fullwidth/streams.ts."""
    size = int(np.prod(shape))
    u = stream(name, size)
    if len(shape) == 4 or len(shape) == 2:  # conv / linear weight: He-uniform bound
        fan_in = int(np.prod(shape[1:]))
        v = u * np.sqrt(6.0 / fan_in)
    elif name.endswith("running_var"):
        v = 1.0 + 0.5 * u
    elif name.endswith("running_mean"):
        v = 0.1 * u
    elif name.endswith(".bias"):
        v = 0.1 * u
    elif "bn3" in name or "downsample.1" in name:  # last BN of a residual branch: small gamma
        v = 0.2 + 0.1 * u
    else:
        v = 1.0 + 0.2 * u
    return v.astype(np.float32).reshape(shape)


def build(arch: str, dtype):
    model = getattr(tv.models, arch)(weights=None, num_classes=1000)
    layout = []
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            layout.append({"key": key, "shape": list(t.shape)})
            t.copy_(torch.from_numpy(value_of(key, list(t.shape))))
    return model.to(dtype), layout


def run(arch: str, dtype):
    """Eval-mode logits, and a training step's loss and per-parameter gradients (float64 arrays)."""
    model, layout = build(arch, dtype)
    x = torch.from_numpy(stream("input", 2 * 3 * 224 * 224).astype(np.float32).reshape(2, 3, 224, 224)).to(dtype)
    model.eval()
    with torch.no_grad():
        logits = model(x).double().numpy()
    steps = {}
    # eval first: the train-mode forward updates the BN running statistics (as in TypeScript).
    for mode in ("eval", "train"):
        model.train(mode == "train")
        model.zero_grad()
        loss = F.cross_entropy(model(x), torch.tensor(LABELS))
        loss.backward()
        steps[mode] = (float(loss.detach()), {k: p.grad.detach().double().numpy().ravel() for k, p in model.named_parameters()})
    return layout, logits, steps


def projections(key: str, g: np.ndarray):
    return [float(np.dot(g, stream(f"proj/{k}/{key}", g.size))) for k in range(PROJECTIONS)]


def projection_error(g_proj, ref_proj, ref_norm):
    """The test's metric: ||P g - P g_ref|| / (||g_ref|| * 0.58 * sqrt(K)), about ||g - g_ref|| / ||g_ref||."""
    d = np.linalg.norm(np.array(g_proj) - np.array(ref_proj))
    return float(d / (ref_norm * 0.58 * np.sqrt(len(ref_proj))))


def make(arch: str):
    torch.set_num_threads(2)
    layout, logits64, steps64 = run(arch, torch.float64)
    _, logits32, steps32 = run(arch, torch.float32)
    scale = float(np.abs(logits64).max())
    out = {
        "arch": arch,
        "torch": torch.__version__,
        "torchvision": tv.__version__,
        "reference": "float64 (PyTorch double); torch32* = PyTorch float32 against it",
        "input": "stream('input', [2, 3, 224, 224]) NCHW",
        "labels": LABELS,
        "layout": layout,
        "logits": logits64.tolist(),
        "torch32LogitsError": float(np.abs(logits32 - logits64).max() / scale),
        "steps": {},
    }
    for mode in ("train", "eval"):
        loss64, grads64 = steps64[mode]
        loss32, grads32 = steps32[mode]
        grads = {}
        for key, g in grads64.items():
            ref = projections(key, g)
            norm = float(np.linalg.norm(g))
            # How far PyTorch's own float32 step lands from float64 on this tensor (the test's metric).
            grads[key] = {"norm": norm, "projections": ref, "torch32Error": projection_error(projections(key, grads32[key]), ref, norm)}
        out["steps"][mode] = {"loss": loss64, "torch32Loss": loss32, "grads": grads}
        errs = sorted(v["torch32Error"] for v in grads.values())
        print(arch, mode, "loss", loss64, "torch32 gradient errors median / max", errs[len(errs) // 2], errs[-1])
    path = os.path.join(OUT, f"fullwidth_{arch}.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(path, "torch32 logits error", out["torch32LogitsError"])


if __name__ == "__main__":
    for arch in sys.argv[1:] or ["resnet50", "resnet101"]:
        make(arch)
