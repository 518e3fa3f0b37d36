"""Integer helpers shared by the golden models: two's-complement wrapping and lane packing."""
import torch


def wrap(x, width):
    """Reduce an int64 tensor modulo ``2 ** width`` into the signed range (two's complement)."""
    if width >= 64:
        return x
    half = 1 << (width - 1)
    return ((x + half) & ((1 << width) - 1)) - half


def pack(lanes, width):
    """Pack signed integer lanes (lane 0 in the low bits) into one unsigned integer."""
    mask = (1 << width) - 1
    value = 0
    for i, v in enumerate(lanes):
        value |= (int(v) & mask) << (i * width)
    return value


def unpack(value, width, n):
    """Split an unsigned integer into ``n`` signed lanes of ``width`` bits (lane 0 low)."""
    mask, half = (1 << width) - 1, 1 << (width - 1)
    out = []
    for i in range(n):
        v = (value >> (i * width)) & mask
        out.append(v - (1 << width) if v & half else v)
    return out


def apply_fault(value, kind, mask, width):
    """Apply a fault to signed int64 ``value`` (tensor or int) of ``width`` bits and return
    the wrapped result. ``kind`` is ``"flip"``, ``"stuck0"`` or ``"stuck1"``."""
    m = mask & ((1 << width) - 1)
    if m >= 1 << 63:
        m -= 1 << 64  # int64 tensors hold bit 63 as the sign
    if kind == "flip":
        v = value ^ m
    elif kind == "stuck0":
        v = value & ~m
    elif kind == "stuck1":
        v = value | m
    else:
        raise ValueError(f"fault kind must be flip, stuck0 or stuck1, not {kind!r}")
    return wrap(v, width) if isinstance(v, torch.Tensor) else int(wrap(torch.tensor(v), width))
