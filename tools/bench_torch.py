"""PyTorch (CPU, float32) training throughput and inference latency for a FERNet architecture.
Prints one JSON object; `fer bench` runs it for the comparison."""
import argparse, json, sys, time
sys.path.insert(0, __file__.rsplit("/", 1)[0])
import torch
from torch_arch import build

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="vgg48"); ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--steps", type=int, default=10); ap.add_argument("--reps", type=int, default=50)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
net = build(a.arch)
opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
lossf = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
x = torch.randn(a.batch_size, 1, 48, 48); y = torch.arange(a.batch_size) % 7

def step():
    opt.zero_grad(); loss = lossf(net(x), y); loss.backward(); opt.step()

net.train()
for _ in range(2): step()
t = time.perf_counter()
for _ in range(a.steps): step()
train_ips = a.steps * a.batch_size / (time.perf_counter() - t)
net.eval()

def lat(n):
    xi = x[:n]
    with torch.no_grad():
        for _ in range(3): net(xi)
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter(); net(xi); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]

print(json.dumps({"train_ips": train_ips, "lat1": lat(1), "lat8": lat(8)}))
