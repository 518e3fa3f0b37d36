"""Integer helpers shared by the golden models: two's-complement wrapping and lane packing."""
import torch

from hw.facts import FAULT_KINDS

_NARROW = {8: torch.int8, 16: torch.int16, 32: torch.int32}


def wrap(x, width):
    """Reduce an integer tensor (or a Python int) modulo ``2 ** width`` into the signed range
    (two's complement); a tensor keeps its dtype."""
    if width >= 64:
        return x
    if width in _NARROW and isinstance(x, torch.Tensor):
        # A narrowing cast keeps the low bits: the same values in fewer passes over memory.
        return x.to(_NARROW[width]).to(x.dtype)
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


def _int64(m):
    """A 64-bit mask as the int64 value with the same bits."""
    return m - (1 << 64) if m >= 1 << 63 else m


def fault_masks(faults, width):
    """Compose faults ``(kind, mask)`` applied in turn to one ``width``-bit register into one
    triple ``(keep, set, flip)`` of int64 masks: the faulted value is
    ``wrap(((value & keep) | set) ^ flip, width)`` (see :func:`apply_masks`), the same as
    :func:`apply_fault` applied once per fault, in order."""
    full = (1 << width) - 1
    keep, set_, flip = full, 0, 0
    for kind, mask in faults:
        m = mask & full
        if kind == "flip":
            flip ^= m
        elif kind in ("stuck0", "stuck1"):
            keep, flip = keep & ~m, flip & ~m
            set_ = set_ | m if kind == "stuck1" else set_ & ~m
        else:
            fault_op(kind, 0, m)  # raises
    return _int64(keep), _int64(set_), _int64(flip)


def apply_masks(value, keep, set_, flip, width):
    """Apply a :func:`fault_masks` triple (ints or int64 tensors, element-wise) to int64 tensor
    ``value`` of ``width`` bits and return the wrapped result."""
    return wrap(((value & keep) | set_) ^ flip, width)


def bit_length(x):
    """``int.bit_length`` of each element of a non-negative int64 tensor (0 for 0)."""
    _, e = torch.frexp(x.double())
    e = e.long()
    # The conversion to float64 may round a value above 2**53 up to the next power of two.
    return e - ((x >> (e - 1).clamp(min=0)) == 0).long() * (x != 0).long()
