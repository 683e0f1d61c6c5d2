"""PyTorch side of `nx run bench:train`: torchvision models, plain and RefConv training steps,
fused inference, in images/s. RefConv is written here for the benchmark in the official
formulation (frozen basis buffer + grouped `convmap` conv over the kernel, G = Cin*Cout/g^2).

Two modes:
- default: measures one arch/config and prints one JSON object {"torch", "threads", "row"};
- `--serve`: a step server for `bench:train`, which interleaves its own steps with ours so that
  slow phases of a shared machine hit both sides alike. It prints {"torch", "threads"}, then
  answers one JSON line per request line on stdin:
  {"what": "trainPlain" | "trainRefconv" | "inferPlain" | "inferFused"} -> {"seconds": s}
  (one step of that kind, timed here); an empty line or EOF ends it.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools", "pyref"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()


class RefConv(nn.Module):
    """W_t = W_b + convmap(W_b), W_b a frozen buffer (official RefConv code's formulation)."""

    def __init__(self, conv: nn.Conv2d, map_k: int = 3):
        super().__init__()
        out_c, in_g, k, _ = conv.weight.shape
        self.register_buffer("weight", conv.weight.detach().clone())
        self.n = out_c * in_g
        groups = conv.in_channels * conv.out_channels // (conv.groups ** 2)
        self.convmap = nn.Conv2d(self.n, self.n, map_k, 1, map_k // 2, groups=groups, bias=False)
        self.bias = conv.bias
        self.k = k
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups

    def refocused(self):
        w = self.weight.reshape(1, self.n, self.k, self.k)
        return self.weight + self.convmap(w).reshape(self.weight.shape)

    def forward(self, x):
        return F.conv2d(x, self.refocused(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def refocus(module: nn.Module, map_k: int = 3) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.kernel_size[0] >= map_k and child.kernel_size[0] % 2 == 1:
            setattr(module, name, RefConv(child, map_k))
        else:
            refocus(child, map_k)
    return module


def fuse(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, RefConv):
            conv = nn.Conv2d(child.weight.shape[1] * child.groups, child.weight.shape[0], child.k, child.stride,
                             child.padding, child.dilation, child.groups, bias=child.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(child.refocused())
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(module, name, conv)
        else:
            fuse(child)
    return module


def build(arch: str) -> nn.Module:
    return getattr(tv.models, arch)(num_classes=1000)


def train_step_fn(model, size, batch):
    """A closure running one SGD step (forward, cross-entropy, backward, momentum update)."""
    model.train()
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def infer_step_fn(model, size, batch):
    """A closure running one inference batch (eval mode, no autograd)."""
    model.eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)

    def step():
        with torch.inference_mode():
            model(x)

    return step


BUILDERS = {
    "trainPlain": lambda arch, size, batch: train_step_fn(build(arch), size, batch),
    "trainRefconv": lambda arch, size, batch: train_step_fn(refocus(build(arch)), size, batch),
    "inferPlain": lambda arch, size, batch: infer_step_fn(build(arch), size, batch),
    "inferFused": lambda arch, size, batch: infer_step_fn(fuse(refocus(build(arch))), size, batch),
}


def step_fns(arch, size, batch, only=None):
    """The step closures of every workload (or only `only`), built once."""
    return {k: b(arch, size, batch) for k, b in BUILDERS.items() if only is None or k == only}


def rate(step, batch, steps):
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def serve(fns):
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        what = json.loads(line)["what"]
        if what not in fns:
            print(json.dumps({"error": f"unknown step kind '{what}'"}), flush=True)
            continue
        t0 = time.perf_counter()
        fns[what]()
        print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--serve", action="store_true", help="answer timed-step requests on stdin (see the module doc)")
    ap.add_argument("--only", choices=["trainPlain", "trainRefconv", "inferPlain", "inferFused"], help="measure only this workload")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fns = step_fns(a.arch, a.size, a.batch, a.only)
    if a.serve:
        serve(fns)
        return
    row = {"arch": a.arch, "size": a.size, "batch": a.batch}
    for what, fn in fns.items():
        row[what] = rate(fn, a.batch, a.steps)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "row": row}))


if __name__ == "__main__":
    main()
