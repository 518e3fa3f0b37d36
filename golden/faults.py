"""Faults as data: the one JSON fault-list format shared by the RTL testbench, the golden
array model and the LLM model.

A fault list is a JSON object ``{"format": "realm-faults/1", "faults": [...]}`` (a bare JSON
list of entries is accepted too). Each entry names *where* (``site`` plus its coordinates),
*what* (``kind`` and ``bit`` or ``mask``) and *when* (``cycle`` and ``duration`` for the
hardware; ``component``/``layer``/``call`` for an LLM GEMM)::

    {"site": "pe.acc", "row": 1, "col": 2, "cycle": 40, "kind": "flip", "bit": 30}
    {"site": "pe.acc", "row": 0, "col": 0, "cycle": 12, "kind": "stuck1", "mask": "0xff",
     "duration": 5}
    {"site": "gemm.acc", "component": "o", "layer": 3, "call": 0, "row": 17, "col": 200,
     "kind": "flip", "bit": 30}

Kinds: ``flip`` XORs the mask into the register for ``duration`` cycles (default 1);
``stuck0``/``stuck1`` force the masked bits to 0/1 for ``duration`` cycles. ``mask`` is an
integer or a ``"0x.."`` string; ``bit: n`` is short for ``mask: 1 << n``.

Hardware sites are registered in :data:`hw.facts.SITES`
with the register width they address and the coordinates they take; the LLM site
``gemm.acc`` addresses one element (``row`` = token, ``col`` = output channel) of the INT32
accumulator of one GEMM call. Every entry is checked,
and an error names the entry by its index.
"""
import dataclasses
import json

from hw.facts import ABFT_SITES, FAULT_KINDS, SITES

FORMAT = "realm-faults/1"
#: Fault kinds (``kind`` of an entry); the registry is :data:`hw.facts.FAULT_KINDS`.
KINDS = FAULT_KINDS

__all__ = ["FORMAT", "KINDS", "GEMM_SITE", "LLAMA_COMPONENTS",
           "LLM_COMPONENTS",
           "Fault", "FaultListError", "parse_entry", "parse_faults", "load_faults",
           "dump_faults"]

#: The LLM model's site: one element of a GEMM call's INT32 accumulator.
GEMM_SITE = "gemm.acc"
#: The GEMMs of a LLaMA-like decoder layer (SmolLM2, Gemma, Qwen), in layer order: the one list
#: of components of the project.
LLAMA_COMPONENTS = ("q", "k", "v", "qk", "sv", "o", "gate", "up", "down")
#: Every component ``gemm.acc`` can name: those, and OPT's feed-forward ``fc1``, ``fc2``.
LLM_COMPONENTS = (*LLAMA_COMPONENTS, "fc1", "fc2")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault. ``mask`` has the affected bits set; ``cycle``/``duration`` are hardware
    cycles (``cycle`` counts rising clock edges after reset is released; the fault acts on
    the register update of edges ``cycle`` to ``cycle + duration - 1``)."""

    site: str
    row: int
    col: int
    kind: str
    mask: int
    cycle: int = 0
    duration: int = 1
    component: str = None
    layer: int = None
    call: int = None

    def to_dict(self):
        d = {"site": self.site, "row": self.row, "col": self.col, "kind": self.kind,
             "mask": hex(self.mask)}
        if self.site == GEMM_SITE:
            d.update(component=self.component, layer=self.layer, call=self.call)
        else:
            d.update(cycle=self.cycle, duration=self.duration)
        return d


class FaultListError(ValueError):
    """A fault list that cannot be used; the message names the offending entry."""


def _int_field(entry, key, where, lo=0, hi=None, default=None):
    if key not in entry:
        if default is not None:
            return default
        raise FaultListError(f"{where}: missing field {key!r}")
    v = entry[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise FaultListError(f"{where}: {key} must be an integer, not {v!r}")
    if v < lo or (hi is not None and v > hi):
        rng = f"{lo} to {hi}" if hi is not None else f"at least {lo}"
        raise FaultListError(f"{where}: {key} must be {rng}, not {v}")
    return v


def _parse_mask(entry, where, width):
    if ("bit" in entry) == ("mask" in entry):
        raise FaultListError(f"{where}: give exactly one of 'bit' or 'mask'")
    if "bit" in entry:
        bit = _int_field(entry, "bit", where, 0, width - 1)
        return 1 << bit
    m = entry["mask"]
    if isinstance(m, str):
        try:
            m = int(m, 0)
        except ValueError:
            raise FaultListError(f"{where}: mask {entry['mask']!r} is not an integer") from None
    if isinstance(m, bool) or not isinstance(m, int):
        raise FaultListError(f"{where}: mask must be an integer or a '0x..' string, not {m!r}")
    if m <= 0 or m >> width:
        raise FaultListError(f"{where}: mask {hex(m) if m >= 0 else m} must be non-zero and fit "
                             f"in {width} bits")
    return m


def parse_entry(entry, index, config=None, acc_width=32):
    """Validate one entry and return its :class:`Fault`.

    Hardware sites need ``config`` (an :class:`~hw.config.ArrayConfig`) to check coordinates and
    widths; ``gemm.acc`` entries are checked against ``acc_width``.
    """
    where = f"fault {index}"
    if not isinstance(entry, dict):
        raise FaultListError(f"{where}: an entry must be a JSON object, not {entry!r}")
    site = entry.get("site")
    if site == GEMM_SITE:
        allowed = {"site", "component", "layer", "call", "row", "col", "kind", "bit", "mask"}
    elif site in SITES:
        allowed = {"site", "row", "col", "cycle", "duration", "kind", "bit", "mask"}
    else:
        known = ", ".join(sorted([*SITES, GEMM_SITE]))
        raise FaultListError(f"{where}: unknown site {site!r} (known: {known})")
    extra = sorted(set(entry) - allowed)
    if extra:
        raise FaultListError(f"{where}: unknown field {extra[0]!r} for site {site!r}")
    kind = entry.get("kind", "flip")
    if kind not in KINDS:
        raise FaultListError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if site == GEMM_SITE:
        comp = entry.get("component")
        if comp not in LLM_COMPONENTS:
            raise FaultListError(f"{where}: component must be one of "
                                 f"{', '.join(LLM_COMPONENTS)}, not {comp!r}")
        return Fault(site=site, row=_int_field(entry, "row", where),
                     col=_int_field(entry, "col", where), kind=kind,
                     mask=_parse_mask(entry, where, acc_width), component=comp,
                     layer=_int_field(entry, "layer", where),
                     call=_int_field(entry, "call", where, default=0))
    if config is None:
        raise FaultListError(f"{where}: site {site!r} is a hardware site and needs an array "
                             "configuration to be checked")
    s = SITES[site]
    if site in ABFT_SITES and str(config.abft) == "none":
        raise FaultListError(f"{where}: site {site!r} needs checksum logic (abft other than "
                             "'none')")
    nrows, ncols = s.grid(config)
    row = _int_field(entry, "row", where, 0, nrows - 1)
    col = _int_field(entry, "col", where, 0, ncols - 1)
    return Fault(site=site, row=row, col=col, kind=kind,
                 mask=_parse_mask(entry, where, s.width(config)),
                 cycle=_int_field(entry, "cycle", where),
                 duration=_int_field(entry, "duration", where, 1, default=1))


def parse_faults(doc, config=None, acc_width=32, *, port=False):
    """Validate a decoded fault list (object or list) and return a list of :class:`Fault`.

    With ``port`` the list is bound for the array's fault port: every entry must be a hardware
    site (``config`` given) and no two faults may act in the same cycle (the port takes one
    fault per cycle)."""
    if isinstance(doc, dict):
        fmt = doc.get("format", FORMAT)
        if fmt != FORMAT:
            raise FaultListError(f"fault list format must be {FORMAT!r}, not {fmt!r}")
        if "faults" not in doc:
            raise FaultListError("fault list object needs a 'faults' list")
        entries = doc["faults"]
    else:
        entries = doc
    if not isinstance(entries, list):
        raise FaultListError("fault list must be a JSON list of entries")
    faults = [parse_entry(e, i, config, acc_width) for i, e in enumerate(entries)]
    if port:
        _check_port(faults)
    return faults


def _check_port(faults):
    """Reject what the fault port cannot inject: LLM-model entries, two faults in a cycle."""
    busy = {}
    for i, f in enumerate(faults):
        if f.site == GEMM_SITE:
            raise FaultListError(f"fault {i}: site {GEMM_SITE!r} addresses the LLM model's "
                                 "GEMMs (realm llm eval --faults), not the array's registers")
        for c in range(f.cycle, f.cycle + f.duration):
            if c in busy:
                raise FaultListError(f"fault {i}: cycle {c} is taken by fault {busy[c]} (the "
                                     "fault port injects one fault per cycle)")
            busy[c] = i


def load_faults(path, config=None, acc_width=32, *, port=False):
    """Read and validate a fault-list JSON file (``port``: see :func:`parse_faults`)."""
    from golden.jsonfile import read_json

    return parse_faults(read_json(path, "fault list", FaultListError), config, acc_width,
                        port=port)


def dump_faults(faults, path=None):
    """Serialize faults to the JSON format (to ``path`` if given); return the text."""
    text = json.dumps({"format": FORMAT, "faults": [f.to_dict() for f in faults]}, indent=1)
    if path is not None:
        with open(path, "w") as f:
            f.write(text + "\n")
    return text
