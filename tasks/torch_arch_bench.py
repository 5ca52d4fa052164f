"""PyTorch side of `deno task bench --arch A,B --vs-torch` (Debian's /usr/bin/python3).

For each torchvision architecture, built with 5 classes as fbp's bench builds it (a
single-task network): the training step (forward, cross-entropy, backward, AdamW) and the
eval forward under no_grad, both at batch --batch and --size², fp32 eager, median of --reps
timed calls after one warm-up. Prints one JSON line: {arch: {"train", "infer"}} (images/s).

Usage: /usr/bin/python3 tasks/torch_arch_bench.py --archs resnet18,mobilenet_v3_small
                                                  [--batch 32] [--size 224] [--reps 3]
                                                  [--threads 2]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision.models as tvm


def median_seconds(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {}
    for arch in a.archs.split(","):
        kwargs = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
        model = getattr(tvm, arch)(num_classes=5, **kwargs)
        x = torch.randn(a.batch, 3, a.size, a.size)
        y = torch.arange(a.batch) % 5
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step():
            model.train()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        def infer():
            model.eval()
            with torch.no_grad():
                model(x)

        out[arch] = {"train": a.batch / median_seconds(step, a.reps),
                     "infer": a.batch / median_seconds(infer, a.reps)}
        print(f"torch {arch}: train {out[arch]['train']:.1f} img/s, "
              f"infer {out[arch]['infer']:.1f} img/s", flush=True, file=__import__("sys").stderr)
        del model, opt
    print(json.dumps(out))


if __name__ == "__main__":
    main()
