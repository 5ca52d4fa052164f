#!/usr/bin/env python3
"""PyTorch side of the whole-run parity check (docs/parity.md, tasks/parity.ts).

Trains the single-task baseline with fbp's recipe, written independently in PyTorch:
  net       torchvision resnet18 from scratch; head = dropout p then Linear(512, K), as
            fbp's network.ts (global pool → dropout → linear)
  AFF       optional, in every BasicBlock at the skip connection, as fbp's aff.ts and the
            AFF authors' MS-CAM (Dai et al., arXiv:2009.14082):
              u = S + F;  w = sigmoid(L(u) + G(u));  out = relu(s·w⊙S + s·(1−w)⊙F)
              L = 1×1 conv → BN → ReLU → 1×1 conv → BN (C → C/r → C, convs with bias)
              G = global avg pool → the same
            fbp puts w on the shortcut S (the paper's eq. 2); the authors' code on F
  optimiser AdamW lr 1e-3, weight decay 0.01 on every parameter (fbp decays them all),
            lr per step: cosine from lr to 1% of it over the run (fbp's schedule.ts)
  data      fbp's loader: training = shorter side resized to `resize` (bilinear, as
            fbp's resize.ts), a random (or centre) `size` crop, a horizontal flip with
            probability 0.5 unless --no-flip, ImageNet mean/std; evaluation = resized to
            `size`, centre; batch 32, shuffled, last partial batch dropped in training
  selection the epoch with the best validation accuracy (first of ties), then the test
            accuracy of that checkpoint
  precision --precision bf16: the forward and the loss under
            torch.autocast("cpu", dtype=torch.bfloat16) in training and evaluation (how
            a PyTorch user asks for mixed precision on a CPU); fp32 master weights, backward
            and AdamW outside it
Ablation switches (for the AFF investigation) change one thing each; the defaults are
fbp's behaviour.

Usage: /usr/bin/python3 tasks/parity_torch.py --manifest FILE --label digit --seed 0
           --epochs 10 [--aff] [--no-flip] [--image-size 32 --resize 32] [--threads 1]
           [--precision fp32|bf16]
Prints one JSON line.
"""
import argparse
import copy
import csv
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# ---- data -----------------------------------------------------------------------------


def read_manifest(path, label):
    """(image paths, integer labels, split names) of a manifest CSV with a split column."""
    root = os.path.dirname(os.path.abspath(path))
    files, labels, splits = [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            p = row["path"]
            files.append(p if os.path.isabs(p) else os.path.join(root, p))
            labels.append(int(row[label]))
            splits.append(row["split"])
    return files, np.array(labels), np.array(splits)


def load_resized(files, side):
    """(N, H, W, 3) uint8: each image with its shorter side resized to `side`."""
    out = []
    for p in files:
        im = Image.open(p).convert("RGB")
        w, h = im.size
        if min(w, h) != side:
            # Same rounding as fbp's shorterSideSize; PIL's bilinear is the same triangle
            # filter as fbp's resize.ts (widened when shrinking).
            size = (side, max(side, round(h * side / w))) if w <= h else (
                max(side, round(w * side / h)), side)
            im = im.resize(size, Image.BILINEAR)
        out.append(np.asarray(im))
    return np.stack(out)


def crop_normalize(rgb, size, offsets, flips):
    """(N, 3, size, size) float32 from (N, H, W, 3) uint8: crop at offsets, mirror, normalise."""
    n = rgb.shape[0]
    out = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        y0, x0 = offsets[i]
        patch = rgb[i, y0:y0 + size, x0:x0 + size]
        out[i] = patch[:, ::-1] if flips[i] else patch
    out = (out / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


def centre_offsets(rgb, size):
    h, w = rgb.shape[1:3]
    return [((h - size) // 2, (w - size) // 2)] * rgb.shape[0]


def train_batches(rgb, labels, args, rng):
    """One training epoch of (images, labels): shuffled, augmented, full batches only."""
    order = rng.permutation(len(labels))
    h, w = rgb.shape[1:3]
    size = args.image_size
    for s in range(0, len(order) - args.batch + 1, args.batch):
        idx = order[s:s + args.batch]
        if args.crop == "random":
            offsets = [(int(v * (h - size + 1)), int(u * (w - size + 1)))
                       for u, v in rng.random_sample((len(idx), 2))]
        else:
            offsets = centre_offsets(rgb[idx], size)
        flips = rng.random_sample(len(idx)) < 0.5 if args.flip else np.zeros(len(idx), bool)
        yield crop_normalize(rgb[idx], size, offsets, flips), torch.from_numpy(labels[idx])


BF16 = False  # --precision bf16: forward passes under CPU autocast


def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16)


@torch.no_grad()
def accuracy(model, images, labels, batch=256):
    model.eval()
    correct = 0
    for s in range(0, len(labels), batch):
        with autocast():
            logits = model(images[s:s + batch])
        correct += int((logits.argmax(1) == torch.from_numpy(labels[s:s + batch])).sum())
    return correct / len(labels)


# ---- network --------------------------------------------------------------------------


def branch(channels, inner, global_pool, bn):
    """MS-CAM branch: [avg pool →] 1×1 conv → BN → ReLU → 1×1 conv → BN (BN optional)."""
    layers = [nn.AdaptiveAvgPool2d(1)] if global_pool else []
    layers += [nn.Conv2d(channels, inner, 1, bias=True)]
    layers += [nn.BatchNorm2d(inner)] if bn else []
    layers += [nn.ReLU(inplace=True), nn.Conv2d(inner, channels, 1, bias=True)]
    layers += [nn.BatchNorm2d(channels)] if bn else []
    return nn.Sequential(*layers)


class Aff(nn.Module):
    """AFF of shortcut S and residual F, followed by the block's ReLU."""

    def __init__(self, channels, args):
        super().__init__()
        inner = max(1, channels // args.aff_reduction)
        self.local = branch(channels, inner, False, True)
        self.glob = branch(channels, inner, True, args.global_bn == "on")
        self.scale = args.aff_scale
        self.on_shortcut = args.aff_weight_on == "shortcut"

    def forward(self, s, f):
        w = torch.sigmoid(self.local(s + f) + self.glob(s + f))
        if not self.on_shortcut:
            s, f = f, s
        return F.relu(self.scale * (w * s + (1 - w) * f))


def aff_block_forward(self, x):
    """torchvision BasicBlock.forward with the addition replaced by AFF."""
    f = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
    s = self.downsample(x) if self.downsample is not None else x
    return self.aff(s, f)


def init_aff(aff, mode):
    """fbp: Kaiming-normal fan-out conv weights (as every conv), zero biases, BN γ=1 β=0.
    torch: PyTorch's own nn.Conv2d / nn.BatchNorm2d defaults, as constructed.
    zero-gamma: fbp's, with γ = 0 in each branch's last BN, so L = G = 0 and w = 0.5 at
    the start: AFF begins as plain addition (an experiment, not fbp's or the authors')."""
    if mode == "torch":
        return
    for m in aff.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    if mode == "zero-gamma":
        for b in (aff.local, aff.glob):
            last = b[-1]
            if isinstance(last, nn.BatchNorm2d):
                nn.init.zeros_(last.weight)
            else:  # the global branch without BN ends in its conv
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)


def build(args, classes):
    model = torchvision.models.resnet18(num_classes=classes)
    model.fc = nn.Sequential(nn.Dropout(args.dropout), nn.Linear(512, classes))
    if args.aff:
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in layer:
                block.aff = Aff(block.bn2.num_features, args)
                init_aff(block.aff, args.aff_init)
                block.forward = aff_block_forward.__get__(block)
    return model


# ---- training -------------------------------------------------------------------------


def learning_rate(base, step, total):
    """fbp's cosine schedule: base → 1% of base over `total` steps."""
    if total <= 1:
        return base
    t = min(max(step / (total - 1), 0.0), 1.0)
    floor = 0.01 * base
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * t))


def optimiser(model, args):
    aff = [p for n, p in model.named_parameters() if ".aff." in n]
    rest = [p for n, p in model.named_parameters() if ".aff." not in n]
    aff_wd = args.weight_decay if args.aff_weight_decay is None else args.aff_weight_decay
    groups = [{"params": rest, "weight_decay": args.weight_decay}]
    if aff:
        groups.append({"params": aff, "weight_decay": aff_wd})
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of fbp's whole-run parity check")
    ap.add_argument("--manifest", required=True, help="manifest CSV with path, label, split")
    ap.add_argument("--label", default="digit", help="label column (default digit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--aff", action="store_true", help="AFF at every skip connection")
    ap.add_argument("--aff-scale", type=float, default=2.0)
    ap.add_argument("--aff-reduction", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--resize", type=int, default=None, help="default: size·256/224")
    ap.add_argument("--no-flip", dest="flip", action="store_false")
    ap.add_argument("--crop", choices=["random", "center"], default="random")
    ap.add_argument("--threads", type=int, default=1)
    # Ablations of the AFF investigation (defaults = fbp).
    ap.add_argument("--aff-init", choices=["fbp", "torch", "zero-gamma"], default="fbp",
                    help="AFF init: fbp's (Kaiming fan-out, zero bias), PyTorch's defaults, "
                    "or fbp's with the last BN γ of each branch 0 (w = 0.5 at the start)")
    ap.add_argument("--aff-weight-decay", type=float, default=None,
                    help="weight decay of the AFF parameters (default: --weight-decay)")
    ap.add_argument("--global-bn", choices=["on", "off"], default="on",
                    help="BNs of MS-CAM's global branch (batch statistics of a 1×1 map)")
    ap.add_argument("--aff-weight-on", choices=["shortcut", "residual"], default="shortcut",
                    help="which input w weighs: fbp/paper S, or the authors' code F")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forward and loss under torch.autocast (CPU, bfloat16)")
    args = ap.parse_args()
    global BF16
    BF16 = args.precision == "bf16"
    if args.resize is None:
        args.resize = round(args.image_size * 256 / 224)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)

    files, labels, splits = read_manifest(args.manifest, args.label)
    classes = int(labels.max()) + 1
    part = {s: np.flatnonzero(splits == s) for s in ("train", "val", "test")}
    train_rgb = load_resized([files[i] for i in part["train"]], args.resize)
    train_labels = labels[part["train"]]
    evals = {}
    for s in ("val", "test"):
        rgb = load_resized([files[i] for i in part[s]], args.image_size)
        evals[s] = (crop_normalize(rgb, args.image_size, centre_offsets(rgb, args.image_size),
                                   np.zeros(len(rgb), bool)), labels[part[s]])

    model = build(args, classes)
    opt = optimiser(model, args)
    steps = len(train_labels) // args.batch
    total = args.epochs * steps
    best, best_val, best_epoch, history = None, -1.0, 0, []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        loss_sum = 0.0
        for step, (x, y) in enumerate(train_batches(train_rgb, train_labels, args, rng)):
            for g in opt.param_groups:
                g["lr"] = learning_rate(args.lr, epoch * steps + step, total)
            with autocast():
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss)
        val = accuracy(model, *evals["val"])
        history.append({"epoch": epoch + 1, "loss": loss_sum / steps, "val": val})
        if val > best_val:
            best_val, best_epoch = val, epoch + 1
            best = copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - t0
    model.load_state_dict(best)
    print(json.dumps({
        "framework": "pytorch " + torch.__version__,
        "seed": args.seed,
        "aff": args.aff,
        "epochs": args.epochs,
        "test_accuracy": accuracy(model, *evals["test"]),
        "val_accuracy": best_val,
        "best_epoch": best_epoch,
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "options": {k: v for k, v in vars(args).items() if k not in ("manifest",)},
        "history": history,
    }))


if __name__ == "__main__":
    main()
