"""The float32 safetensors writer shared by the fixture scripts (make_op_fixtures.py,
make_network_fixture.py): keys sorted, header padded to 8 bytes, written to a temporary
file and renamed so a failed run never leaves half a fixture behind."""
import json
import os
import struct


def write_safetensors(path, named, metadata):
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for key in sorted(named):
        data = named[key].detach().contiguous().float().numpy().tobytes()
        header[key] = {"dtype": "F32", "shape": list(named[key].shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(chunks))
    os.replace(tmp, path)
