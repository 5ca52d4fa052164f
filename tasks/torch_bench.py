"""PyTorch side of `deno task bench --vs-torch` (run with Debian's /usr/bin/python3).

The same networks as tasks/bench.ts, written in plain PyTorch so the two sides run on the
same CPU, threads and shapes:
  resnet18_train  torchvision-style ResNet18, one task, batch 32, AdamW step   (images/s)
  resnet18_infer  the same net in eval mode under no_grad, batch 32             (images/s)
  full_train      the full method: 2 tasks, one database each (32 images each, 64 per
                  step), per-database BN (DAB), AFF (MS-CAM, r=4, s=2) in every block, soft
                  Gumbel-Softmax policy gates (tau 5), loss 1·CE + 0.6·CE, AdamW step
Peak RSS (VmHWM, MiB) is reset before each phase (/proc/self/clear_refs) and reported per
phase. Prints one JSON line.

--precision bf16 runs each phase the way a PyTorch user asks for mixed precision on a CPU:
the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16) (convolutions
and linear layers in bf16, the rest as autocast decides), backward and AdamW outside it,
fp32 master weights.

Usage: /usr/bin/python3 tasks/torch_bench.py [--reps 3] [--batch 32] [--size 224] [--threads 2]
                                             [--precision fp32|bf16]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = 8


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class DBN(nn.Module):
    """One BatchNorm2d per database key (DAB)."""

    def __init__(self, c, keys):
        super().__init__()
        self.bns = nn.ModuleDict({k: nn.BatchNorm2d(c) for k in keys})

    def forward(self, x, key):
        return self.bns[key](x)


class Branch(nn.Module):
    def __init__(self, c, inner, keys):
        super().__init__()
        self.pw1 = nn.Conv2d(c, inner, 1, bias=True)
        self.bn1 = DBN(inner, keys)
        self.pw2 = nn.Conv2d(inner, c, 1, bias=True)
        self.bn2 = DBN(c, keys)

    def forward(self, x, key):
        return self.bn2(self.pw2(F.relu(self.bn1(self.pw1(x), key))), key)


class Aff(nn.Module):
    """AFF with MS-CAM: w = sigmoid(L(u) + G(u)), f = s·(F + w⊙(S − F))."""

    def __init__(self, c, keys, r=4, scale=2.0):
        super().__init__()
        inner = max(1, c // r)
        self.local = Branch(c, inner, keys)
        self.glob = Branch(c, inner, keys)
        self.scale = scale

    def forward(self, s, f, key):
        u = s + f
        w = torch.sigmoid(self.local(u, key) + self.glob(F.adaptive_avg_pool2d(u, 1), key))
        return self.scale * (f + w * (s - f))


class Block(nn.Module):
    def __init__(self, cin, cout, stride, keys, aff):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = DBN(cout, keys)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = DBN(cout, keys)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.down_bn = DBN(cout, keys)
        self.aff = Aff(cout, keys) if aff else None

    def forward(self, x, key, gate=None):
        s = self.down_bn(self.down(x), key) if self.down is not None else x
        h = F.relu(self.bn1(self.conv1(x), key))
        f = self.bn2(self.conv2(h), key)
        out = F.relu(self.aff(s, f, key) if self.aff is not None else s + f)
        if gate is None:
            return out
        return gate[0] * out + gate[1] * s


class Net(nn.Module):
    """ResNet18 trunk shared by every task, per-database BN, a head per task."""

    def __init__(self, tasks, keys, aff):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = DBN(64, keys)
        blocks, cin = [], 64
        for layer, w in enumerate([64, 128, 256, 512]):
            for j in range(2):
                blocks.append(Block(cin, w, 2 if layer > 0 and j == 0 else 1, keys, aff))
                cin = w
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleDict({t: nn.Linear(512, k) for t, k in tasks.items()})
        self.logits = nn.Parameter(torch.full((len(tasks), BLOCKS, 2), 0.5))

    def forward(self, x, key, task, gates=None):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x), key)), 3, 2, 1)
        for b, block in enumerate(self.blocks):
            x = block(x, key, None if gates is None else gates[b])
        return self.heads[task](torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def time_median(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="resnet18_train,resnet18_infer,full_train")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    bf16 = a.precision == "bf16"

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    only = a.only.split(",")
    n, side = a.batch, a.size
    x = torch.randn(n, 3, side, side)
    y = torch.arange(n) % 2
    res = {"threads": torch.get_num_threads(), "batch": n, "size": side,
           "version": torch.__version__, "precision": a.precision}

    if "resnet18_train" in only or "resnet18_infer" in only:
        net = Net({"t": 5}, ["shared"], aff=False)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def train():
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(net(x, "shared", "t"), y)
            loss.backward()
            opt.step()

        def infer():
            with torch.no_grad(), autocast():
                net(x, "shared", "t")

        if "resnet18_train" in only:
            net.train()
            reset_peak()
            res["resnet18_train"] = n / time_median(train, a.reps)
            res["resnet18_train_peak_rss_mib"] = peak_mib()
        if "resnet18_infer" in only:
            net.eval()
            reset_peak()
            res["resnet18_infer"] = n / time_median(infer, a.reps)
            res["resnet18_infer_peak_rss_mib"] = peak_mib()
        del net, opt

    if "full_train" in only:
        tasks = {"beauty": 5, "gender": 2}
        dbs = {"beauty": "a", "gender": "b"}
        lam = {"beauty": 1.0, "gender": 0.6}
        net = Net(tasks, ["a", "b"], aff=True)
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        noise = -torch.log(-torch.log(torch.rand(2, BLOCKS, 2).clamp(1e-10, 1 - 1e-10)))

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                p = torch.softmax((net.logits + noise) / 5.0, dim=-1)
                loss = 0
                for ti, task in enumerate(tasks):
                    gates = [(p[ti, b, 0], p[ti, b, 1]) for b in range(BLOCKS)]
                    loss = loss + lam[task] * F.cross_entropy(net(x, dbs[task], task, gates), y)
            loss.backward()
            opt.step()

        reset_peak()
        res["full_train"] = 2 * n / time_median(step, a.reps)
        res["full_train_peak_rss_mib"] = peak_mib()
    res["peak_rss_mib"] = max(v for k, v in res.items() if k.endswith("_peak_rss_mib"))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
