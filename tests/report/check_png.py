#!/usr/bin/python3
"""Checks that chart regions of a browser screenshot are drawn (used by tests/test_report.c).

usage: check_png.py SCREENSHOT.png REGION...
  REGION = NAME:X,Y,W,H:#rrggbb[,#rrggbb...]   (a plot area in page pixels, and series colors)

For every region: it lies inside the image, it is not blank (at least 1% of its pixels differ
from the page background), and each listed color is present (at least MIN_PIXELS pixels within
TOLERANCE per channel: the series was drawn). Prints one line per region; exits 1 on any failure.

The PNG decoder is the standard library's zlib plus the five PNG row filters (8-bit gray, RGB,
RGBA; non-interlaced), which is what Chromium's screenshots are.
"""
import struct
import sys
import zlib

MIN_PIXELS = 20
TOLERANCE = 24


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path):
    """Returns (width, height, channels, rows) with rows a list of bytearrays."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError(f"{path}: no IHDR chunk")
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, color type {ctype}, "
                         f"interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    if len(raw) < height * (stride + 1):
        raise ValueError(f"{path}: truncated image data")
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if ftype == 1:  # Sub
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 255
        elif ftype == 2:  # Up
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif ftype == 3:  # Average
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:  # Paeth
            for i in range(stride):
                if i >= channels:
                    row[i] = (row[i] + paeth(row[i - channels], prev[i], prev[i - channels])) & 255
                else:
                    row[i] = (row[i] + prev[i]) & 255
        elif ftype != 0:
            raise ValueError(f"{path}: bad filter type {ftype} in row {y}")
        rows.append(row)
        prev = row
    return width, height, channels, rows


def parse_color(text):
    text = text.strip().lstrip("#")
    return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))


def check_region(image, spec):
    width, height, channels, rows = image
    name, rect, colors = spec.split(":", 2)
    x, y, w, h = (int(v) for v in rect.split(","))
    wanted = [parse_color(c) for c in colors.split(",") if c.strip()]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        return False, f"{name}: region {x},{y},{w},{h} is outside the {width}x{height} image"
    counts = [0] * len(wanted)
    inked = 0
    for yy in range(y, y + h):
        row = rows[yy]
        for xx in range(x, x + w):
            o = xx * channels
            px = (row[o], row[o], row[o]) if channels == 1 else (row[o], row[o + 1], row[o + 2])
            if min(px) < 235:
                inked += 1
            for k, c in enumerate(wanted):
                if (abs(px[0] - c[0]) <= TOLERANCE and abs(px[1] - c[1]) <= TOLERANCE
                        and abs(px[2] - c[2]) <= TOLERANCE):
                    counts[k] += 1
    frac = inked / float(w * h)
    found = ", ".join(f"#{c[0]:02x}{c[1]:02x}{c[2]:02x}={n}" for c, n in zip(wanted, counts))
    ok = frac >= 0.01 and all(n >= MIN_PIXELS for n in counts)
    return ok, f"{name}: {w}x{h} at {x},{y}: {100 * frac:.1f}% inked; series pixels {found}"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        image = read_png(argv[1])
    except (OSError, ValueError, zlib.error) as e:
        print(f"check_png: {e}", file=sys.stderr)
        return 1
    failed = 0
    for spec in argv[2:]:
        try:
            ok, message = check_region(image, spec)
        except ValueError as e:
            ok, message = False, f"bad region '{spec}': {e}"
        print(("ok   " if ok else "FAIL ") + message)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
