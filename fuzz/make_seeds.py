#!/usr/bin/env python3
"""Writes the small safetensors seeds of the fuzz corpus (committed; rerun to regenerate).

Only the file format is involved (8-byte little-endian header length, JSON header, data), so the
standard library suffices. Large real models make poor seeds: libFuzzer mutates every byte of
an input, and nearly all of a model file is tensor data.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {"F32": 4, "BF16": 2, "F16": 2}


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)], data filled with a byte pattern."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for i, (name, dtype, shape) in enumerate(tensors):
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        blobs.append(bytes((i * 31 + k) % 251 for k in range(n)))
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the writers pad the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(rel, data):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


write("seeds/safetensors/mixed.safetensors",
      safetensors([("a.weight", "F32", [2, 3]), ("b", "BF16", [4]), ("c", "F16", [])],
                  {"format": "pt"}))
write("seeds/safetensors/empty_tensor.safetensors",
      safetensors([("empty", "F32", [0, 4]), ("x", "BF16", [1, 1, 2])]))

shards = {
    "model-00001-of-00002.safetensors": [("model.embed_tokens.weight", "BF16", [4, 2]),
                                         ("model.norm.weight", "F32", [2])],
    "model-00002-of-00002.safetensors": [("lm_head.weight", "BF16", [4, 2])],
}
weight_map = {}
for shard, tensors in shards.items():
    write("seeds/safetensors_index/" + shard, safetensors(tensors, {"format": "pt"}))
    for name, _, _ in tensors:
        weight_map[name] = shard
write("seeds/safetensors_index/model.safetensors.index.json",
      json.dumps({"metadata": {"total_size": 40}, "weight_map": weight_map}, indent=2).encode())
