#!/usr/bin/env python3
"""Writes tests/testdata/archs/<case>.safetensors: torchvision's eval-mode outputs for small
configurations of every architecture builder (and the smallest full-size variants that are
cheap), so the tests check fbp's builders against torchvision without PyTorch.

The weights are not stored: every tensor of the state dict is a formula of its name and
element index (``formula_weights``; tests/models/_formula_weights.ts computes the same
float32 values), so a fixture holds only its input, torchvision's logits and
probabilities, and the list of keys and shapes. Batch norms get perturbed statistics.

Run by hand with Debian's PyTorch (apt-get install python3-torch python3-torchvision):
    /usr/bin/python3 tasks/make_arch_fixtures.py [CASE ...]

Each case: name, the fbp arch name, fbp's arch config (the JSON its builder reads; None:
the named variant's own), a function building the torchvision model with `classes`
outputs, the image side, and optional model settings.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision.models as tvm

from _fixture_writer import write_safetensors

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "testdata", "archs")
CLASSES = 10


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_uniform(seed, n):
    """fbp's dropout hash (contract.ts, dropout_forward) for i < n: u in [0, 1)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(0x9E3779B9) + np.uint64(seed)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    return (h >> np.uint64(8)).astype(np.float64) / 16777216.0


def formula_tensor(key, shape):
    """The value of state-dict tensor `key` (float64 math, rounded once to float32)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hash_uniform(fnv1a32(key), n)
    if key.endswith("running_var"):
        v = 0.5 + u
    elif key.endswith("running_mean"):
        v = 0.2 * (2 * u - 1)
    elif len(shape) <= 1 and key.endswith("weight"):
        v = 0.8 + 0.4 * u
    elif len(shape) <= 1:
        v = 0.1 * (2 * u - 1)
    else:
        fan_in = n // shape[0]
        v = (2 * u - 1) * math.sqrt(3.0 / fan_in)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def formula_weights(model):
    state = {}
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        state[key] = formula_tensor(key, list(t.shape))
    model.load_state_dict(state, strict=False)
    return state


def write_case(name, arch, arch_config, model, side, batch=2, extra=None):
    model.eval()
    state = formula_weights(model)
    g = torch.Generator().manual_seed(fnv1a32(name))
    images = torch.randn(batch, 3, side, side, generator=g)
    with torch.no_grad():
        logits = model(images)
    probs = torch.softmax(logits, dim=1)
    meta = {
        "arch": arch,
        "archConfig": json.dumps(arch_config),
        "classes": str(logits.shape[1]),
        "keys": json.dumps([[k, list(t.shape)] for k, t in state.items()]),
    }
    for k, v in (extra or {}).items():
        meta[k] = json.dumps(v)
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, f"{name}.safetensors"),
                      {"images": images, "logits": logits, "probs": probs}, meta)
    print(f"{name}: {arch} {side}x{side}, {len(state)} tensors, "
          f"logits std {logits.std().item():.3f}")


# Each family adds its cases below: (name, fbp arch, fbp arch config or None, builder, side,
# extra metadata or None). Keep cases small: the tests run each on the CPU.
CASES = []

# --- resnet ---------------------------------------------------------------------------
CASES += [
    ("resnet18", "resnet18", None, lambda: tvm.resnet18(num_classes=CLASSES), 32, None),
    ("resnet34_small", "resnet34", {"block": "basic", "layers": [1, 2, 1, 1]},
     lambda: tvm.ResNet(tvm.resnet.BasicBlock, [1, 2, 1, 1], num_classes=CLASSES), 32, None),
    ("resnet50", "resnet50", None, lambda: tvm.resnet50(num_classes=CLASSES), 32, None),
]

# --- convnext -------------------------------------------------------------------------
def _convnext(stages, sd=0.1, layer_scale=1e-6):
    from torchvision.models.convnext import CNBlockConfig
    return tvm.ConvNeXt([CNBlockConfig(*s) for s in stages], stochastic_depth_prob=sd,
                        layer_scale=layer_scale, num_classes=CLASSES)


_CNX_SMALL = [[16, 32, 1], [32, 64, 1], [64, 128, 2], [128, None, 1]]
_CNX_LASTDOWN = [[8, 16, 1], [16, 24, 2]]
CASES += [
    ("convnext_small_custom", "convnext_tiny",
     {"stages": _CNX_SMALL, "stochasticDepthProb": 0.1, "layerScale": 1e-6},
     lambda: _convnext(_CNX_SMALL), 32, None),
    # the last stage downsamples too (out_channels set): the head reads its output
    ("convnext_lastdown_custom", "convnext_tiny",
     {"stages": _CNX_LASTDOWN, "stochasticDepthProb": 0.2, "layerScale": 0.5},
     lambda: _convnext(_CNX_LASTDOWN, 0.2, 0.5), 16, None),
]

# --- shufflenet_v2 --------------------------------------------------------------------
CASES += [
    ("shufflenet_v2_x0_5", "shufflenet_v2_x0_5", None,
     lambda: tvm.shufflenet_v2_x0_5(num_classes=CLASSES), 64, None),
    ("shufflenet_v2_custom", "shufflenet_v2_x1_0",
     {"stagesRepeats": [1, 2, 1], "stagesOutChannels": [8, 16, 32, 64, 96]},
     lambda: tvm.ShuffleNetV2([1, 2, 1], [8, 16, 32, 64, 96], num_classes=CLASSES), 32, None),
]

# --- densenet -------------------------------------------------------------------------
CASES += [
    ("densenet121", "densenet121", None, lambda: tvm.densenet121(num_classes=CLASSES), 32, None),
    ("densenet_custom", "densenet121",
     {"growthRate": 8, "blockConfig": [2, 2], "numInitFeatures": 16, "bnSize": 2},
     lambda: tvm.DenseNet(8, (2, 2), 16, bn_size=2, num_classes=CLASSES), 32, None),
]

# --- googlenet ------------------------------------------------------------------------
# Built with the auxiliary classifiers, as in torchvision's ImageNet file (their keys are
# in the fixture's key list; fbp does not build them and the importer skips them).
CASES += [
    ("googlenet", "googlenet", {"transformInput": True},
     lambda: tvm.googlenet(num_classes=CLASSES, aux_logits=True, transform_input=True,
                           init_weights=False), 64, {"transformInput": True}),
    ("googlenet_no_transform", "googlenet", {"transformInput": False},
     lambda: tvm.googlenet(num_classes=CLASSES, aux_logits=True, transform_input=False,
                           init_weights=False), 64, {"transformInput": False}),
]

# --- mobilenet ------------------------------------------------------------------------
def _mobilenet_v3(rows, last_channel):
    from torchvision.models.mobilenetv3 import InvertedResidualConfig
    return tvm.MobileNetV3([InvertedResidualConfig(*r, width_mult=1.0) for r in rows],
                           last_channel, num_classes=CLASSES)


# V2 at width 0.5: t = 1 (no expansion) and t ≠ 1, strides 1 and 2, residual repeats; the
# last channel is torchvision's fixed 1280 (never narrowed).
_MBV2_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [3, 40, 2, 2], [4, 40, 1, 1]]
# V3: SE without expansion at stride 2, a 5×5 residual HS block with SE, one without SE
_MBV3_ROWS = [[16, 3, 16, 16, True, "RE", 2, 1], [16, 3, 48, 24, False, "RE", 2, 1],
              [24, 5, 72, 24, True, "HS", 1, 1], [24, 3, 64, 24, False, "HS", 1, 1],
              [24, 3, 96, 32, True, "HS", 1, 1]]
CASES += [
    ("mobilenet_v2", "mobilenet_v2", None, lambda: tvm.mobilenet_v2(num_classes=CLASSES), 32,
     None),
    ("mobilenet_v2_custom", "mobilenet_v2",
     {"widthMult": 0.5, "roundNearest": 8, "setting": _MBV2_SETTING, "lastChannel": 1280},
     lambda: tvm.MobileNetV2(num_classes=CLASSES, width_mult=0.5,
                             inverted_residual_setting=_MBV2_SETTING), 32, None),
    ("mobilenet_v3_small", "mobilenet_v3_small", None,
     lambda: tvm.mobilenet_v3_small(num_classes=CLASSES), 32, None),
    ("mobilenet_v3_large", "mobilenet_v3_large", None,
     lambda: tvm.mobilenet_v3_large(num_classes=CLASSES), 32, None),
    ("mobilenet_v3_custom", "mobilenet_v3_small", {"setting": _MBV3_ROWS, "lastChannel": 64},
     lambda: _mobilenet_v3(_MBV3_ROWS, 64), 32, None),
]

# --- efficientnet ---------------------------------------------------------------------
def _efficientnet(rows, sd, last_channel, b5_norm=False):
    from functools import partial
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig
    norm = partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.01) if b5_norm else None
    return EfficientNet([MBConvConfig(*r) for r in rows], dropout=0.2,
                        stochastic_depth_prob=sd, num_classes=CLASSES, norm_layer=norm,
                        last_channel=last_channel)


# Two short stages: no expansion (t = 1), then a 5×5 stride-2 stage with a residual repeat
_EFF_ROWS = [[1, 3, 1, 16, 8, 1], [4, 5, 2, 8, 16, 2]]
CASES += [
    ("efficientnet_b0", "efficientnet_b0", None,
     lambda: tvm.efficientnet_b0(num_classes=CLASSES), 32, None),
    ("efficientnet_custom", "efficientnet_b0",
     {"setting": _EFF_ROWS, "stochasticDepthProb": 0.2, "lastChannel": None},
     lambda: _efficientnet(_EFF_ROWS, 0.2, None), 32, None),
    # B5–B7's batch norm (eps 1e-3, chosen by the arch name; archs_residual_test.ts checks
    # the setting itself, which moves these probabilities by only ~2e-5) and an explicit
    # last channel
    ("efficientnet_b5_custom", "efficientnet_b5",
     {"setting": _EFF_ROWS, "stochasticDepthProb": 0.2, "lastChannel": 48},
     lambda: _efficientnet(_EFF_ROWS, 0.2, 48, b5_norm=True), 32, None),
]

# --- regnet ---------------------------------------------------------------------------
def _regnet(cfg):
    from torchvision.models.regnet import BlockParams, RegNet
    params = BlockParams(cfg["depths"], cfg["widths"], cfg["groupWidths"],
                         cfg["bottleneckMultipliers"], cfg["strides"], cfg["seRatio"])
    return RegNet(params, num_classes=CLASSES, stem_width=cfg["stemWidth"])


# SE, grouped 3×3 (2, 4 and 3 groups), projections with stride 2 and with stride 1 (width
# change only), identity blocks, a bottleneck multiplier of 0.5
_REGNET_SMALL = {"stemWidth": 16, "depths": [1, 2, 2], "widths": [16, 32, 48],
                 "groupWidths": [8, 8, 8], "bottleneckMultipliers": [1.0, 1.0, 0.5],
                 "strides": [2, 2, 1], "seRatio": 0.25}
_REGNET_X_SMALL = {**_REGNET_SMALL, "seRatio": None}
CASES += [
    ("regnet_y_400mf", "regnet_y_400mf", None, lambda: tvm.regnet_y_400mf(num_classes=CLASSES),
     32, None),
    ("regnet_x_400mf", "regnet_x_400mf", None, lambda: tvm.regnet_x_400mf(num_classes=CLASSES),
     32, None),
    ("regnet_y_custom", "regnet_y_400mf", _REGNET_SMALL, lambda: _regnet(_REGNET_SMALL), 32,
     None),
    ("regnet_x_custom", "regnet_x_400mf", _REGNET_X_SMALL, lambda: _regnet(_REGNET_X_SMALL), 32,
     None),
]

if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    for name, arch, cfg, build, side, extra in CASES:
        if wanted and name not in wanted:
            continue
        torch.manual_seed(0)
        write_case(name, arch, cfg, build(), side, extra=extra)
