"""Generates the golden fixtures FERNet's tests compare against, with CPU PyTorch.

    python3 tools/make_fixtures.py   # writes Tests/FERNetTests/Fixtures/*.json

Tensors are stored flat in PyTorch's layout (NCHW, weights [out, in, kh, kw]); the Swift tests
convert. Run once; the fixtures are committed, so tests never need Python.
"""
import json, os, sys
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torch_arch import build

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "FERNetTests", "Fixtures")
torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)   # reference numbers in double, compared at float tolerance


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def save(name, obj):
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(obj, f, separators=(",", ":"))


def conv_cases():
    cases = []
    for (n, c, h, w, o, k, s, p) in [(2, 3, 7, 9, 4, 3, 1, 1), (3, 2, 11, 8, 5, 5, 2, 2),
                                      (2, 4, 9, 9, 3, 3, 2, 0), (1, 3, 5, 6, 2, 1, 1, 0), (2, 1, 6, 5, 3, 4, 3, 1)]:
        x = torch.randn(n, c, h, w, requires_grad=True)
        wt = torch.randn(o, c, k, k, requires_grad=True)
        b = torch.randn(o, requires_grad=True)
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        dy = torch.randn_like(y)
        y.backward(dy)
        cases.append(dict(n=n, c=c, h=h, w=w, out=o, k=k, stride=s, padding=p, x=flat(x), weight=flat(wt), bias=flat(b),
                          y=flat(y), yshape=list(y.shape), dy=flat(dy), dx=flat(x.grad), dweight=flat(wt.grad), dbias=flat(b.grad)))
    save("conv2d", cases)


def bn_cases():
    cases = []
    for shape in [(4, 3, 5, 6), (6, 5)]:
        x = (torch.randn(*shape) * 2 + 0.5).requires_grad_(True)
        f = shape[1]
        bn = nn.BatchNorm2d(f) if len(shape) == 4 else nn.BatchNorm1d(f)
        with torch.no_grad():
            bn.weight.copy_(torch.randn(f)); bn.bias.copy_(torch.randn(f))
        bn.train()
        y = bn(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        bn.eval()
        x2 = torch.randn(*shape)
        y2 = bn(x2)
        cases.append(dict(shape=list(shape), x=flat(x), gamma=flat(bn.weight), beta=flat(bn.bias), y=flat(y), dy=flat(dy),
                          dx=flat(x.grad), dgamma=flat(bn.weight.grad), dbeta=flat(bn.bias.grad),
                          running_mean=flat(bn.running_mean), running_var=flat(bn.running_var), x_eval=flat(x2), y_eval=flat(y2)))
    save("batchnorm", cases)


def pool_cases():
    cases = []
    for (n, c, h, w, k, s) in [(2, 3, 7, 9, 2, 2), (1, 2, 9, 8, 3, 2), (2, 2, 6, 6, 2, 1)]:
        x = torch.randn(n, c, h, w, requires_grad=True)
        y = F.max_pool2d(x, k, s)
        dy = torch.randn_like(y)
        y.backward(dy)
        cases.append(dict(n=n, c=c, h=h, w=w, k=k, stride=s, x=flat(x), y=flat(y), yshape=list(y.shape), dy=flat(dy), dx=flat(x.grad)))
    save("maxpool", cases)


def dense_cases():
    cases = []
    for (n, i, o) in [(5, 7, 3), (1, 12, 9)]:
        x = torch.randn(n, i, requires_grad=True)
        lin = nn.Linear(i, o)
        y = lin(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        cases.append(dict(n=n, inF=i, outF=o, x=flat(x), weight=flat(lin.weight), bias=flat(lin.bias), y=flat(y), dy=flat(dy),
                          dx=flat(x.grad), dweight=flat(lin.weight.grad), dbias=flat(lin.bias.grad)))
    save("dense", cases)


def loss_cases():
    cases = []
    for (n, k, eps) in [(5, 7, 0.0), (8, 7, 0.1), (3, 4, 0.3)]:
        z = (torch.randn(n, k) * 3).requires_grad_(True)
        t = torch.randint(0, k, (n,))
        loss = F.cross_entropy(z, t, label_smoothing=eps)
        loss.backward()
        cases.append(dict(n=n, k=k, smoothing=eps, logits=flat(z), labels=t.tolist(), loss=float(loss), grad=flat(z.grad)))
    save("loss", cases)


def soft_loss_cases():
    """Cross-entropy with probability targets (FER+ vote blends), with its own generator so that
    adding it left the other fixtures unchanged."""
    g = torch.Generator().manual_seed(4321)
    cases = []
    for (n, k, eps) in [(6, 7, 0.0), (8, 7, 0.1), (3, 4, 0.3)]:
        z = (torch.randn(n, k, generator=g) * 3).requires_grad_(True)
        t = torch.softmax(torch.randn(n, k, generator=g) * 2, dim=1)
        loss = F.cross_entropy(z, t, label_smoothing=eps)
        loss.backward()
        cases.append(dict(n=n, k=k, smoothing=eps, logits=flat(z), targets=flat(t), loss=float(loss), grad=flat(z.grad)))
    save("loss_soft", cases)


def winograd_conv_cases():
    """3x3, stride 1, padding 1 convolutions with at least 8 channels each way, which FERNet
    trains by Winograd (forward and input gradient), at odd sizes; its own generator."""
    g = torch.Generator().manual_seed(5678)
    cases = []
    for (n, c, h, w, o) in [(2, 9, 7, 5, 10), (1, 8, 6, 6, 8), (3, 12, 3, 4, 9), (2, 8, 1, 2, 16)]:
        x = torch.randn(n, c, h, w, generator=g).requires_grad_(True)
        wt = torch.randn(o, c, 3, 3, generator=g).requires_grad_(True)
        b = torch.randn(o, generator=g).requires_grad_(True)
        y = F.conv2d(x, wt, b, stride=1, padding=1)
        dy = torch.randn(y.shape, generator=g)
        y.backward(dy)
        cases.append(dict(n=n, c=c, h=h, w=w, out=o, k=3, stride=1, padding=1, x=flat(x), weight=flat(wt), bias=flat(b),
                          y=flat(y), yshape=list(y.shape), dy=flat(dy), dx=flat(x.grad), dweight=flat(wt.grad), dbias=flat(b.grad)))
    save("conv2d_winograd", cases)


def optimizer_cases():
    cases = []
    for name in ["adam", "adamw", "sgd"]:
        w = torch.randn(4, 3, requires_grad=True)   # decayed
        b = torch.randn(3, requires_grad=True)      # not decayed
        groups = [dict(params=[w], weight_decay=0.05), dict(params=[b], weight_decay=0.0)]
        if name == "adam":
            opt = torch.optim.Adam(groups, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
        elif name == "adamw":
            opt = torch.optim.AdamW(groups, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
        else:
            opt = torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True)
        w0, b0 = flat(w), flat(b)
        grads = []
        for step in range(4):
            gw, gb = torch.randn(4, 3), torch.randn(3)
            grads.append(dict(w=flat(gw), b=flat(gb)))
            opt.zero_grad(); w.grad = gw.clone(); b.grad = gb.clone(); opt.step()
        cases.append(dict(name=name, lr=opt.param_groups[0]["lr"], weight_decay=0.05, w0=w0, b0=b0, grads=grads, w=flat(w), b=flat(b)))
    save("optimizers", cases)


def training_run():
    """Five AdamW steps of the tiny architecture (no dropout in it) on fixed data, from fixed weights."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(7)
    net = build("tiny")
    x = torch.randn(16, 1, 48, 48)
    t = torch.randint(0, 7, (16,))
    state = {k: flat(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    shapes = {k: list(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    decay = [p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in net.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.01), dict(params=rest, weight_decay=0.0)], lr=0.003)
    losses = []
    net.train()
    for _ in range(5):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), t, label_smoothing=0.1)
        loss.backward(); opt.step()
        losses.append(float(loss))
    net.eval()
    with torch.no_grad():
        probs = F.softmax(net(x[:4]), dim=1)
    save("training_run", dict(state=state, shapes=shapes, x=flat(x), labels=t.tolist(), lr=0.003, weight_decay=0.01,
                              smoothing=0.1, losses=losses, eval_probs=flat(probs)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    conv_cases(); bn_cases(); pool_cases(); dense_cases(); loss_cases(); optimizer_cases(); training_run(); soft_loss_cases(); winograd_conv_cases()
    print("fixtures written to", os.path.normpath(OUT))
