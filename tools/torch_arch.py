"""PyTorch mirrors of FERNet's architectures (for reference numbers and golden fixtures only)."""
import torch.nn as nn


def specs(name):
    conv = lambda f, k=3: ("conv2d", f, k)
    widths = {"vgg": 32, "vgg48": 48, "vgg64": 64}
    if name in widths:
        w, s = widths[name], []
        for f in [w, 2 * w, 4 * w, 8 * w]:
            s += [conv(f), ("bn",), ("relu",), conv(f), ("bn",), ("relu",), ("pool",)]
        return s + [("flatten",), ("dropout", 0.5), ("dense", 256), ("bn",), ("relu",), ("dropout", 0.5), ("dense", 7)]
    if name == "seed":
        s = []
        for f, k in [(64, 3), (128, 5), (512, 3), (512, 3)]:
            s += [conv(f, k), ("bn",), ("relu",), ("pool",), ("dropout", 0.25)]
        s += [("flatten",)]
        for u in [256, 512]:
            s += [("dense", u), ("bn",), ("relu",), ("dropout", 0.25)]
        return s + [("dense", 7)]
    if name == "tiny":
        return [conv(8), ("bn",), ("relu",), ("pool",), conv(16), ("bn",), ("relu",), ("pool",),
                ("flatten",), ("dense", 32), ("relu",), ("dense", 7)]
    raise SystemExit(f"unknown arch {name}")


def build(name, side=48):
    layers, c, h, flat = [], 1, side, None
    for s in specs(name):
        t = s[0]
        if t == "conv2d":
            layers.append(nn.Conv2d(c, s[1], s[2], padding=s[2] // 2)); c = s[1]
        elif t == "bn":
            layers.append(nn.BatchNorm1d(flat) if flat else nn.BatchNorm2d(c))
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t == "pool":
            layers.append(nn.MaxPool2d(2)); h //= 2
        elif t == "dropout":
            layers.append(nn.Dropout(s[1]))
        elif t == "flatten":
            layers.append(nn.Flatten()); flat = c * h * h
        elif t == "dense":
            layers.append(nn.Linear(flat, s[1])); flat = s[1]
    return nn.Sequential(*layers)
