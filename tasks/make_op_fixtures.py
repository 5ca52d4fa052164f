#!/usr/bin/env python3
"""Writes tests/testdata/ops.safetensors: PyTorch's values and gradients for the ops that
have native kernels, so the tests compare fbp against an independent implementation
without needing PyTorch themselves.

Run by hand with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 tasks/make_op_fixtures.py

Each case stores its inputs `<case>.in<i>`, the output `<case>.out`, a projection
`<case>.r` and the gradients `<case>.grad<i>` of sum(out * r) for the inputs that take
one. The op and its arguments are in the metadata key "cases" (JSON).
"""
import json
import os

from _fixture_writer import write_safetensors
import torch
import torch.nn.functional as F

torch.manual_seed(20241128)
torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "testdata", "ops.safetensors")

tensors = {}
cases = []


def add_case(name, op, args, inputs, fn, grad_mask):
    ins = [x.clone().requires_grad_(g) for x, g in zip(inputs, grad_mask)]
    out = fn(*ins)
    r = torch.randn(out.shape)
    (out * r).sum().backward()
    for i, x in enumerate(ins):
        tensors[f"{name}.in{i}"] = x.detach()
        if g := grad_mask[i]:
            tensors[f"{name}.grad{i}"] = x.grad.detach()
    tensors[f"{name}.out"] = out.detach()
    tensors[f"{name}.r"] = r
    cases.append({"name": name, "op": op, "args": args, "inputs": len(ins),
                  "grads": [bool(g) for g in grad_mask]})


def conv_case(name, x, w, b, stride, pad):
    inputs = [x, w] + ([b] if b is not None else [])
    add_case(name, "conv2d", {"stride": stride, "padding": pad, "bias": b is not None},
             inputs, lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None,
                                         stride=stride, padding=pad),
             [True] * len(inputs))


conv_case("conv3x3", torch.randn(2, 3, 6, 5), torch.randn(4, 3, 3, 3) * 0.3,
          torch.randn(4), 1, 1)
conv_case("conv3x3_s2_odd", torch.randn(1, 5, 7, 9), torch.randn(6, 5, 3, 3) * 0.3, None, 2, 1)
conv_case("conv1x1_s2", torch.randn(2, 6, 5, 5), torch.randn(3, 6, 1, 1), None, 2, 0)
conv_case("conv7x7_s2", torch.randn(1, 3, 11, 10), torch.randn(4, 3, 7, 7) * 0.1, None, 2, 3)


def bn_train(x, g, b):
    rm, rv = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    out = F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
    tensors["bn_train.running_mean"] = rm.clone()
    tensors["bn_train.running_var"] = rv.clone()
    return out


add_case("bn_train", "batchNorm", {"training": True, "eps": 1e-5, "momentum": 0.1},
         [torch.randn(4, 5, 3, 2) * 2 + 1, torch.rand(5) + 0.5, torch.randn(5)], bn_train,
         [True, True, True])

bn_mean, bn_var = torch.randn(3), torch.rand(3) + 0.5
add_case("bn_eval", "batchNorm", {"training": False, "eps": 1e-5},
         [torch.randn(2, 3, 4, 3), torch.rand(3) + 0.5, torch.randn(3), bn_mean, bn_var],
         lambda x, g, b, m, v: F.batch_norm(x, m, v, g, b, training=False, eps=1e-5),
         [True, True, True, False, False])
add_case("maxpool3x3_s2", "maxPool2d", {"kernel": 3, "stride": 2, "padding": 1},
         [torch.randn(2, 3, 9, 8)], lambda x: F.max_pool2d(x, 3, 2, 1), [True])
add_case("avgpool_global", "globalAvgPool", {}, [torch.randn(2, 4, 3, 5)],
         lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), [True])
add_case("linear", "linear", {"bias": True},
         [torch.randn(3, 7), torch.randn(5, 7), torch.randn(5)], F.linear, [True, True, True])
targets = torch.tensor([0.0, 3, 1, 4, 2, 2])
add_case("cross_entropy", "crossEntropy", {},
         [torch.randn(6, 5) * 3, targets],
         lambda x, t: F.cross_entropy(x, t.long()), [True, False])
sample_w = torch.rand(6) + 0.5
add_case("cross_entropy_weighted", "crossEntropy", {"weights": True},
         [torch.randn(6, 5) * 3, targets, sample_w],
         lambda x, t, w: (F.cross_entropy(x, t.long(), reduction="none") * w).mean(),
         [True, False, False])
add_case("softmax", "softmax", {}, [torch.randn(4, 3)], lambda x: F.softmax(x, -1), [True])
add_case("sigmoid", "sigmoid", {}, [torch.randn(10)], torch.sigmoid, [True])
# AdamW: three steps with given gradients (lr, betas, eps, weight decay all non-default).
adam_p0, adam_g = torch.randn(7), torch.randn(3, 7)
param = adam_p0.clone().requires_grad_(True)
opt = torch.optim.AdamW([param], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
for step in range(3):
    param.grad = adam_g[step].clone()
    opt.step()
tensors["adamw.p0"], tensors["adamw.grads"], tensors["adamw.p3"] = adam_p0, adam_g, param.detach()
adamw = {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weightDecay": 0.1, "steps": 3}
# loss has shape [] in torch; fbp returns [1]: reshape so shapes agree in the file.
for c in cases:
    key = f"{c['name']}.out"
    if tensors[key].dim() == 0:
        tensors[key] = tensors[key].reshape(1)
        tensors[f"{c['name']}.r"] = tensors[f"{c['name']}.r"].reshape(1)


write_safetensors(OUT, tensors, {"cases": json.dumps(cases), "adamw": json.dumps(adamw),
                                 "generator": "tasks/make_op_fixtures.py",
                                 "torch": torch.__version__})
print(f"wrote {os.path.relpath(OUT)}: {len(cases)} cases, {len(tensors)} tensors")
