"""Converts a torchvision checkpoint (.pth state dict) to safetensors for loadTorchWeights.

    /work/main/.venv-ref/bin/python packages/backbones/tools/torchvision_to_safetensors.py \
        --arch resnet18 [--pth resnet18-f37072fd.pth] --out resnet18.safetensors

Without --pth it saves the freshly initialised torchvision model (no internet here to download
pretrained weights); the layout is the same.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tools", "pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--pth")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = getattr(tv.models, args.arch)()
    if args.pth:
        model.load_state_dict(torch.load(args.pth, map_location="cpu", weights_only=True))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, args.out, metadata={"format": "pt", "arch": args.arch})
    print(f"wrote {args.out}: {len(sd)} tensors")


if __name__ == "__main__":
    main()
