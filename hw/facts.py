"""Facts the generator and the golden model share: the one registry both read.

Everything here is a plain constant or a pure function of an :class:`~hw.config.ArrayConfig`,
so that :mod:`golden` can take it from the hardware package without the hardware package ever
importing :mod:`golden` (imports run ``hw`` <- ``golden`` <- ``synth``; ``tb`` uses all three).

* Fixed point of the statistical unit: :data:`LOG_FRAC` fraction bits of log2 (Mitchell's
  approximation, paper Fig. 7c), the widths of its values (:func:`stat_widths`), the split of the
  MSD accumulator (:func:`msd_halves`), its buffer banks and partial-count groups, and the
  latency from a tile's last difference to its decision (:data:`DECISION_LATENCY`).
* The policies: every one the project compares (:data:`POLICIES`), the statistical unit's three
  with their codes (:data:`UNIT_POLICIES`), the closed loop's (:data:`ABFT_POLICIES`) and the
  timing-error baselines (:data:`TIMING_POLICIES`); the counter names (:data:`COUNTERS`).
* Faults: the kinds in fault-port code order (:data:`FAULT_KINDS`, :class:`FaultKind`), the
  PE registers in ``fi_sel`` bit order (:data:`PE_REGISTERS`), and the registry of hardware
  fault sites (:data:`SITES`) with their width and coordinate grid per configuration. The
  array's ``fi_site`` index is the position of a site in :func:`fault_sites`.
"""
import dataclasses
import math

from amaranth.lib import enum

#: Fraction bits of the fixed-point log2 (``log2q``): leading-one position, then this many bits.
LOG_FRAC = 4
#: Cycles from a tile's last difference on the statistical unit's input to ``o_done``.
DECISION_LATENCY = 11
#: Buffer banks of log2|d|, used in turn (a tile may follow the previous one at once).
BANKS = 5
#: Comparator outputs summed per partial count of countif.
POP_GROUP = 16

#: The statistical unit's recompute rules, by name, with their ``policy`` code in a parameter
#: set: any non-zero difference, the MSD threshold, ReaLM's statistical rule.
CLASSIC, APPROX, REALM = 0, 1, 2
UNIT_POLICIES = {"classic": CLASSIC, "approx": APPROX, "realm": REALM}
#: The timing-error baselines of the energy study: duplication and ThUnderVolt's correction.
TIMING_POLICIES = ("dmr", "thundervolt")
#: Every protection policy the project compares, in report order: none (the unprotected
#: array), the timing baselines, then the unit's rules.
POLICIES = ("none", *TIMING_POLICIES, *UNIT_POLICIES)
#: The closed loop's policies: the unprotected array and the unit's rules.
ABFT_POLICIES = ("none", *UNIT_POLICIES)

#: Saturating event counters of the statistical unit (ports ``c_<name>``), besides ``c_hist``.
COUNTERS = ("tiles_checked", "tiles_mismatch", "tiles_flagged", "errors_above")

#: Fault kinds, in fault-port ``fi_kind`` code order.
FAULT_KINDS = ("flip", "stuck0", "stuck1")


class FaultKind(enum.Enum, shape=2):
    """What an injected fault does to the masked bits of the next register value."""

    #: Invert them (a transient bit flip).
    FLIP = FAULT_KINDS.index("flip")
    #: Force them to 0.
    STUCK0 = FAULT_KINDS.index("stuck0")
    #: Force them to 1.
    STUCK1 = FAULT_KINDS.index("stuck1")


#: PE register families a fault can select, in a PE's ``fi_sel`` bit order.
PE_REGISTERS = ("a", "b", "acc")


def clog2(n):
    """Bits to index ``n`` things (at least 1)."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def stat_widths(n, acc_width):
    """Widths of the statistical unit's values for ``n``-difference tiles: MSD, log2q of MSD
    and of d, freq count, theta."""
    msd = acc_width + clog2(n) + 1
    log_msd = (msd.bit_length() + LOG_FRAC)
    log_d = (acc_width.bit_length() + LOG_FRAC)
    return {"msd": msd, "log_msd": log_msd, "log_d": log_d, "freq": (n).bit_length(),
            # 16 * b (20 bits signed) - am1 * log2q|MSD| (10 + log_msd bits), >> 8.
            "theta": max(20, 10 + log_msd) + 2 - 8}


def msd_halves(width):
    """Widths of the low and high halves of the MSD accumulator."""
    low = (width + 1) // 2
    return low, width - low


@dataclasses.dataclass(frozen=True)
class Site:
    """A register family faults can address. ``width(config)`` is its bit width,
    ``grid(config)`` the (rows, cols) range of its coordinates; ``abft`` sites exist only
    with checksum logic."""

    name: str
    width: object
    grid: object
    doc: str
    abft: bool = False


def _pe_grid(c):
    return (c.rows, c.cols)


def _ck_acc_grid(c):
    return (c.rows, 1) if str(c.dataflow) == "ws" else (1, c.cols)


def _msd_width(c):
    return stat_widths(c.stat_n, c.acc_width)["msd"]


#: Hardware fault sites, by name, in the fault port's ``fi_site`` order.
SITES = {s.name: s for s in (
    Site("pe.a", lambda c: c.data_width, _pe_grid, "activation register of PE (row, col)"),
    Site("pe.b", lambda c: c.data_width, _pe_grid,
         "weight register of PE (row, col): stationary (WS) or streaming (OS)"),
    Site("pe.acc", lambda c: c.acc_width, _pe_grid,
         "accumulator of PE (row, col): the partial sum (WS) or the output (OS)"),
    Site("ck.acc", lambda c: c.acc_width, _ck_acc_grid,
         "checksum-PE accumulator: eᵀWx of row (row, 0) (WS column) or eᵀAB of column "
         "(0, col) (OS row)", abft=True),
    Site("ck.y", lambda c: c.acc_width, lambda c: (1, c.cols),
         "output checksum register of column (0, col): the eᵀy adder chain (WS) or the "
         "eᵀY accumulator row, which then holds and shifts the differences (OS)", abft=True),
    Site("stat.msd", _msd_width, lambda c: (1, 1),
         "the statistical unit's MSD accumulator (0, 0)", abft=True),
)}

#: Sites that exist only with checksum logic (``abft`` other than ``none``).
ABFT_SITES = tuple(name for name, s in SITES.items() if s.abft)


def fault_sites(config):
    """Names of the sites ``config`` has, in ``fi_site`` order."""
    has_abft = str(config.abft) != "none"
    return tuple(name for name, s in SITES.items() if has_abft or not s.abft)


def fault_site_index(config, site):
    """The fault port's ``fi_site`` code of ``site`` in ``config``."""
    return fault_sites(config).index(site)


def fault_mask_width(config):
    """Width of the fault port's ``fi_mask``: the widest register it reaches."""
    return max(SITES[name].width(config) for name in fault_sites(config))
