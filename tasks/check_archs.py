#!/usr/bin/env python3
"""Checks every full-size architecture of `deno task predict --arch` against torchvision.

For each torchvision builder: PyTorch builds the model (random weights, 1000 classes) with
perturbed batch-norm statistics, rescales the classifier's last Linear so the logits of the
test image spread with std 2 (random weights alone give near-uniform or saturated
probabilities, which would make the comparison weak), saves its state dict as a .pth file,
and computes the softmax of a 224x224 test image; fbp's `predict --arch NAME --weights FILE
--image-size 224 --json` must give the same probabilities within 1e-4. The table also
gives the largest difference of the centred log-probabilities (= centred logits).

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision);
run by hand from the repository root:
    /usr/bin/python3 tasks/check_archs.py [ARCH ...]
The tests never need it: they use small configurations (tasks/make_arch_fixtures.py).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision.models as tvm
from PIL import Image

ARCHS = [
    "resnet18", "resnet34", "resnet50", "googlenet", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "densenet121", "densenet161", "densenet169",
    "densenet201", *[f"efficientnet_b{i}" for i in range(8)],
    *[f"regnet_y_{s}" for s in ["400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf",
                                "128gf"]],
    *[f"regnet_x_{s}" for s in ["400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"]],
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def build(arch):
    kwargs = {}
    if arch == "googlenet":
        # As torchvision builds it for its ImageNet weights: input transform, no aux heads.
        kwargs = {"aux_logits": False, "transform_input": True, "init_weights": True}
    model = getattr(tvm, arch)(**kwargs)
    g = torch.Generator().manual_seed(len(arch))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.4 + 0.8)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
    return model.eval()


def classifier_linear(model):
    """The classifier's last Linear (the head fbp's bare classifier loads)."""
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]


def spread_logits(model, x, std=2.0):
    """Scales the last Linear so the logits of x have standard deviation `std`."""
    with torch.no_grad():
        logits = model(x)[0]
        lin = classifier_linear(model)
        centred = logits - logits.mean()
        scale = std / float(centred.std())
        lin.weight.mul_(scale)
        # Keep the bias's share of the spread: scale it the same way.
        if lin.bias is not None:
            lin.bias.mul_(scale)


def centred_log(p):
    logp = np.log(np.maximum(p, 1e-30))
    return logp - logp.mean()


def main():
    torch.set_num_threads(2)
    archs = sys.argv[1:] or ARCHS
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image = os.path.join(tmp, "image.png")
        pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(image)
        x = (pixels.astype(np.float32) / 255 - MEAN) / STD
        x = torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
        for arch in archs:
            model = build(arch)
            spread_logits(model, x)
            params = sum(p.numel() for p in model.parameters())
            weights = os.path.join(tmp, f"{arch}.pth")
            torch.save(model.state_dict(), weights)
            with torch.no_grad():
                want = torch.softmax(model(x), dim=1)[0].numpy()
            del model
            t0 = time.time()
            out = subprocess.run(
                ["deno", "run", "-A", "tasks/predict.ts", "--arch", arch, "--weights", weights,
                 "--image-size", "224", "--json", image],
                capture_output=True, text=True)
            seconds = time.time() - t0
            os.remove(weights)
            if out.returncode != 0:
                rows.append((arch, params, None, None, None, False, seconds, out.stderr.strip()[-200:]))
                print(f"{arch}: FAILED {out.stderr.strip()[-300:]}", file=sys.stderr)
                continue
            got = np.array(json.loads(out.stdout)[0]["tasks"]["output"]["probabilities"])
            diff = float(np.abs(got - want).max())
            dlogit = float(np.abs(centred_log(got) - centred_log(want)).max())
            same_top = int(got.argmax()) == int(want.argmax())
            rows.append((arch, params, diff, dlogit, float(want.max()), same_top, seconds, ""))
            print(f"{arch}: max |dp| {diff:.2e}, max |dlogit| {dlogit:.2e} (top-1 p "
                  f"{want.max():.4f}, same top-1 {same_top}) in {seconds:.1f} s", file=sys.stderr)
    print("| arch | params (M) | max \\|Δp\\| | max \\|Δ logit\\| | torch top-1 p | same top-1 "
          "| ≤ 1e-4 | fbp s |")
    print("|---|--:|--:|--:|--:|:-:|:-:|--:|")
    ok = True
    for arch, params, diff, dlogit, top, same, seconds, err in rows:
        passed = diff is not None and diff <= 1e-4
        ok &= passed
        d = "error" if diff is None else f"{diff:.1e}"
        dl = "" if dlogit is None else f"{dlogit:.1e}"
        t = "" if top is None else f"{top:.4f}"
        print(f"| {arch} | {params / 1e6:.1f} | {d} | {dl} | {t} | {'yes' if same else 'no'} | "
              f"{'yes' if passed else 'NO'} | {seconds:.1f} |")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
