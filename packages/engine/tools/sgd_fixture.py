"""Writes test/fixtures/sgd_torch.json: torch.optim.SGD trajectories for the engine's SGD test.

Gradients are fixed random tensors (not autodiff) so the fixture checks the update rule alone.
Run: /work/main/.venv-ref/bin/python packages/engine/tools/sgd_fixture.py
"""
import json
import pathlib

import torch

torch.manual_seed(0)
OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "sgd_torch.json"

CASES = [
    dict(name="nesterov_wd_no_bias_decay", momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-2, decay_bias=False),
    dict(name="momentum_dampening_wd_all", momentum=0.8, dampening=0.3, nesterov=False, weight_decay=5e-3, decay_bias=True),
    dict(name="plain_sgd", momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, decay_bias=True),
]
LRS = [0.1, 0.05, 0.2, 0.01, 0.1]

cases = []
for c in CASES:
    w0 = torch.randn(3, 4)
    b0 = torch.randn(4)
    grads = [(torch.randn(3, 4), torch.randn(4)) for _ in LRS]
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    groups = [{"params": [w], "weight_decay": c["weight_decay"]},
              {"params": [b], "weight_decay": c["weight_decay"] if c["decay_bias"] else 0.0}]
    opt = torch.optim.SGD(groups, lr=LRS[0], momentum=c["momentum"], dampening=c["dampening"], nesterov=c["nesterov"])
    traj = []
    for lr, (gw, gb) in zip(LRS, grads):
        for g in opt.param_groups:
            g["lr"] = lr
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
        traj.append({"w": w.detach().flatten().tolist(), "b": b.detach().flatten().tolist()})
    cases.append({**c, "lrs": LRS, "w0": w0.flatten().tolist(), "b0": b0.tolist(),
                  "grads": [{"w": gw.flatten().tolist(), "b": gb.tolist()} for gw, gb in grads],
                  "trajectory": traj,
                  "momentum_buffer_w": opt.state[w]["momentum_buffer"].flatten().tolist() if c["momentum"] else None})
OUT.write_text(json.dumps({"torch": torch.__version__, "cases": cases}))
print("wrote", OUT)
