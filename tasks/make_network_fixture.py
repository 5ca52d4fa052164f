#!/usr/bin/env python3
"""Writes tests/testdata/network.safetensors: a narrow multi-task ResNet18 + DAB + AFF +
AdaShare written independently in PyTorch, with its weights, inputs, outputs and
gradients, so the tests check fbp's whole network against it.

Run by hand with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 tasks/make_network_fixture.py

Contents (metadata "fbp" = the network config, "fixture" = the case parameters):
  weights under fbp's parameter names (DESIGN.md §3);
  eval.<db>.images, eval.<task>.logits  — eval mode, fixed mixed policy, AFF on;
  train.<db>.images, train.<task>.targets, train.noise, train.loss, train.<task>.logits,
  grad.<param>  — training mode (batch statistics, dropout off), soft Gumbel policy
  p = softmax((logits + noise)/tau), loss = sum_t lambda_t * CE_t.
"""
import json
import os

from _fixture_writer import write_safetensors
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(7)
torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "testdata", "network.safetensors")

WIDTHS = [8, 8, 16, 16]
DBS = ["dba", "dbb"]
TASKS = [("beauty", 5, "dba"), ("gender", 2, "dba"), ("age", 3, "dbb")]
BLOCKS = 8
AFF_SCALE, AFF_R = 2.0, 4
POLICY = {"beauty": [1, 1, 0, 1, 1, 0, 1, 1], "gender": [1, 0, 1, 1, 0, 1, 1, 0],
          "age": [1, 1, 1, 0, 1, 1, 0, 1]}
LAMBDAS = {"beauty": 1.0, "gender": 0.6, "age": 0.8}
TAU = 2.0
N, SIZE = 4, 32


def dab(c):
    return nn.ModuleDict({d: nn.BatchNorm2d(c) for d in DBS})


class Aff(nn.Module):
    def __init__(self, c):
        super().__init__()
        i = max(1, c // AFF_R)
        self.local = nn.Sequential(nn.Conv2d(c, i, 1), dab(i), nn.ReLU(), nn.Conv2d(i, c, 1), dab(c))
        self.__setattr__("global", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, i, 1), dab(i),
                                                 nn.ReLU(), nn.Conv2d(i, c, 1), dab(c)))

    def forward(self, s, f, db):
        u = s + f
        loc = self.local
        lo = loc[4][db](loc[3](F.relu(loc[1][db](loc[0](u)))))
        g = getattr(self, "global")
        gl = g[5][db](g[4](F.relu(g[2][db](g[1](g[0](u))))))
        w = torch.sigmoid(lo + gl)
        return AFF_SCALE * w * s + AFF_SCALE * (1 - w) * f


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = dab(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = dab(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), dab(cout))
        self.aff = Aff(cout)

    def forward(self, x, db, gate):
        s = x if self.downsample is None else self.downsample[1][db](self.downsample[0](x))
        if gate == 0:
            return s
        fres = self.bn2[db](self.conv2(F.relu(self.bn1[db](self.conv1(x)))))
        f = F.relu(self.aff(s, fres, db))
        if gate == 1:
            return f
        p_exec, p_skip = gate
        return p_exec * f + p_skip * s


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, WIDTHS[0], 7, 2, 3, bias=False)
        self.bn1 = dab(WIDTHS[0])
        cin, layers = WIDTHS[0], []
        for li, w in enumerate(WIDTHS):
            blocks = []
            for j in range(2):
                blocks.append(Block(cin, w, 2 if li > 0 and j == 0 else 1))
                cin = w
            self.add_module(f"layer{li + 1}", nn.Sequential(*blocks))
        self.heads = nn.ModuleDict({t: nn.Linear(WIDTHS[3], k) for t, k, _ in TASKS})
        self.policy = nn.Module()
        self.policy.logits = nn.Parameter(torch.randn(len(TASKS), BLOCKS, 2))

    def blocks(self):
        return [getattr(self, f"layer{i // 2 + 1}")[i % 2] for i in range(BLOCKS)]

    def forward(self, x, db, task, gates):
        x = F.max_pool2d(F.relu(self.bn1[db](self.conv1(x))), 3, 2, 1)
        for b, block in enumerate(self.blocks()):
            x = block(x, db, gates[b])
        return self.heads[task](x.mean((2, 3)))


net = Net()
# Non-trivial BN parameters and running statistics (fresh ones are 1/0 and hide bugs).
with torch.no_grad():
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.uniform_(-0.2, 0.2)

tensors = {k: v.detach().clone() for k, v in net.state_dict().items()
           if not k.endswith("num_batches_tracked")}

# (a) eval mode, fixed mixed policy.
net.eval()
with torch.no_grad():
    for db in DBS:
        images = torch.randn(N, 3, SIZE, SIZE)
        tensors[f"eval.{db}.images"] = images
        for t, _, tdb in TASKS:
            if tdb == db:
                tensors[f"eval.{t}.logits"] = net(images, db, t, POLICY[t])

# (b) training mode, soft Gumbel policy with given noise, dropout off.
net.train()
noise = -torch.log(-torch.log(torch.rand(len(TASKS), BLOCKS, 2).clamp(1e-6, 1 - 1e-6)))
p = F.softmax((net.policy.logits + noise) / TAU, dim=-1)
images = {db: torch.randn(N, 3, SIZE, SIZE) for db in DBS}
loss = 0
for ti, (t, k, db) in enumerate(TASKS):
    targets = torch.randint(0, k, (N,))
    gates = [(p[ti, b, 0], p[ti, b, 1]) for b in range(BLOCKS)]
    logits = net(images[db], db, t, gates)
    loss = loss + LAMBDAS[t] * F.cross_entropy(logits, targets)
    tensors[f"train.{t}.logits"] = logits.detach()
    tensors[f"train.{t}.targets"] = targets.float()
for db in DBS:
    tensors[f"train.{db}.images"] = images[db]
tensors["train.noise"] = noise
tensors["train.loss"] = loss.detach().reshape(1)
loss.backward()
for k, v in net.named_parameters():
    tensors[f"grad.{k}"] = v.grad.detach().clone()

config = {"arch": "resnet18", "tasks": [{"name": t, "classes": k, "database": d} for t, k, d in TASKS],
          "databases": DBS, "aff": True, "affScale": AFF_SCALE, "affReduction": AFF_R,
          "bn": "per-database", "dropout": 0, "widths": WIDTHS}
fixture = {"policy": POLICY, "lambdas": LAMBDAS, "tau": TAU}


write_safetensors(OUT, tensors, {"fbp": json.dumps(config), "fixture": json.dumps(fixture),
                                 "generator": "tasks/make_network_fixture.py",
                                 "torch": torch.__version__})


# A narrow network in torchvision's ResNet18 layout (plain BN, fc head), saved with
# torch.save: the .pth import path end to end (zip, unpickler, int64 num_batches_tracked).
def torchvision_layout(widths):
    sd = {"conv1.weight": torch.randn(widths[0], 3, 7, 7) * 0.1}

    def bn(prefix, c):
        sd.update({f"{prefix}.weight": torch.rand(c) + 0.5, f"{prefix}.bias": torch.randn(c) * 0.1,
                   f"{prefix}.running_mean": torch.randn(c) * 0.1,
                   f"{prefix}.running_var": torch.rand(c) + 0.5,
                   f"{prefix}.num_batches_tracked": torch.tensor(100)})
    bn("bn1", widths[0])
    cin = widths[0]
    for li, w in enumerate(widths):
        for j in range(2):
            p = f"layer{li + 1}.{j}"
            sd[f"{p}.conv1.weight"] = torch.randn(w, cin, 3, 3) * 0.1
            bn(f"{p}.bn1", w)
            sd[f"{p}.conv2.weight"] = torch.randn(w, w, 3, 3) * 0.1
            bn(f"{p}.bn2", w)
            if li > 0 and j == 0:
                sd[f"{p}.downsample.0.weight"] = torch.randn(w, cin, 1, 1) * 0.1
                bn(f"{p}.downsample.1", w)
            cin = w
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1000, widths[3]), torch.randn(1000)
    return sd


torch.save(torchvision_layout([4, 4, 8, 8]), os.path.join(HERE, "..", "tests", "testdata", "resnet18_narrow.pth"))
print(f"wrote {os.path.relpath(OUT)}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")
