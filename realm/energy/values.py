"""The ``value`` error model: a user's CSV of error values and their probabilities per voltage
(silicon measurements, another library's timing), as a voltage table (``realm-vtable/1``)
whose ``p`` is per output element, so the timing injector, the campaign, DMR and the report
run it unchanged (``realm energy values``).

The CSV has a header with columns ``v``, ``value``, ``p`` and optionally ``component``: at
supply voltage ``v`` an accumulator element (of ``component``, or of every component when the
column is absent or empty) receives the additive error ``value`` (an INT32, wrapped) with
probability ``p``. Per voltage and component the probabilities sum to at most 1 (an element
takes at most one error); a voltage whose ``p`` are all 0 is error-free.

The table has ``"per": "element"`` and ``k_eff = 1`` for every component (one draw per output
element: ``p_elem = p``, one error drawn from the values in proportion to their ``p``), and
``k`` the component's real reduction length (the report counts elements as MACs / k).
ThUnderVolt does not apply (no dropped products); DMR's recompute ratio is per element
(:func:`realm.energy.model.unit_ratio`).
"""
import math

from realm.energy.errmodel import read_rows
from realm.energy.vtable import FORMAT, VoltageTable

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class ValuesError(ValueError):
    """A value-model CSV that cannot be used (one line)."""


def read_values(path, components):
    """{component: {voltage: {value: p}}} from the CSV at ``path`` for ``components`` (rows
    without a component apply to all), checked (see the module docstring)."""
    rows = read_rows(path, "value table", ValuesError, ("v", "value", "p"),
                     "columns v, value and p (and optionally component)")
    out = {c: {} for c in components}
    for i, r in enumerate(rows, start=2):
        where = f"value table {path!r}, line {i}"
        try:
            v, p = float(r["v"]), float(r["p"])
            value = int(r["value"])
        except (TypeError, ValueError):
            raise ValuesError(f"{where}: v and p must be numbers and value an integer, not "
                              f"{r.get('v')!r}, {r.get('p')!r}, {r.get('value')!r}") from None
        if not (math.isfinite(v) and 0 < v <= 2):
            raise ValuesError(f"{where}: voltage {v!r} must be in (0, 2] V")
        if not (math.isfinite(p) and 0 <= p <= 1):
            raise ValuesError(f"{where}: probability {p!r} must be in [0, 1]")
        if not INT32_MIN <= value <= INT32_MAX or (value == 0 and p > 0):
            raise ValuesError(f"{where}: error value {value} must be a non-zero INT32")
        comp = (r.get("component") or "").strip()
        if comp and comp not in out:
            raise ValuesError(f"{where}: unknown component {comp!r} (known: "
                              f"{', '.join(components)})")
        for c in [comp] if comp else components:
            cell = out[c].setdefault(round(v, 6), {})
            if value:
                cell[value] = cell.get(value, 0.0) + p
    for c, volts in out.items():
        if not volts:
            raise ValuesError(f"value table {path!r} has no rows for component {c!r}")
        for v, cell in volts.items():
            if sum(cell.values()) > 1 + 1e-12:
                raise ValuesError(f"value table {path!r}: the probabilities of component {c!r} "
                                  f"at {v:g} V sum to {sum(cell.values()):.6g} > 1")
    return out


def value_table(path, settings, array, components):
    """The ``realm-vtable/1`` document of the CSV at ``path`` for ``settings``' model on
    ``array`` (an :class:`hw.config.ArrayConfig` name), checked by :class:`VoltageTable`."""
    from realm.abft.fit import component_gemms
    from realm.campaign.spec import model_shape

    values = read_values(path, components)
    doc = {"format": FORMAT, "array": array, "dataflow": array.split("-")[1],
           "per": "element", "setting": "values",
           "model": {"error_model": "value", "source": str(path)}, "components": {}}
    gemms = component_gemms(model_shape(settings["model"]), settings["length"])
    for c, volts in values.items():
        k = gemms[c][2]
        rows = []
        for v in sorted(volts, reverse=True):
            cell = {x: p for x, p in sorted(volts[v].items()) if p > 0}
            row = {"v": v, "clock_ps": 0.0, "p": min(1.0, sum(cell.values())), "source": "value"}
            if cell:
                row["f_e"] = {"values": list(cell), "counts": list(cell.values())}
            rows.append(row)
        doc["components"][c] = {"k": k, "k_eff": 1, "rows": rows}
    VoltageTable(doc, str(path))
    return doc
