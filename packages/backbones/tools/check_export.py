"""Loads the files written by examples/roundtrip.ts back into PyTorch and compares logits.

    /work/main/.venv-ref/bin/python packages/backbones/tools/check_export.py --arch resnet18 --dir /tmp/roundtrip

- fused.safetensors goes into the plain torchvision model with load_state_dict(strict=True);
- refconv.safetensors goes into the same model with every conv that has a convmap replaced by
  the official RepConv module (strict=True as well).
Both must reproduce the eval-mode logits the TypeScript side saved in check.safetensors.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import refocus_official, tv  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    check = load_file(os.path.join(args.dir, "check.safetensors"))
    x, want = check["input_nchw"], check["logits"]

    fused_sd = load_file(os.path.join(args.dir, "fused.safetensors"))
    model = getattr(tv.models, args.arch)(num_classes=want.shape[1]).eval()
    model.load_state_dict(fused_sd, strict=True)
    with torch.no_grad():
        got = model(x)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    print(f"fused.safetensors   -> torchvision {args.arch}: max rel diff {rel:.2e}")

    ref_sd = load_file(os.path.join(args.dir, "refconv.safetensors"))
    names = {k[: -len(".convmap.weight")] for k in ref_sd if k.endswith(".convmap.weight")}
    model = getattr(tv.models, args.arch)(num_classes=want.shape[1])
    refocus_official(model, lambda name, conv: name in names)
    model.eval().load_state_dict(ref_sd, strict=True)
    with torch.no_grad():
        got_ref = model(x)
    rel_ref = ((got_ref - want).abs().max() / want.abs().max()).item()
    print(f"refconv.safetensors -> torchvision {args.arch} + official RepConv ({len(names)} layers): max rel diff {rel_ref:.2e}")
    if max(rel, rel_ref) > 1e-4:
        sys.exit(f"mismatch above 1e-4")


if __name__ == "__main__":
    main()
