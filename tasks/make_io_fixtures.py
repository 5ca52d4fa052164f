"""Writes the weights-I/O fixtures in tests/testdata/io/ (committed; tests never run Python).

Run by hand from the repository root with Debian's PyTorch 1.13:

    /usr/bin/python3 tasks/make_io_fixtures.py

PyTorch 1.13 has no safetensors package, so the safetensors files come from the small
writer below, which follows the format spec and the reference library's layout (compact
JSON, "__metadata__" first, tensors ordered by name, header padded with spaces to 8 bytes).
Expected values go to expected.json; non-finite floats are written as the strings
"NaN", "Infinity", "-Infinity" because JSON has no literal for them. Reruns write identical
files except legacy.pth and torchscript.pt, where torch itself embeds varying ids; the tests
only check that those two are refused.
"""

import io
import json
import math
import os
import struct
import zipfile
from collections import OrderedDict

import torch

OUT = os.path.join("tests", "testdata", "io")
SAFETENSORS_DTYPE = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.float64: "F64",
}


def number(x):
    """A float for JSON, with non-finite values as strings."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def expected_of(tensors):
    """What the TypeScript readers must return: dtype, shape, float32 values row-major."""
    out = OrderedDict()
    for key, t in tensors.items():
        values = t.detach().contiguous().reshape(-1).to(torch.float32).tolist()
        out[key] = {
            "dtype": SAFETENSORS_DTYPE[t.dtype],
            "shape": list(t.shape),
            "values": [number(v) for v in values],
        }
    return out


def write_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer (the reference library is not available for torch 1.13)."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = OrderedDict(sorted(metadata.items()))
    data = io.BytesIO()
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        begin = data.tell()
        data.write(raw)
        header[key] = {
            "dtype": SAFETENSORS_DTYPE[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [begin, data.tell()],
        }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data.getvalue())


def state_dict():
    """A small state dict with the layouts a real checkpoint has."""
    g = torch.Generator().manual_seed(0)
    bn = torch.nn.BatchNorm2d(3)
    for _ in range(7):  # num_batches_tracked becomes 7, running stats move
        bn(torch.randn(4, 3, 2, 2, generator=g))
    base = torch.randn(4, 6, generator=g)
    sd = OrderedDict()
    sd["conv1.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    for name, t in bn.state_dict().items():
        sd["bn1." + name] = t  # includes the int64 scalar num_batches_tracked
    sd["fc.weight"] = torch.nn.Parameter(torch.randn(2, 5, generator=g))  # _rebuild_parameter
    sd["transposed"] = torch.randn(5, 3, generator=g).t()  # stride (1, 3)
    sd["sliced"] = base[1:3, ::2]  # storage offset 6, stride (6, 2)
    sd["row0"] = base[0]  # shares the storage of "sliced"
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["counts"] = torch.tensor([-3, 0, 5, 2**24 + 1], dtype=torch.int64)  # rounds to 2^24
    assert not sd["transposed"].is_contiguous() and not sd["sliced"].is_contiguous()
    return sd


def half_dict():
    specials = [0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, float("inf"), float("-inf"), float("nan")]
    sd = OrderedDict()
    sd["half"] = torch.tensor(specials, dtype=torch.float16).reshape(3, 3)
    sd["half_t"] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()
    sd["bf16"] = torch.tensor(specials[:4] + [3.0e38, 1e-40, float("inf")], dtype=torch.bfloat16)
    return sd


def entry(name, compression):
    """A zip entry with a fixed timestamp, so reruns write identical bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def rezip(src, dst, compression):
    """Copies a zip with every entry recompressed (torch itself only writes stored entries)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(entry(info.filename, compression), zin.read(info.filename))


def malicious(path):
    """A valid torch.save-shaped zip whose pickle calls os.system (must never run)."""
    command = b"echo pwned > pwned.txt"
    pickle = (
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x06\x00\x00\x00weightq\x02"
        + b"cos\nsystem\nq\x03X" + struct.pack("<I", len(command)) + command
        + b"q\x04\x85q\x05Rq\x06u."
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(entry("malicious/data.pkl", zipfile.ZIP_STORED), pickle)
        z.writestr(entry("malicious/version", zipfile.ZIP_STORED), "3\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = OrderedDict()

    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "state_dict.pth"))
    expected["state_dict.pth"] = expected_of(sd)
    rezip(os.path.join(OUT, "state_dict.pth"), os.path.join(OUT, "deflated.pth"), zipfile.ZIP_DEFLATED)
    expected["deflated.pth"] = expected["state_dict.pth"]

    small = OrderedDict((k, sd[k]) for k in ["fc.weight", "transposed", "bn1.num_batches_tracked"])
    torch.save(small, os.path.join(OUT, "protocol4.pth"), pickle_protocol=4)
    expected["protocol4.pth"] = expected_of(small)

    hd = half_dict()
    torch.save(hd, os.path.join(OUT, "half.pth"))
    expected["half.pth"] = expected_of(hd)

    torch.save(OrderedDict(w=torch.ones(2, dtype=torch.float64)), os.path.join(OUT, "float64.pth"))
    torch.save(OrderedDict(w=torch.ones(2)), os.path.join(OUT, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(OUT, "torchscript.pt"))
    malicious(os.path.join(OUT, "malicious.pth"))

    config = {"arch": "resnet18", "tasks": [{"name": "beauty", "classes": 5, "database": "scut"}],
              "databases": ["scut"], "aff": True, "affScale": 2, "affReduction": 4,
              "bn": "per-database"}
    metadata = {"fbp": json.dumps(config, separators=(",", ":")), "format": "pt"}
    g = torch.Generator().manual_seed(1)
    f32 = OrderedDict()
    f32["conv1.weight"] = torch.randn(2, 3, 3, 3, generator=g)
    f32["heads.beauty.bias"] = torch.randn(5, generator=g)
    f32["policy.logits"] = torch.randn(1, 8, 2, generator=g)
    f32["scalar"] = torch.tensor(-1.25)
    f32["empty"] = torch.zeros(3, 0)
    write_safetensors(os.path.join(OUT, "f32.safetensors"), f32, metadata)
    expected["f32.safetensors"] = expected_of(f32)

    f16 = OrderedDict(half=hd["half"], half_t=hd["half_t"])
    write_safetensors(os.path.join(OUT, "f16.safetensors"), f16)
    expected["f16.safetensors"] = expected_of(f16)
    bf16 = OrderedDict(bf16=hd["bf16"], grid=torch.linspace(-3, 3, 12).to(torch.bfloat16).reshape(3, 4))
    write_safetensors(os.path.join(OUT, "bf16.safetensors"), bf16)
    expected["bf16.safetensors"] = expected_of(bf16)

    # What a torchvision state dict converted to safetensors looks like: I64 counters.
    mixed = OrderedDict((k, sd[k]) for k in sd if k.startswith("bn1."))
    mixed["conv1.weight"] = sd["conv1.weight"].half()
    mixed["fc.weight"] = sd["fc.weight"].detach().bfloat16()
    write_safetensors(os.path.join(OUT, "mixed.safetensors"), mixed)
    expected["mixed.safetensors"] = expected_of(mixed)
    write_safetensors(os.path.join(OUT, "float64.safetensors"), OrderedDict(w=torch.ones(2, dtype=torch.float64)))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"metadata": {"f32.safetensors": metadata}, "tensors": expected}, f, indent=1,
                  allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
