#!/usr/bin/env python3
"""Exports scikit-learn's handwritten digits as a manifest CSV database for fbp.

The 1797 digits (8×8, values 0–16; UCI "optdigits" test set, shipped inside scikit-learn,
so nothing is downloaded) become grey RGB PNGs of SIZE×SIZE (bilinear upscaling) under
OUT/images/, listed in OUT/digits.csv with the columns fbp's `csv:` source reads:

    path,digit,split
    images/00000.png,0,train

`split` is a seeded stratified 6:2:2 train/val/test split (per class: shuffle, then the
first 60% train, the next 20% val, the rest test), read by fbp as `--db d=csv:FILE@manifest`
and by tasks/parity_torch.py, so both train, validate and test on the same images.

Usage: /usr/bin/python3 tasks/make_digits.py --out DIR [--size 32] [--split-seed 0]
Prints one JSON line: the CSV path and the split sizes.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def stratified_split(labels, seed, fractions=(0.6, 0.2)):
    """Split name per index: per class, the first 60% of a seeded shuffle train, 20% val."""
    rng = np.random.RandomState(seed)
    split = np.empty(len(labels), dtype=object)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        split[idx[:n_train]] = "train"
        split[idx[n_train:n_train + n_val]] = "val"
        split[idx[n_train + n_val:]] = "test"
    return split


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created; files replaced)")
    ap.add_argument("--size", type=int, default=32, help="side of the PNGs (default 32)")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the split (default 0)")
    args = ap.parse_args()

    digits = load_digits()
    images = digits.images  # (1797, 8, 8) floats 0..16
    labels = digits.target.astype(int)
    split = stratified_split(labels, args.split_seed)

    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    rows = ["path,digit,split"]
    for i, (img, label) in enumerate(zip(images, labels)):
        grey = np.round(img * (255.0 / 16.0)).astype(np.uint8)
        big = Image.fromarray(grey, mode="L").resize((args.size, args.size), Image.BILINEAR)
        rel = f"images/{i:05d}.png"
        big.convert("RGB").save(os.path.join(args.out, rel))
        rows.append(f"{rel},{label},{split[i]}")
    csv = os.path.join(args.out, "digits.csv")
    with open(csv, "w") as f:
        f.write("\n".join(rows) + "\n")
    counts = {s: int((split == s).sum()) for s in ("train", "val", "test")}
    print(json.dumps({"manifest": csv, "images": len(labels), "size": args.size, **counts}))


if __name__ == "__main__":
    main()
