"""Reference fixtures for @refconv/analysis' tests, computed with PyTorch (independent of tfjs).

    /work/main/.venv-ref/bin/python packages/analysis/tools/make_fixtures.py

(the venv: `bash packages/bench/tools/setup-venv.sh`). Writes test/fixtures/attacks.json:
a tiny fixed-weight model (conv 3x3 2->4 + BN in eval mode (eps 1e-3, tfjs' default) + ReLU +
global average pool + linear 4->3), a batch of normalised images, and FGSM / PGD adversarial
examples (L-inf, in the normalised input space, clamped to the image box [(0-mean)/std, (1-mean)/std]
per channel, no random start) as torchattacks / Madry et al. define them:
  FGSM: x' = clip_box(x + eps * sign(grad_x CE(f(x), y)))
  PGD:  x_0 = x; x_{t+1} = clip_box(clip_[x-eps, x+eps](x_t + alpha * sign(grad_x CE(f(x_t), y))))
Weights and images are stored in tfjs layouts (conv [kh, kw, in, out], dense [in, out], NHWC).

Also test/fixtures/landscape.json: two raw random directions for the same model, the same
directions after Li et al.'s filter normalisation as their code does it
(loss-landscape/net_plotter.py normalize_direction, 'filter', ignore='biasbn': per row of the
PyTorch-layout tensor d *= ||w|| / (||d|| + 1e-10); 1-D tensors zeroed) and the loss
CE(f_{theta + a d1 + b d2}(x), y) with BN in eval mode at a few (a, b).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(16)
N, H, W, CIN, C, K = 6, 6, 6, 2, 4, 3
mean = np.array([0.3, 0.5])
std = np.array([0.2, 0.25])

conv_w = rng.normal(0, 0.5, (C, CIN, 3, 3))
conv_b = rng.normal(0, 0.1, C)
gamma = rng.uniform(0.5, 1.5, C)
beta = rng.normal(0, 0.2, C)
rmean = rng.normal(0, 0.3, C)
rvar = rng.uniform(0.5, 2.0, C)
fc_w = rng.normal(0, 1.0, (K, C))
fc_b = rng.normal(0, 0.1, K)
pixels = rng.uniform(0, 1, (N, CIN, H, W))
x = (pixels - mean[None, :, None, None]) / std[None, :, None, None]
labels = rng.integers(0, K, N)

lo = torch.tensor(((0 - mean) / std)[None, :, None, None])
hi = torch.tensor(((1 - mean) / std)[None, :, None, None])


def model(t):
    h = F.conv2d(t, torch.tensor(conv_w), torch.tensor(conv_b), padding=1)
    h = F.batch_norm(h, torch.tensor(rmean), torch.tensor(rvar), torch.tensor(gamma), torch.tensor(beta), training=False, eps=1e-3)
    h = F.relu(h)
    h = h.mean(dim=(2, 3))
    return F.linear(h, torch.tensor(fc_w), torch.tensor(fc_b))


def grad_sign(t, y):
    t = t.clone().requires_grad_(True)
    loss = F.cross_entropy(model(t), y)
    (g,) = torch.autograd.grad(loss, t)
    return g.sign(), g


def box(t):
    return torch.maximum(torch.minimum(t, hi), lo)


def fgsm(x0, y, eps):
    s, _ = grad_sign(x0, y)
    return box(x0 + eps * s)


def pgd(x0, y, eps, alpha, steps):
    xa = x0.clone()
    for _ in range(steps):
        s, _ = grad_sign(xa, y)
        xa = xa + alpha * s
        xa = torch.maximum(torch.minimum(xa, x0 + eps), x0 - eps)
        xa = box(xa)
    return xa


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).reshape(-1).tolist()


xt = torch.tensor(x)
yt = torch.tensor(labels)
_, g = grad_sign(xt, yt)
attacks = []
for eps in [0.1, 0.3]:
    xa = fgsm(xt, yt, eps)
    attacks.append({"kind": "fgsm", "eps": eps, "x": nhwc(xa), "pred": model(xa).argmax(1).tolist()})
for eps, alpha, steps in [(0.3, 0.1, 4), (0.5, 0.2, 3)]:
    xa = pgd(xt, yt, eps, alpha, steps)
    attacks.append({"kind": "pgd", "eps": eps, "alpha": alpha, "steps": steps, "x": nhwc(xa), "pred": model(xa).argmax(1).tolist()})

out = {
    "shape": [N, H, W, CIN],
    "mean": mean.tolist(),
    "std": std.tolist(),
    "weights": {
        "conv/kernel": conv_w.transpose(2, 3, 1, 0).reshape(-1).tolist(),
        "conv/bias": conv_b.tolist(),
        "bn/gamma": gamma.tolist(),
        "bn/beta": beta.tolist(),
        "bn/moving_mean": rmean.tolist(),
        "bn/moving_variance": rvar.tolist(),
        "fc/kernel": fc_w.T.reshape(-1).tolist(),
        "fc/bias": fc_b.tolist(),
    },
    "x": nhwc(xt),
    "labels": labels.tolist(),
    "cleanPred": model(xt).argmax(1).tolist(),
    "gradAbsMin": float(g.abs().min()),
    "attacks": attacks,
}
path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "attacks.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path), "min |grad| =", out["gradAbsMin"], "clean", out["cleanPred"], "labels", labels.tolist(), [a["pred"] for a in attacks])


# ---- loss landscape (Li et al. 2018) ----
torch_w = {"conv/kernel": conv_w, "conv/bias": conv_b, "bn/gamma": gamma, "bn/beta": beta, "fc/kernel": fc_w, "fc/bias": fc_b}
to_tfjs = {"conv/kernel": lambda a: a.transpose(2, 3, 1, 0), "fc/kernel": lambda a: a.T}


def li_normalize(d, w):
    """net_plotter.normalize_directions_for_weights(direction, weights, 'filter', 'biasbn')."""
    d = torch.tensor(d).clone()
    w = torch.tensor(w)
    if d.dim() <= 1:
        return d.fill_(0).numpy()
    for df, wf in zip(d, w):
        df.mul_(wf.norm() / (df.norm() + 1e-10))
    return d.numpy()


dirs_raw, dirs_norm = [], []
for _ in range(2):
    raw = {k: rng.normal(0, 1, v.shape) for k, v in torch_w.items()}
    norm = {k: li_normalize(raw[k], torch_w[k]) for k in torch_w}
    dirs_raw.append({k: to_tfjs.get(k, lambda a: a)(v).reshape(-1).tolist() for k, v in raw.items()})
    dirs_norm.append({k: to_tfjs.get(k, lambda a: a)(v).reshape(-1).tolist() for k, v in norm.items()})


def loss_at(a, b, dn):
    p = {k: torch.tensor(torch_w[k] + a * dn[0][k] + b * dn[1][k]) for k in torch_w}
    h = F.conv2d(xt, p["conv/kernel"], p["conv/bias"], padding=1)
    h = F.batch_norm(h, torch.tensor(rmean), torch.tensor(rvar), p["bn/gamma"], p["bn/beta"], training=False, eps=1e-3)
    out = F.linear(F.relu(h).mean(dim=(2, 3)), p["fc/kernel"], p["fc/bias"])
    return float(F.cross_entropy(out, yt)), float((out.argmax(1) == yt).double().mean() * 100)


# recompute normalised directions in torch layout from the stored raw ones (same values as dirs_norm)
dn_torch = []
for dr in dirs_raw:
    t = {}
    for k, v in torch_w.items():
        raw = np.array(dr[k])
        if k == "conv/kernel":
            raw = raw.reshape(3, 3, CIN, C).transpose(3, 2, 0, 1)
        elif k == "fc/kernel":
            raw = raw.reshape(C, K).T
        t[k] = li_normalize(raw, v)
    dn_torch.append(t)
points = [(0.0, 0.0), (-0.5, 0.5), (0.3, 0.2), (1.0, -1.0)]
land = {
    "directionsRaw": dirs_raw,
    "directionsNormalized": dirs_norm,
    "points": [{"a": a, "b": b, "loss": loss_at(a, b, dn_torch)[0], "top1": loss_at(a, b, dn_torch)[1]} for a, b in points],
}
lpath = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "landscape.json")
with open(lpath, "w") as f:
    json.dump(land, f)
print("wrote", os.path.normpath(lpath), [(p["a"], p["b"], round(p["loss"], 4)) for p in land["points"]])
