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


def conv_case(name, x, w, b, stride, pad, groups=1):
    inputs = [x, w] + ([b] if b is not None else [])
    add_case(name, "conv2d",
             {"stride": stride, "padding": pad, "bias": b is not None, "groups": groups},
             inputs, lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None,
                                         stride=stride, padding=pad, groups=groups),
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
# ---- grouped / depthwise convolution, ceil-mode max pooling, average pooling ----
# Own seed: these values do not depend on the cases above.
torch.manual_seed(20250301)
conv_case("conv3x3_groups3", torch.randn(2, 6, 7, 6), torch.randn(9, 2, 3, 3) * 0.3,
          torch.randn(9), 1, 1, groups=3)
conv_case("conv3x3_depthwise_s2", torch.randn(2, 8, 9, 7), torch.randn(8, 1, 3, 3) * 0.3,
          torch.randn(8), 2, 1, groups=8)
conv_case("conv7x7_depthwise", torch.randn(1, 4, 9, 9), torch.randn(4, 1, 7, 7) * 0.1,
          torch.randn(4), 1, 3, groups=4)


def maxpool_ceil_case(name, x, kernel, stride, pad):
    add_case(name, "maxPool2d",
             {"kernel": kernel, "stride": stride, "padding": pad, "ceilMode": True}, [x],
             lambda t: F.max_pool2d(t, kernel, stride, pad, ceil_mode=True), [True])


maxpool_ceil_case("maxpool3x3_s2_ceil", torch.randn(2, 3, 10, 9), 3, 2, 0)  # GoogLeNet's
maxpool_ceil_case("maxpool2x2_s2_ceil", torch.randn(1, 3, 5, 7), 2, 2, 0)
maxpool_ceil_case("maxpool3x3_s1_p1_ceil", torch.randn(1, 2, 6, 5), 3, 1, 1)
maxpool_ceil_case("maxpool3x3_s2_p1_ceil", torch.randn(2, 2, 6, 8), 3, 2, 1)
add_case("avgpool2x2_s2", "avgPool2d", {"kernel": 2, "stride": 2}, [torch.randn(2, 4, 7, 6)],
         lambda t: F.avg_pool2d(t, 2, 2), [True])  # DenseNet's transition
# ---- end of grouped convolution and pooling cases ----

# ---- activations of the vision models, channel concat/split/shuffle, LayerNorm2d ----
# Own seed: these values do not depend on the cases above.
torch.manual_seed(20250302)
# Random values over the kinks plus values at and beside them. Not x = 3 exactly: fbp's
# hardswish gradient there is 1 (the contract's), PyTorch 1.13's is 1.5.
act_x = torch.cat([torch.randn(2, 20).flatten() * 4,
                   torch.tensor([-3.0, 0.0, 6.0, -6.0, 2.9, 3.1, 5.9, 6.1, 8.0, -8.0, 10.0,
                                 -10.0, -2.99, -3.01, 0.01, -0.01])]).reshape(4, 14)
for act_name, act_fn in [("silu", F.silu), ("hardswish", F.hardswish),
                         ("hardsigmoid", F.hardsigmoid), ("gelu", F.gelu), ("relu6", F.relu6)]:
    add_case(act_name, act_name, {}, [act_x], act_fn, [True])
add_case("cat_channels", "concatChannels", {},
         [torch.randn(2, 3, 4, 5), torch.randn(2, 1, 4, 5), torch.randn(2, 2, 4, 5)],
         lambda a, b, c: torch.cat([a, b, c], dim=1), [True, True, True])
add_case("chunk2_first", "chunk", {"chunks": 2, "index": 0}, [torch.randn(2, 6, 3, 3)],
         lambda x: x.chunk(2, dim=1)[0], [True])
add_case("chunk2_second_odd", "chunk", {"chunks": 2, "index": 1}, [torch.randn(1, 5, 2, 3)],
         lambda x: x.chunk(2, dim=1)[1], [True])


def channel_shuffle(x, groups):
    """torchvision.models.shufflenetv2.channel_shuffle."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


add_case("channel_shuffle_g2", "channelShuffle", {"groups": 2}, [torch.randn(2, 8, 3, 3)],
         lambda x: channel_shuffle(x, 2), [True])
add_case("channel_shuffle_g3", "channelShuffle", {"groups": 3}, [torch.randn(1, 6, 2, 5)],
         lambda x: channel_shuffle(x, 3), [True])


def layer_norm_2d(x, w, b, eps):
    """torchvision.models.convnext.LayerNorm2d.forward."""
    x = x.permute(0, 2, 3, 1)
    x = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    return x.permute(0, 3, 1, 2)


add_case("layernorm2d", "layerNormChannels", {"eps": 1e-6},
         [torch.randn(2, 5, 3, 4) * 2 + 1, torch.rand(5) + 0.5, torch.randn(5)],
         lambda x, w, b: layer_norm_2d(x, w, b, 1e-6), [True, True, True])
add_case("layernorm2d_c7_1x1", "layerNormChannels", {"eps": 1e-5},
         [torch.randn(3, 7, 1, 1), torch.rand(7) + 0.5, torch.randn(7)],
         lambda x, w, b: layer_norm_2d(x, w, b, 1e-5), [True, True, True])
# ---- end of activation and channel cases ----

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
