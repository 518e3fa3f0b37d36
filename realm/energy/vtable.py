"""Voltage tables (``realm-vtable/1``): per component of a model, per supply voltage, the
probability ``p`` that one MAC cycle of the array's PE latches a wrong accumulator word and the
signed values ``f_e`` of those errors (value, count), from the timing characterization of the
PE on that component's real operand stream (``realm energy characterize``; :mod:`synth.vtable`
explains the rows, docs/energy.md §4 the method). The timing injector
(:class:`realm.llm.inject.Injector`, mode ``timing``) reads them.

A table is a JSON object::

    {"format": "realm-vtable/1", "array": "256x256-ws", "dataflow": "ws",
     "model": {"curve": {...}, "margin": 1.139, "clock_ps": ..., ...},
     "components": {"q": {"k": 576, "k_eff": 768, "tail": {...},
                          "rows": [{"v": 0.75, "clock_ps": ..., "p": 1.2e-6,
                                    "source": "tail", "f_e": {"values": [...], "counts": [...]},
                                    "f_drop": {...}}, ...]}, ...}}

``k`` is the component's reduction length, ``k_eff`` the MAC cycles one output element goes
through on the array (WS: every row of each of its ``ceil(k / rows)`` weight tiles, the zero
padding included; OS: ``k``). Rows run from the highest voltage down. A voltage the table has
no row for is refused, except above the highest row when that row has ``p = 0`` (its clock is
longer than the STA bound: no cycle can fail there, nor at any higher voltage).
"""
import math
from typing import NamedTuple

import torch

FORMAT = "realm-vtable/1"


class TableError(ValueError):
    """A voltage table that cannot be read, or a voltage or component it has no row for."""


class Row(NamedTuple):
    """One voltage of one component: ``p`` per MAC cycle; error values and their counts
    (``values``/``counts``, int64 / float64 tensors); dropped-product values likewise."""
    v: float
    clock_ps: float
    p: float
    source: str
    values: torch.Tensor
    counts: torch.Tensor
    drop_values: torch.Tensor
    drop_counts: torch.Tensor


def _hist(h, what):
    if h is None:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64)
    v, c = h.get("values"), h.get("counts")
    if not isinstance(v, list) or not isinstance(c, list) or len(v) != len(c):
        raise TableError(f"{what} must hold equally long 'values' and 'counts' lists")
    return torch.tensor(v, dtype=torch.int64), torch.tensor(c, dtype=torch.float64)


class VoltageTable:
    """A ``realm-vtable/1`` document (see the module docstring), checked."""

    def __init__(self, doc, source="table"):
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TableError(f"{source} is not a {FORMAT} voltage table")
        comps = doc.get("components")
        if not isinstance(comps, dict) or not comps:
            raise TableError(f"{source} has no components")
        self.doc, self.source = doc, source
        self.array, self.dataflow = doc.get("array"), doc.get("dataflow")
        self._rows = {}
        for comp, entry in comps.items():
            rows = {}
            for r in entry.get("rows", []):
                p = r.get("p")
                if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                    raise TableError(f"{source}: component {comp!r}, {r.get('v')} V: p must be "
                                     f"in [0, 1], not {p!r}")
                values, counts = _hist(r.get("f_e"), f"{comp} {r['v']} V f_e")
                dv, dc = _hist(r.get("f_drop"), f"{comp} {r['v']} V f_drop")
                if p > 0 and (not len(values) or counts.sum() <= 0):
                    raise TableError(f"{source}: component {comp!r}, {r['v']} V: p > 0 needs "
                                     "error values")
                rows[round(float(r["v"]), 6)] = Row(float(r["v"]), float(r.get("clock_ps", 0)),
                                                    float(p), r.get("source", ""), values,
                                                    counts, dv, dc)
            if not rows:
                raise TableError(f"{source}: component {comp!r} has no rows")
            self._rows[comp] = rows

    @classmethod
    def read(cls, path):
        """The table in file ``path``."""
        from golden.jsonfile import read_json

        return cls(read_json(path, "voltage table", TableError), repr(path))

    @property
    def components(self):
        return tuple(self._rows)

    def voltages(self, component):
        """The voltages of ``component``'s rows, highest first."""
        return tuple(sorted(self._rows[self._comp(component)], reverse=True))

    def _comp(self, component):
        if component not in self._rows:
            raise TableError(f"{self.source} has no component {component!r} (it has "
                             f"{', '.join(self._rows)})")
        return component

    def k_eff(self, component):
        """MAC cycles per output element of ``component`` on the table's array."""
        return int(self.doc["components"][self._comp(component)]["k_eff"])

    def row(self, component, v):
        """The :class:`Row` of ``component`` at ``v`` volts."""
        rows = self._rows[self._comp(component)]
        key = round(float(v), 6)
        if key in rows:
            return rows[key]
        top = max(rows)
        if key > top and rows[top].p == 0.0:  # above the STA bound: error-free
            return rows[top]._replace(v=float(v))
        raise TableError(f"{self.source} has no row at {v:g} V for component {component!r} "
                         f"(rows: {min(rows):g} to {top:g} V)")


def p_element(p, k):
    """``1 - (1 - p)^k``: the probability that at least one of ``k`` MAC cycles errs."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return -math.expm1(k * math.log1p(-p))


def cycles_pmf(p, k, tol=1e-15):
    """The law of the number of erroneous cycles of an element that has at least one: the
    zero-truncated Binomial(``k``, ``p``), as probabilities of 1, 2, ... (float64 tensor,
    cut where the remaining mass is below ``tol``)."""
    n = torch.arange(0, k + 1, dtype=torch.float64)
    lg = (torch.lgamma(torch.tensor(k + 1.0, dtype=torch.float64)) - torch.lgamma(n + 1)
          - torch.lgamma(k - n + 1))
    if p >= 1.0:
        pmf = torch.zeros(k + 1, dtype=torch.float64)
        pmf[k] = 1.0
    else:
        pmf = torch.exp(lg + n * math.log(p) + (k - n) * math.log1p(-p))
    pmf = pmf[1:]
    total = pmf.sum()
    if total <= 0:  # p so small that P(n >= 2) underflows: exactly one cycle
        return torch.ones(1, dtype=torch.float64)
    pmf = pmf / total
    tail = pmf.flip(0).cumsum(0).flip(0)
    keep = int((tail >= tol).sum())
    return pmf[:max(keep, 1)]


def table_path(path):
    """A voltage table's path, relative to the checkout's root unless absolute."""
    from hw.paths import repo_path

    return repo_path(path)
