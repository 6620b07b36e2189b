"""Minimal safetensors reader/writer (json + torch only; no `safetensors` package needed).

File layout: 8-byte little-endian u64 N, then N bytes of JSON header
  {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
   "__metadata__": {"format": "pt"}}
then the data block; offsets are relative to the start of the data block.
The writer pads the header with spaces so that N is a multiple of 8.

Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
Only little-endian hosts are supported (as the format itself is little-endian).
"""
import json
import struct
import sys

import torch

if sys.byteorder != "little":  # pragma: no cover
    raise RuntimeError("st.py supports little-endian hosts only")

# safetensors dtype name -> (torch dtype, element size in bytes)
_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}


def _numel(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def read_header(path):
    """Returns (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > 100_000_000:
            raise ValueError(f"{path}: header length {n} is implausible")
        hdr = json.loads(f.read(n).decode("utf-8"))
    meta = hdr.pop("__metadata__", {}) or {}
    return hdr, meta, 8 + n


def load(path):
    """Reads every tensor of a .safetensors file; returns {name: torch.Tensor} (own memory,
    in the file's dtype). Tensors are returned in file-offset order."""
    hdr, _meta, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = info["dtype"]
        if dt not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dt}")
        tdtype, esize = _DTYPES[dt]
        shape = [int(s) for s in info["shape"]]
        b, e = (int(x) for x in info["data_offsets"])
        n = _numel(shape)
        if e - b != n * esize or e > len(data) or b < 0:
            raise ValueError(f"{path}: tensor '{name}' has bad data_offsets {b},{e} "
                             f"for shape {shape} {dt}")
        buf = bytearray(data[b:e])
        if n == 0:
            t = torch.zeros(shape, dtype=tdtype)
        elif tdtype == torch.bfloat16:
            # Reinterpret the raw 16-bit patterns as bfloat16 (torch 1.13 has no uint16).
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16).reshape(shape)
        else:
            t = torch.frombuffer(buf, dtype=tdtype).reshape(shape)
        out[name] = t.clone()
    return out


def _to_dtype(t, dt):
    if dt not in _DTYPES:
        raise ValueError(f"unsupported dtype {dt}")
    return t.detach().to(_DTYPES[dt][0]).contiguous()


def save(tensors, path, dtype=None, metadata=None):
    """Writes {name: tensor} to `path`. `dtype` (e.g. "F32", "BF16") converts every tensor;
    None keeps each tensor's own dtype. Tensors are written in dict order."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        if dtype is not None:
            dt = dtype
        else:
            if t.dtype not in _NAMES:
                raise ValueError(f"tensor '{name}': unsupported dtype {t.dtype}")
            dt = _NAMES[t.dtype]
        t = _to_dtype(t.cpu(), dt)
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        elif t.numel() == 0:
            raw = b""
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    meta = {"format": "pt"}
    if metadata:
        meta.update({str(k): str(v) for k, v in metadata.items()})
    full = {"__metadata__": meta}
    full.update(header)
    hj = json.dumps(full, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)
