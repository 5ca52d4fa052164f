"""PyTorch + cuDNN side of tasks/gpu_check.sh (run with the GPU host's python3 and torch).

The networks of tasks/torch_bench.py (the same model code as the CPU comparison) on CUDA,
measured as tasks/gpu_check.ts measures fbp, for fp32 and tf32:
  resnet18_train_b{32,128}  one task, no AFF, shared BN; forward + backward + AdamW
  resnet18_infer_b{32,128}  the same net in eval mode under no_grad
  full_train_b32            the full method: 2 tasks on 2 databases (32 images each), DAB,
                            AFF, soft Gumbel gates, 1·CE + 0.6·CE, AdamW
images/s = median of --reps steps after 2 warm-up steps, each step synchronised. Memory:
torch.cuda.empty_cache() and reset_peak_memory_stats() before each case, then
max_memory_reserved() (what the caching allocator held at its peak; fbp's allocator
reports the same quantity).

Precision, matching fbp's --precision:
  fp32: torch.backends.cudnn.allow_tf32 = False, torch.backends.cuda.matmul.allow_tf32 = False
  tf32: both True
cudnn.benchmark = True in both (fbp times cuDNN's algorithms too, cudnnFind).

Usage: python3 tasks/gpu_torch_bench.py OUT.json [--reps 10] [--dry-run]
(--dry-run: batch 2, 64×64, on the CPU if no GPU — a syntax and shape check.)
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import BLOCKS, Net  # noqa: E402  (the CPU comparison's model code)

CASES = [
    ("resnet18_train_b32", "resnet18", 32, True),
    ("resnet18_infer_b32", "resnet18", 32, False),
    ("resnet18_train_b128", "resnet18", 128, True),
    ("resnet18_infer_b128", "resnet18", 128, False),
    ("full_train_b32", "full", 32, True),
]


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def build(kind, batch, train, dev, side):
    """The model, its optimiser and one step of the case."""
    x = torch.randn(batch, 3, side, side, device=dev)
    y = torch.arange(batch, device=dev) % 2
    if kind == "resnet18":
        net = Net({"t": 5}, ["shared"], aff=False).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, "shared", "t"), y).backward()
            opt.step()

        def infer():
            with torch.no_grad():
                net(x, "shared", "t")

        net.train(train)
        return net, (step if train else infer), batch
    tasks = {"beauty": 5, "gender": 2}
    dbs = {"beauty": "a", "gender": "b"}
    lam = {"beauty": 1.0, "gender": 0.6}
    net = Net(tasks, ["a", "b"], aff=True).to(dev)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    noise = -torch.log(-torch.log(torch.rand(2, BLOCKS, 2, device=dev).clamp(1e-10, 1 - 1e-10)))

    def full_step():
        opt.zero_grad(set_to_none=True)
        p = torch.softmax((net.logits + noise) / 5.0, dim=-1)
        loss = 0
        for ti, task in enumerate(tasks):
            gates = [(p[ti, b, 0], p[ti, b, 1]) for b in range(BLOCKS)]
            loss = loss + lam[task] * F.cross_entropy(net(x, dbs[task], task, gates), y)
        loss.backward()
        opt.step()

    return net, full_step, 2 * batch


def measure(kind, batch, train, dev, side, reps):
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    net, run, images = build(kind, batch, train, dev, side)
    for _ in range(2):
        run()
    sync(dev)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        sync(dev)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_reserved() / 2**20 if dev.type == "cuda" else None
    del net, run
    return images / statistics.median(times), peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type != "cuda" and not a.dry_run:
        sys.exit("Cannot run the GPU benchmark: torch.cuda.is_available() is False")
    side = 64 if a.dry_run else 224
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    res = {"version": torch.__version__,
           "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
           "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu (dry run)"}
    for precision in ["fp32", "tf32"]:
        allow = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = allow
        torch.backends.cuda.matmul.allow_tf32 = allow
        r = {}
        for name, kind, batch, train in CASES:
            ips, peak = measure(kind, 2 if a.dry_run else batch, train, dev, side,
                                1 if a.dry_run else a.reps)
            r[name] = ips
            r[name + "_peak_mib"] = peak
            print(f"torch {precision} {name}: {ips:.1f} img/s, peak {peak or 0:.0f} MiB",
                  file=sys.stderr)
        res[precision] = r
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
