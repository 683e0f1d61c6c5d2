"""Reference fixtures for @refconv/backbones, made with PyTorch + torchvision.

Run from the repository root (never needed by the tests, which read the committed files):

    /work/main/.venv-ref/bin/python packages/backbones/tools/make_fixtures.py

For every backbone family it builds a small PyTorch model (torchvision's own classes where one
exists: ResNet narrowed through its constructor, MobileNetV2/V3 with width_mult, ShuffleNetV2
x0_5; the CIFAR ResNet and MobileNetV1 have no torchvision class and are defined below), gives it
random weights and random BatchNorm statistics, rounds every float to float16 precision (so the
weights can be stored as F16 and still be exactly what produced the logits), and writes

    test/fixtures/<case>.weights.safetensors   state dict (F16 floats, I64 num_batches_tracked)
    test/fixtures/<case>.io.safetensors        input (NCHW float32), eval-mode logits, and for
                                               some cases the C2..C5 feature maps (NCHW)
    test/fixtures/cases.json                   createModel options of each case
    test/fixtures/reference-counts.json        parameter counts and conv/linear MACs of every
                                               registered architecture at its default config

Two cases are refocused in the official RefConv format (`<name>.weight` basis buffer +
`<name>.convmap.weight`), using a RepConv module written after the paper's published code.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "pyref"))
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

OUT = os.path.join(HERE, "..", "test", "fixtures")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(1234)


# ---------------------------------------------------------------------------------------------
# Reference modules
# ---------------------------------------------------------------------------------------------
class NarrowResNet(ResNet):
    """torchvision ResNet with every stage width scaled by base/64 (stem included)."""

    def __init__(self, block, layers, base=64, in_ch=3, num_classes=1000, **kw):
        self._base = base
        self._scaled = False
        super().__init__(block, layers, num_classes=num_classes, **kw)
        self.conv1 = nn.Conv2d(in_ch, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.fc = nn.Linear(base * 8 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if not self._scaled:  # the first stage starts from the scaled stem width
            self.inplanes = self._base
            self._scaled = True
        return super()._make_layer(block, planes * self._base // 64, blocks, stride, dilate)


class CifarBlock(nn.Module):
    """He et al. 2016 CIFAR BasicBlock with the parameter-free option-A shortcut."""

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = None
        if stride != 1 or inp != planes:
            extra = planes - inp
            self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.pad is not None:
            sc = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad[0], self.pad[1]))
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, n, base=16, in_ch=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, base, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        inp = base
        for s in range(3):
            planes = base * 2 ** s
            blocks = []
            for i in range(n):
                blocks.append(CifarBlock(inp, planes, 2 if s > 0 and i == 0 else 1))
                inp = planes
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inp, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean([2, 3]))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, the usual PyTorch Sequential layout, ReLU, int(c * alpha) channels."""

    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
              (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, alpha=1.0, in_ch=3, num_classes=1000):
        super().__init__()
        c = int(32 * alpha)
        layers = [nn.Sequential(nn.Conv2d(in_ch, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))]
        for out, s in self.BLOCKS:
            o = int(out * alpha)
            layers.append(nn.Sequential(
                nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)))
            c = o
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))


class RepConv(nn.Module):
    """The official RefConv layer (paper appendix / github Aiolus-X/RefConv), re-typed: a frozen
    basis buffer `weight` and a `convmap` conv over the kernel seen as an N-channel image."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, groups=1, map_k=3):
        super().__init__()
        self.origin_kernel_shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.register_buffer("weight", torch.zeros(*self.origin_kernel_shape))
        G = in_channels * out_channels // (groups ** 2)
        self.num_2d_kernels = out_channels * in_channels // groups
        self.kernel_size = kernel_size
        self.convmap = nn.Conv2d(self.num_2d_kernels, self.num_2d_kernels, map_k, 1, map_k // 2, groups=G, bias=False)
        self.stride, self.padding, self.groups = stride, padding, groups

    def forward(self, x):
        origin = self.weight.view(1, self.num_2d_kernels, self.kernel_size, self.kernel_size)
        kernel = self.weight + self.convmap(origin).view(*self.origin_kernel_shape)
        return F.conv2d(x, kernel, stride=self.stride, padding=self.padding, groups=self.groups)


def refocus_official(model, select):
    """Replaces the selected Conv2d modules by RepConv holding their kernel as basis."""
    for name, m in list(model.named_modules()):
        if not isinstance(m, nn.Conv2d) or not select(name, m):
            continue
        rc = RepConv(m.in_channels, m.out_channels, m.kernel_size[0], m.stride, m.padding, m.groups, map_k=3)
        rc.weight.copy_(m.weight.detach())
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        setattr(parent, name.rsplit(".", 1)[-1], rc)
    return model


# ---------------------------------------------------------------------------------------------
# Randomisation and saving
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def randomise(model):
    """Random BN affine + running statistics, small random biases, then float16 rounding."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.num_batches_tracked.fill_(3)
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    for t in list(model.state_dict().values()):
        if t.is_floating_point():
            t.copy_(t.half().float())
    return model


def save_case(name, model, opts, in_shape, features=None, weights_of=None):
    """features: optional callable(model, x) -> list of NCHW maps (C2..C5).
    weights_of: name of an earlier case whose weight file this model shares (not written again)."""
    model.eval()
    x = torch.randn(*in_shape, generator=torch.Generator().manual_seed(11))
    weights = weights_of or name
    if weights_of is None:
        sd = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
        save_file(sd, os.path.join(OUT, f"{name}.weights.safetensors"), metadata={"case": name})
    io = {"input_nchw": x.contiguous()}
    with torch.no_grad():
        io["logits"] = model(x).contiguous()
        if features is not None:
            for i, f in enumerate(features(model, x)):
                io[f"C{i + 2}"] = f.contiguous()
    save_file(io, os.path.join(OUT, f"{name}.io.safetensors"))
    size = os.path.getsize(os.path.join(OUT, f"{weights}.weights.safetensors"))
    print(f"{name:32s} params={sum(p.numel() for p in model.parameters()):>9d} weights={size / 1e6:.2f} MB "
          f"logits[0,:3]={io['logits'][0, :3].tolist()}")
    return {"options": opts, "weights": f"{weights}.weights.safetensors", "io": f"{name}.io.safetensors",
            "features": features is not None}


def resnet_features(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    out = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        out.append(x)
    return out


def feature_taps(indices):
    def run(model, x):
        out = []
        for i, block in enumerate(model.features):
            x = block(x)
            if i in indices:
                out.append(x)
        return out
    return run


def make_train_fixture():
    """One training-mode step of the MobileNetV2 case (dropout off): batch-statistics BN forward,
    cross-entropy gradients of every parameter, and the updated BN running means.

    float32 rounding differs between PyTorch and TensorFlow at the 1e-5 level, so a ReLU6 input
    that close to 0 or 6 can fall on different sides and flip one gradient term (this input has
    one such element on the last 3x3 map); the test's tolerances account for it.
    """
    nc = 10
    m = tv.models.mobilenet_v2(width_mult=0.25, num_classes=nc, dropout=0.0)
    from safetensors.torch import load_file
    m.load_state_dict({k: v.float() if v.is_floating_point() else v
                       for k, v in load_file(os.path.join(OUT, "mobilenet_v2_w025.weights.safetensors")).items()})
    m.train()
    seed = 21
    x = torch.randn(4, 3, 67, 67, generator=torch.Generator().manual_seed(seed))
    labels = torch.tensor([1, 7, 3, 3])
    logits = m(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    train = {"input_nchw": x, "labels": labels.to(torch.int32), "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for k, p in m.named_parameters():
        train[f"grad.{k}"] = p.grad.detach().contiguous()
    for k, b in m.named_buffers():
        if k.endswith("running_mean"):
            train[f"after.{k}"] = b.detach().contiguous()
    save_file(train, os.path.join(OUT, "mobilenet_v2_w025.train.safetensors"), metadata={"seed": str(seed)})
    print(f"train step: input seed {seed}, loss {loss.item():.5f}, {sum(1 for k in train if k.startswith('grad.'))} gradients")


def main():
    cases = {}
    nc = 10

    # ResNet family: torchvision classes, widths scaled by 1/8.
    m = randomise(NarrowResNet(BasicBlock, [2, 2, 2, 2], base=8, num_classes=nc))
    cases["resnet18_w0125"] = save_case("resnet18_w0125", m, {"arch": "resnet18", "width": 0.125, "numClasses": nc, "inputSize": 65},
                                        (2, 3, 65, 65), resnet_features)
    m = randomise(NarrowResNet(Bottleneck, [3, 4, 6, 3], base=8, num_classes=nc))
    cases["resnet50_w0125"] = save_case("resnet50_w0125", m, {"arch": "resnet50", "width": 0.125, "numClasses": nc, "inputSize": 64},
                                        (2, 3, 64, 64), resnet_features)
    # Same weights, DeepLab-style output stride 8 (torchvision replace_stride_with_dilation).
    m8 = NarrowResNet(Bottleneck, [3, 4, 6, 3], base=8, num_classes=nc, replace_stride_with_dilation=[False, True, True])
    m8.load_state_dict(m.state_dict())
    cases["resnet50_w0125_os8"] = save_case("resnet50_w0125_os8", m8,
                                            {"arch": "resnet50", "width": 0.125, "numClasses": nc, "inputSize": 64, "outputStride": 8},
                                            (2, 3, 64, 64), resnet_features, weights_of="resnet50_w0125")

    m = randomise(CifarResNet(3, base=16, num_classes=nc))
    cases["cifar_resnet20"] = save_case("cifar_resnet20", m, {"arch": "cifar_resnet20", "numClasses": nc, "inputSize": 32}, (2, 3, 32, 32))

    m = randomise(tv.models.mobilenet_v2(width_mult=0.25, num_classes=nc))
    cases["mobilenet_v2_w025"] = save_case("mobilenet_v2_w025", m, {"arch": "mobilenet_v2", "width": 0.25, "numClasses": nc, "inputSize": 67},
                                           (2, 3, 67, 67), feature_taps({3, 6, 13, 18}))

    m = tv.models.mobilenet_v2(width_mult=0.25, num_classes=nc)
    m.features[0][0] = nn.Conv2d(1, m.features[0][0].out_channels, 3, 1, 1, bias=False)  # 1-channel, stride-1 stem
    m.features[2].conv[1][0].stride = (1, 1)  # first 24-channel stage at stride 1
    m = randomise(m)
    cases["mobilenet_v2_cifar_w025_gray"] = save_case("mobilenet_v2_cifar_w025_gray", m,
                                                      {"arch": "mobilenet_v2_cifar", "width": 0.25, "numClasses": nc, "inputSize": 28, "inChannels": 1},
                                                      (2, 1, 28, 28))

    m = randomise(tv.models.mobilenet_v3_large(width_mult=0.25, num_classes=nc))
    cases["mobilenet_v3_large_w025"] = save_case("mobilenet_v3_large_w025", m,
                                                 {"arch": "mobilenet_v3_large", "width": 0.25, "numClasses": nc, "inputSize": 64},
                                                 (2, 3, 64, 64), feature_taps({3, 6, 12, 16}))
    md = tv.models.mobilenet_v3_large(width_mult=0.25, num_classes=nc, dilated=True)
    md.load_state_dict(m.state_dict())
    cases["mobilenet_v3_large_w025_os16"] = save_case("mobilenet_v3_large_w025_os16", md,
                                                      {"arch": "mobilenet_v3_large", "width": 0.25, "numClasses": nc, "inputSize": 64, "outputStride": 16},
                                                      (2, 3, 64, 64), feature_taps({3, 6, 12, 16}), weights_of="mobilenet_v3_large_w025")
    m = randomise(tv.models.mobilenet_v3_small(width_mult=0.5, num_classes=nc))
    cases["mobilenet_v3_small_w05"] = save_case("mobilenet_v3_small_w05", m,
                                                {"arch": "mobilenet_v3_small", "width": 0.5, "numClasses": nc, "inputSize": 61},
                                                (2, 3, 61, 61), feature_taps({1, 3, 8, 12}))

    m = randomise(MobileNetV1(alpha=0.25, num_classes=nc))
    cases["mobilenet_v1_w025"] = save_case("mobilenet_v1_w025", m, {"arch": "mobilenet_v1", "width": 0.25, "numClasses": nc, "inputSize": 64},
                                           (2, 3, 64, 64), feature_taps({3, 5, 11, 13}))

    m = randomise(tv.models.shufflenet_v2_x0_5(num_classes=nc))

    def shuffle_features(model, x):
        c2 = model.maxpool(model.conv1(x))
        c3 = model.stage2(c2)
        c4 = model.stage3(c3)
        return [c2, c3, c4, model.conv5(model.stage4(c4))]

    cases["shufflenet_v2_x0_5"] = save_case("shufflenet_v2_x0_5", m, {"arch": "shufflenet_v2_x0_5", "numClasses": nc, "inputSize": 63},
                                            (2, 3, 63, 63), shuffle_features)

    # Official RefConv format. MobileNetV2: the stem (regular 3x3, per-kernel maps) and the
    # depthwise convs of features.1..6 (dense C x C maps); ResNet-18: every conv with K >= 3.
    m = tv.models.mobilenet_v2(width_mult=0.25, num_classes=nc)
    randomise(m)
    sel = {"features.0.0"} | {f"features.{i}.conv.{j}.0" for i in range(1, 7) for j in (0, 1)}
    refocus_official(m, lambda name, conv: name in sel and conv.kernel_size[0] >= 3)
    randomise(m)
    cases["refconv_mobilenet_v2_w025"] = save_case("refconv_mobilenet_v2_w025", m,
                                                   {"arch": "mobilenet_v2", "width": 0.25, "numClasses": nc, "inputSize": 48},
                                                   (2, 3, 48, 48))
    m = NarrowResNet(BasicBlock, [2, 2, 2, 2], base=8, num_classes=nc)
    randomise(m)
    refocus_official(m, lambda name, conv: conv.kernel_size[0] >= 3)
    randomise(m)
    cases["refconv_resnet18_w0125"] = save_case("refconv_resnet18_w0125", m,
                                                {"arch": "resnet18", "width": 0.125, "numClasses": nc, "inputSize": 48},
                                                (2, 3, 48, 48))

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

    make_train_fixture()

    # Parameter counts and MACs of every registered architecture at its default configuration.
    def macs(model, shape):
        total = [0]

        def hook(mod, inp, out):
            if isinstance(mod, nn.Conv2d):
                total[0] += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
            elif isinstance(mod, nn.Linear):
                total[0] += mod.in_features * mod.out_features

        hs = [mm.register_forward_hook(hook) for mm in model.modules() if isinstance(mm, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            model.eval()(torch.zeros(*shape))
        for h in hs:
            h.remove()
        return total[0]

    mv2c = tv.models.mobilenet_v2(num_classes=10)
    mv2c.features[0][0].stride = (1, 1)
    mv2c.features[2].conv[1][0].stride = (1, 1)
    refs = {
        "resnet18": (tv.models.resnet18(), 224), "resnet34": (tv.models.resnet34(), 224),
        "resnet50": (tv.models.resnet50(), 224), "resnet101": (tv.models.resnet101(), 224),
        "cifar_resnet20": (CifarResNet(3), 32), "cifar_resnet56": (CifarResNet(9), 32),
        "mobilenet_v1": (MobileNetV1(), 224), "mobilenet_v2": (tv.models.mobilenet_v2(), 224),
        "mobilenet_v2_cifar": (mv2c, 32),
        "mobilenet_v3_large": (tv.models.mobilenet_v3_large(), 224), "mobilenet_v3_small": (tv.models.mobilenet_v3_small(), 224),
        "shufflenet_v2_x0_5": (tv.models.shufflenet_v2_x0_5(), 224), "shufflenet_v2_x1_0": (tv.models.shufflenet_v2_x1_0(), 224),
    }
    counts = {}
    for arch, (model, size) in refs.items():
        counts[arch] = {"params": sum(p.numel() for p in model.parameters()), "macs": macs(model, (1, 3, size, size)), "inputSize": size}
        print(f"{arch:22s} {counts[arch]}")
    with open(os.path.join(OUT, "reference-counts.json"), "w") as f:
        json.dump(counts, f, indent=1)

    # Conv MACs of dilated feature extractors (no classifier) at 224 px: torchvision's own
    # replace_stride_with_dilation / dilated=True models.
    r50 = tv.models.resnet50(replace_stride_with_dilation=[False, True, True])
    r50.fc = nn.Identity()
    v3 = tv.models.mobilenet_v3_large(dilated=True)
    v3.classifier = nn.Identity()
    dilated = {
        "resnet50": {"outputStride": 8, "macs": macs(r50, (1, 3, 224, 224))},
        "mobilenet_v3_large": {"outputStride": 16, "macs": macs(v3.features, (1, 3, 224, 224))},
    }
    print("dilated", dilated)
    with open(os.path.join(OUT, "reference-dilated-macs.json"), "w") as f:
        json.dump(dilated, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1:] == ["--only-train"]:
        make_train_fixture()
    else:
        main()
