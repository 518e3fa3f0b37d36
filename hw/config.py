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
        """Short name used for build directories, test ids and report rows."""
        name = f"{self.rows}x{self.cols}-{self.dataflow}"
        if (self.data_width, self.acc_width) != (8, 32):
            name += f"-i{self.data_width}a{self.acc_width}"
        if self.abft is not Abft.NONE:
            name += f"-{self.abft}"
        if self.fault_port:
            name += "-fi"
        return name

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
