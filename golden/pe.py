"""Golden model of :mod:`hw.pe`: the next register values of one PE (or of a whole grid of PEs,
since every function works element-wise on tensors)."""
from .arith import wrap


def ws_pe_next(i_a, i_p, i_w, w_load, b, acc_width):
    """Next ``(a, acc, b)`` of a :class:`hw.pe.WSProcessingElement` holding weight ``b``."""
    b_next = i_w if w_load else b
    return i_a, wrap(i_p + i_a * b, acc_width), b_next


def os_pe_next(i_a, i_b, i_c, drain, acc, acc_width):
    """Next ``(a, b, acc)`` of a :class:`hw.pe.OSProcessingElement`."""
    return i_a, i_b, (i_c if drain else wrap(acc + i_a * i_b, acc_width))


def ws_pe_pipelined_next(i_a, i_p, i_w, w_load, b, p, acc_width):
    """Next ``(a, acc, b, p)`` of a pipelined WS PE (``pipelined=True``: the product ``p`` is
    registered, then added)."""
    b_next = i_w if w_load else b
    return i_a, wrap(i_p + p, acc_width), b_next, i_a * b


def os_pe_pipelined_next(i_a, i_b, i_c, drain, acc, p, acc_width):
    """Next ``(a, b, acc, p)`` of a pipelined OS PE."""
    return i_a, i_b, (i_c if drain else wrap(acc + p, acc_width)), i_a * i_b
