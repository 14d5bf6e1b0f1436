"""A deterministic safetensors writer for the converters: every tensor float32, tensors sorted
by name, JSON header with sorted keys, no timestamps, so the same input always gives the same
bytes (tools/manifest.json pins the converted files' sha256)."""

import json
import os
import struct

import numpy as np


def write_safetensors(path, tensors, metadata):
    """Deterministic safetensors writer (all tensors F32, sorted by name)."""
    header = {}
    offset = 0
    names = sorted(tensors)
    for name in names:
        a = tensors[name]
        n = a.size * 4
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    os.replace(tmp, path)
