"""Integer helpers shared by the golden models: two's-complement wrapping and lane packing."""
import torch

from hw.facts import FAULT_KINDS


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


def fault_op(kind, value, mask):
    """``value`` with the bits of ``mask`` inverted (``flip``), cleared (``stuck0``) or set
    (``stuck1``); ints or integer tensors, no wrapping. The golden twin of
    :func:`hw.pe.fault_mux`; the kinds are :data:`hw.facts.FAULT_KINDS`."""
    if kind == "flip":
        return value ^ mask
    if kind == "stuck0":
        return value & ~mask
    if kind == "stuck1":
        return value | mask
    raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")


def apply_fault(value, kind, mask, width):
    """Apply a fault to signed int64 ``value`` (tensor or int) of ``width`` bits and return
    the wrapped result. ``kind`` is ``"flip"``, ``"stuck0"`` or ``"stuck1"``."""
    m = mask & ((1 << width) - 1)
    if m >= 1 << 63:
        m -= 1 << 64  # int64 tensors hold bit 63 as the sign
    v = fault_op(kind, value, m)
    return wrap(v, width) if isinstance(v, torch.Tensor) else int(wrap(torch.tensor(v), width))
