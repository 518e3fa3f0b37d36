"""Error models of a voltage sweep: what a supply voltage does to the INT32 accumulators.

``timing``
    Gate-level timing of our PE on real operand streams (:mod:`realm.energy.vtable`): per MAC
    cycle a probability ``p(V)`` and the error values the late cycles latch (mostly the stale
    sign bit). Points are run at a voltage (``"mode": "timing"``).
``bitflip``
    The paper's model (§IV, §VI): each accumulator element flips one bit with probability
    ``BER(V)``, the bit uniform in a range (0..29 as the paper's evaluation, 30 as its
    characterization). ``BER(V)`` is a :class:`BerCurve`: parametric (onset voltage, BER at
    the onset, slope in decades per 10 mV) or a user's CSV of ``v,ber``.

A bitflip point depends on the voltage only through ``BER(V)``: the injector at ``V`` is the
injector at BER ``b = BER(V)``, with the same seeds, so a campaign run on a BER grid *is* the
campaign at the voltages ``V(b)`` of any curve (:meth:`BerCurve.voltage`), exactly, with no
interpolation of results. Only the voltages between grid BERs are not measured; a sweet spot
at either end of the grid is a bound (:mod:`realm.energy.bitflip`).
"""
import csv
import dataclasses
import math

NOMINAL = 0.9
#: Bit ranges of the paper: its evaluation (uniform in 0..29) and characterization (bit 30).
PAPER_BITS = ((0, 29), (30, 30))


class CurveError(ValueError):
    """A BER curve that cannot be used (one line)."""


def read_rows(path, what, error, columns, named):
    """The rows (dicts) of the CSV at ``path``; ``error`` (one line, naming the file as
    ``what``) if it is missing, unreadable, or its header lacks one of ``columns`` (said as
    ``named``)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise error(f"{what} {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise error(f"{what} {path!r} cannot be read: {e}") from None
    if not rows or not set(columns) <= set(rows[0]):
        raise error(f"{what} {path!r} needs a header with {named}")
    return rows


@dataclasses.dataclass(frozen=True)
class BerCurve:
    """``BER(V)`` per INT32 accumulator element, zero above the onset.

    Parametric: ``BER(V) = onset_ber * 10 ** (slope * (onset_v - V) / 0.01)`` for ``V <=
    onset_v`` (``slope`` in decades per 10 mV), defined down to the voltage where it reaches 1.
    Table (``points``, from a CSV): log-linear interpolation between the rows, ``BER`` strictly
    rising as ``V`` falls wherever it is positive; zero above the highest row when that row's
    BER is zero (else the table stops there)."""

    onset_v: float = None
    onset_ber: float = None
    slope: float = None
    points: tuple = None
    source: str = None

    def __post_init__(self):
        if self.points is None:
            for name, v in (("onset_v", self.onset_v), ("onset_ber", self.onset_ber),
                            ("slope", self.slope)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise CurveError(f"BER curve: {name} must be a number, not {v!r}")
            if not 0 < self.onset_v <= NOMINAL:
                raise CurveError(f"BER curve: onset voltage {self.onset_v!r} must be in (0, "
                                 f"{NOMINAL}] V")
            if not 0 < self.onset_ber <= 1:
                raise CurveError(f"BER curve: BER at the onset {self.onset_ber!r} must be in "
                                 "(0, 1]")
            if not self.slope > 0:
                raise CurveError(f"BER curve: slope {self.slope!r} must be positive (decades "
                                 "per 10 mV)")
        else:
            _check_points(self.points, self.source or "BER table")

    @classmethod
    def parametric(cls, onset_v, onset_ber, slope):
        return cls(onset_v=float(onset_v), onset_ber=float(onset_ber), slope=float(slope))

    @classmethod
    def from_csv(cls, path):
        """A table curve from a CSV with columns ``v`` and ``ber`` (a header row; other
        columns ignored)."""
        rows = read_rows(path, "BER table", CurveError, ("v", "ber"), "columns v and ber")
        pts = []
        for i, r in enumerate(rows, start=2):
            try:
                pts.append((float(r["v"]), float(r["ber"])))
            except (TypeError, ValueError):
                raise CurveError(f"BER table {path!r}, line {i}: v and ber must be numbers, not "
                                 f"{r.get('v')!r}, {r.get('ber')!r}") from None
        return cls(points=tuple(sorted(pts, reverse=True)), source=str(path))

    @property
    def name(self):
        """A short name: ``on0.85-1e-08-s0.25`` or the table's file name."""
        if self.points is None:
            return f"on{self.onset_v:g}-{self.onset_ber:g}-s{self.slope:g}"
        import pathlib
        return pathlib.Path(self.source).stem

    def describe(self):
        """The curve as data (recorded beside every result derived from it)."""
        if self.points is None:
            return {"onset_v": self.onset_v, "onset_ber": self.onset_ber, "slope": self.slope}
        return {"table": self.source, "points": [list(p) for p in self.points]}

    def v_min(self):
        """The lowest voltage the curve is defined at."""
        if self.points is None:
            return self.onset_v - 0.01 * math.log10(1.0 / self.onset_ber) / self.slope
        return self.points[-1][0]

    def v_max_errors(self):
        """The highest voltage with a non-zero BER (errors start here)."""
        if self.points is None:
            return self.onset_v
        return next(v for v, b in self.points if b > 0)

    def ber(self, v):
        """``BER(v)``; :class:`CurveError` below the curve's range."""
        if v < self.v_min() - 1e-12:
            raise CurveError(f"{v:g} V is below the BER curve's range (from {self.v_min():.4g} V)")
        if self.points is None:
            if v > self.onset_v:
                return 0.0
            return min(1.0, self.onset_ber * 10.0 ** (self.slope * (self.onset_v - v) / 0.01))
        pts = self.points
        if v >= pts[0][0]:
            if pts[0][1] > 0 and v > pts[0][0]:
                raise CurveError(f"{v:g} V is above the BER table's range (to {pts[0][0]:g} V, "
                                 "where its BER is not 0)")
            return pts[0][1]
        for (vh, bh), (vl, bl) in zip(pts, pts[1:]):
            if vl <= v <= vh:
                if bh == 0:
                    return 0.0 if v > vl else bl
                t = (vh - v) / (vh - vl)
                return 10.0 ** (math.log10(bh) + t * (math.log10(bl) - math.log10(bh)))
        return pts[-1][1]

    def voltage(self, ber):
        """The voltage at which ``BER(V) = ber`` (``0 < ber``, at most the curve's largest)."""
        if not ber > 0:
            raise CurveError(f"BER {ber!r} has no voltage (the curve is 0 above its onset)")
        if self.points is None:
            if ber > 1:
                raise CurveError(f"BER {ber!r} is above 1")
            return self.onset_v - 0.01 * math.log10(ber / self.onset_ber) / self.slope
        pos = [(v, b) for v, b in self.points if b > 0]
        if not pos[0][1] <= ber <= pos[-1][1]:
            raise CurveError(f"BER {ber:g} is outside the table's {pos[0][1]:g} … "
                             f"{pos[-1][1]:g}")
        for (vh, bh), (vl, bl) in zip(pos, pos[1:]):
            if bh <= ber <= bl:
                t = (math.log10(ber) - math.log10(bh)) / (math.log10(bl) - math.log10(bh))
                return vh - t * (vh - vl)
        return pos[0][0]


def _check_points(pts, source):
    if len(pts) < 2:
        raise CurveError(f"{source}: a BER table needs at least two rows")
    for v, b in pts:
        if not (math.isfinite(v) and 0 < v <= 2):
            raise CurveError(f"{source}: voltage {v!r} must be in (0, 2] V")
        if not (math.isfinite(b) and 0 <= b <= 1):
            raise CurveError(f"{source}: BER {b!r} at {v:g} V must be in [0, 1]")
    vs = [v for v, _ in pts]
    if len(set(vs)) != len(vs):
        raise CurveError(f"{source}: voltage {next(v for v in vs if vs.count(v) > 1):g} V is "
                         "given twice")
    for (vh, bh), (vl, bl) in zip(pts, pts[1:]):  # pts run from the highest voltage down
        if bl < bh or (bh > 0 and bl == bh):
            raise CurveError(f"{source}: BER must rise as the voltage falls ({bh:g} at {vh:g} V, "
                             f"{bl:g} at {vl:g} V)")


def parse_curve(text):
    """A :class:`BerCurve` from ``onset_v=0.85,onset_ber=1e-8,slope=0.25`` (any order) or the
    path of a CSV of ``v,ber``."""
    if "=" not in text:
        return BerCurve.from_csv(text)
    fields = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in ("onset_v", "onset_ber", "slope"):
            raise CurveError(f"BER curve {text!r}: expected onset_v=V,onset_ber=B,slope=S "
                             "(decades per 10 mV) or the path of a CSV of v,ber")
        try:
            fields[key] = float(value)
        except ValueError:
            raise CurveError(f"BER curve {text!r}: {key} must be a number, not "
                             f"{value.strip()!r}") from None
    missing = [k for k in ("onset_v", "onset_ber", "slope") if k not in fields]
    if missing:
        raise CurveError(f"BER curve {text!r}: {missing[0]} is missing")
    return BerCurve.parametric(**fields)
