"""The one configuration object of the project.

:class:`ArrayConfig` is the single source of truth for the generator (``hw``), the golden model
(``golden``), the testbenches (``tb``) and the synthesis flow (``synth``). It is frozen, validated
on construction and serializes to JSON, so a simulator process or a report can rebuild exactly
the configuration that produced a piece of Verilog.
"""
import dataclasses
import enum
import json
import math
import re


class Dataflow(enum.Enum):
    """Which operand stays in the processing elements."""

    #: Weights are loaded once per tile; activation vectors stream through.
    WS = "ws"
    #: Each PE keeps one output; activations and weights both stream, then the tile drains.
    OS = "os"

    def __str__(self):
        return self.value


class Abft(enum.Enum):
    """Which fault-tolerance logic the generator adds (the variants the paper compares, Fig. 8)."""

    #: Unprotected array.
    NONE = "none"
    #: Checksums; recompute on any non-zero difference [Huang & Abraham 1984].
    CLASSIC = "classic"
    #: Checksums and a matrix-sum-deviation threshold (ApproxABFT-like).
    APPROX = "approx"
    #: Checksums and the ReaLM statistical unit; can also run the two other policies.
    REALM = "realm"

    def __str__(self):
        return self.value


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")


def _check_enum(name, value, enum_type):
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_type)
        raise ValueError(f"{name} must be one of {choices}, not {value!r}") from None


@dataclasses.dataclass(frozen=True)
class ArrayConfig:
    """Parameters of one generated systolic array.

    Parameters
    ----------
    rows, cols : int
        Array size, 1 to 256 each. In WS, ``rows`` is the reduction length of a weight tile and
        ``cols`` the number of outputs; in OS, the output tile is ``rows`` x ``cols``.
    dataflow : Dataflow or str
        ``"ws"`` or ``"os"``.
    data_width : int
        Width of the signed operands, 2 to 16 (8 for INT8).
    acc_width : int
        Width of the signed accumulators, ``2 * data_width`` to 64 (32 for INT32). Accumulation
        wraps modulo ``2 ** acc_width`` (two's complement), as integer hardware does.
    abft : Abft or str
        ``"none"``, ``"classic"``, ``"approx"`` or ``"realm"``.
    fault_port : bool
        Add the fault-injection port (off by default: it costs area).
    param_sets : int
        Statistical-unit parameter sets, one per network component (1 to 16).
    hist_bins : int
        Bins of the ``floor(log2|d|)`` histogram counter (1 to ``acc_width``).
    counter_width : int
        Width of the saturating event counters (4 to 48).

    Raises
    ------
    ValueError
        One line that names the field, the rule and the value.
    """

    rows: int = 8
    cols: int = 8
    dataflow: Dataflow = Dataflow.WS
    data_width: int = 8
    acc_width: int = 32
    abft: Abft = Abft.NONE
    fault_port: bool = False
    param_sets: int = 4
    hist_bins: int = 8
    counter_width: int = 32

    def __post_init__(self):
        _check_int("rows", self.rows, 1, 256)
        _check_int("cols", self.cols, 1, 256)
        object.__setattr__(self, "dataflow", _check_enum("dataflow", self.dataflow, Dataflow))
        _check_int("data_width", self.data_width, 2, 16)
        _check_int("acc_width", self.acc_width, 2 * self.data_width, 64)
        object.__setattr__(self, "abft", _check_enum("abft", self.abft, Abft))
        if not isinstance(self.fault_port, bool):
            raise ValueError(f"fault_port must be true or false, not {self.fault_port!r}")
        _check_int("param_sets", self.param_sets, 1, 16)
        _check_int("hist_bins", self.hist_bins, 1, self.acc_width)
        _check_int("counter_width", self.counter_width, 4, 48)

    @property
    def id(self):
        """Short name for build directories, test ids and report rows, unique over every field:
        ``<name>[-i<data>a<acc>][-<abft>][-fi][-s<param_sets>][-h<hist_bins>][-n<counter>]``,
        each part only where the field is not its default. :meth:`from_id` reads it back."""
        d = _DEFAULTS
        name = self.name
        if (self.data_width, self.acc_width) != (d["data_width"], d["acc_width"]):
            name += f"-i{self.data_width}a{self.acc_width}"
        if self.abft is not Abft.NONE:
            name += f"-{self.abft}"
        if self.fault_port:
            name += "-fi"
        for key, tag in _ID_TAGS.items():
            if getattr(self, key) != d[key]:
                name += f"-{tag}{getattr(self, key)}"
        return name

    @classmethod
    def from_id(cls, text):
        """The configuration whose :attr:`id` is ``text``; ``ValueError`` if none is."""
        m = _ID.fullmatch(str(text))
        if m is None:
            raise ValueError(f"{text!r} is not an array configuration id (e.g. 8x8-ws, "
                             "16x16-os-realm-fi)")
        fields = {k: int(v) for k, v in m.groupdict().items()
                  if v is not None and k not in ("dataflow", "abft", "fi")}
        config = cls(**fields, dataflow=m["dataflow"], abft=m["abft"] or "none",
                     fault_port=m["fi"] is not None)
        if config.id != text:  # a default spelled out, or parts out of order
            raise ValueError(f"{text!r} is not an array configuration id; did you mean "
                             f"{config.id!r}?")
        return config

    @property
    def name(self):
        """The array's name in parameter files, campaign specs and results:
        ``ROWSxCOLS-DATAFLOW`` (e.g. ``256x256-ws``)."""
        return f"{self.rows}x{self.cols}-{self.dataflow}"

    @classmethod
    def from_name(cls, text, **fields):
        """The configuration of the array named ``text`` (``ROWSxCOLS-DATAFLOW``, or
        ``N-DATAFLOW`` for a square one), the other ``fields`` as given; ``ValueError`` with one
        line otherwise."""
        m = _NAME.fullmatch(str(text))
        if m is None:
            raise ValueError(f"array must look like 64x64-ws or 16-os, not {text!r}")
        rows = int(m["rows"])
        try:
            return cls(rows=rows, cols=int(m["cols"] or rows), dataflow=m["dataflow"], **fields)
        except ValueError as e:
            raise ValueError(f"array {text!r}: {e}") from None

    @property
    def latency(self):
        """Cycles from an accepted beat to its result (WS), or from the last beat of a tile to
        its first output vector (OS)."""
        return self.rows + self.cols - 1

    @property
    def checksum_weight_width(self):
        """Width of one entry of eᵀW: a sum of ``cols`` (WS) or ``rows`` (OS) signed operands,
        wide enough never to overflow."""
        n = self.cols if self.dataflow is Dataflow.WS else self.rows
        return self.data_width + max(1, math.ceil(math.log2(n))) if n > 1 else self.data_width

    @property
    def stat_n(self):
        """Differences per checked tile: ``cols`` (WS: one per streamed vector, up to ``cols``
        vectors; OS: one per output column)."""
        return self.cols

    def replace(self, **changes):
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["dataflow"] = str(self.dataflow)
        d["abft"] = str(self.abft)
        return d

    def to_json(self):
        """Serialize to a JSON object string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown configuration field {unknown[0]!r}")
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        """Rebuild a configuration from :meth:`to_json` output."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"configuration is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError("configuration JSON must be an object")
        return cls.from_dict(d)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ArrayConfig)}
#: The id's tags of the statistical unit's sizes.
_ID_TAGS = {"param_sets": "s", "hist_bins": "h", "counter_width": "n"}
_NAME = re.compile(r"(?P<rows>\d+)(?:x(?P<cols>\d+))?-(?P<dataflow>ws|os)")
_ID = re.compile(r"(?P<rows>\d+)x(?P<cols>\d+)-(?P<dataflow>ws|os)"
                 r"(?:-i(?P<data_width>\d+)a(?P<acc_width>\d+))?"
                 r"(?:-(?P<abft>classic|approx|realm))?(?P<fi>-fi)?"
                 r"(?:-s(?P<param_sets>\d+))?(?:-h(?P<hist_bins>\d+))?(?:-n(?P<counter_width>\d+))?")
