"""PyTorch + cuDNN side of tasks/gpu_check.sh (run with the GPU host's python3 and torch).

The networks of tasks/torch_bench.py (the same model code as the CPU comparison) on CUDA,
measured as tasks/gpu_check.ts measures fbp, for fp32 and tf32:
  resnet18_train_b{32,128}  one task, no AFF, shared BN; forward + backward + AdamW
  resnet18_infer_b{32,128}  the same net in eval mode under no_grad (no optimiser)
  full_train_b32            the full method: 2 tasks on 2 databases (32 images each), DAB,
                            AFF, soft Gumbel gates, 1·CE + 0.6·CE, AdamW
x and y are made on the device once (fbp uploads its input once too); no loss is read
back. images/s = median of up to --reps steps after 2 warm-up steps, each step
synchronised. Memory: after the warm-up, gc.collect(), torch.cuda.empty_cache() and
reset_peak_memory_stats(), then one step and max_memory_reserved() (what the caching
allocator held at its peak, cuDNN's workspace included; fbp's allocator reports the same
quantity after fbp_release_cache). Each case's model and optimiser are dropped before the
next.

Precision, matching fbp's --precision:
  fp32: torch.backends.cudnn.allow_tf32 = False, torch.backends.cuda.matmul.allow_tf32 = False
  tf32: both True
cudnn.benchmark = True in both (fbp times cuDNN's algorithms too, cudnnFind).

--seconds S: the time this may take; reps shrink (at least 3) and the cases that no longer
fit are skipped (listed in the JSON). OUT.json is written after every case, so a run cut
short keeps what it measured.

Usage: python3 tasks/gpu_torch_bench.py OUT.json [--reps 10] [--seconds S] [--dry-run]
(--dry-run: batch 2, 64×64, on the CPU if no GPU — a syntax and shape check.)
"""
import argparse
import gc
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
    """The model and one step of the case (an optimiser only for training)."""
    x = torch.randn(batch, 3, side, side, device=dev)
    y = torch.arange(batch, device=dev) % 2
    if kind == "resnet18":
        net = Net({"t": 5}, ["shared"], aff=False).to(dev)
        net.train(train)
        if not train:
            def infer():
                with torch.no_grad():
                    net(x, "shared", "t")

            return infer, batch
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, "shared", "t"), y).backward()
            opt.step()

        return step, batch
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

    return full_step, 2 * batch


def release(dev):
    """Drops unreachable objects and the cached blocks; the peak restarts from in use."""
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def measure(kind, batch, train, dev, side, reps, budget):
    """images/s, peak MiB of one step after the warm-up, reps run, seconds."""
    start = time.perf_counter()
    release(dev)
    run, images = build(kind, batch, train, dev, side)
    for _ in range(2):
        run()
    sync(dev)
    release(dev)
    t = time.perf_counter()
    run()
    sync(dev)
    step = time.perf_counter() - t
    peak = torch.cuda.max_memory_reserved() / 2**20 if dev.type == "cuda" else None
    left = budget - (time.perf_counter() - start)
    count = max(3, min(reps, int(0.8 * left / max(step, 1e-3))))
    times = []
    for _ in range(count):
        t = time.perf_counter()
        run()
        sync(dev)
        times.append(time.perf_counter() - t)
    del run
    release(dev)
    return images / statistics.median(times), peak, count, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=float("inf"))
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    deadline = time.perf_counter() + a.seconds - 3
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type != "cuda" and not a.dry_run:
        sys.exit("Cannot run the GPU benchmark: torch.cuda.is_available() is False")
    side = 64 if a.dry_run else 224
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    res = {"version": torch.__version__,
           "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
           "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu (dry run)",
           "complete": False}
    todo = [(p, c) for p in ["fp32", "tf32"] for c in CASES]
    skipped = []
    last = 0.0

    def write():
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)

    for i, (precision, (name, kind, batch, train)) in enumerate(todo):
        left = deadline - time.perf_counter()
        if left < max(5.0, 0.6 * last):
            skipped.append(f"{precision} {name}")
            continue
        allow = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = allow
        torch.backends.cuda.matmul.allow_tf32 = allow
        ips, peak, count, secs = measure(kind, 2 if a.dry_run else batch, train, dev, side,
                                         1 if a.dry_run else a.reps, left / (len(todo) - i))
        last = secs
        r = res.setdefault(precision, {})
        r[name] = ips
        r[name + "_peak_mib"] = peak
        r[name + "_reps"] = count
        print(f"torch {precision} {name}: {ips:.1f} img/s, peak {peak or 0:.0f} MiB "
              f"({count} reps, {secs:.1f} s)", file=sys.stderr)
        write()
    res["complete"] = not skipped
    if skipped:
        res["skipped"] = "out of time: " + ", ".join(skipped)
    write()


if __name__ == "__main__":
    main()
