"""Stimulus programs (see :mod:`golden.stimulus`) for the array tests, built from a seed so that
any failure reproduces from the seed the test log prints."""
import torch

from golden.faultgen import generator
from hw.config import Dataflow

#: Scenario names, in the order the tests run them.
SCENARIOS = ("random", "min", "max", "zero", "identity", "extremes", "back_to_back", "gaps",
             "reset_mid")


def operands(config, shape, kind, g):
    """A tensor of operands of the given kind: ``random``, ``min``, ``max``, ``zero`` or
    ``extremes`` (drawn from min, max, -1, 0, 1)."""
    lo, hi = -(1 << (config.data_width - 1)), (1 << (config.data_width - 1)) - 1
    if kind == "random":
        return torch.randint(lo, hi + 1, shape, generator=g)
    if kind in ("min", "max", "zero"):
        return torch.full(shape, {"min": lo, "max": hi, "zero": 0}[kind])
    if kind == "extremes":
        pool = torch.tensor([lo, hi, -1, 0, 1])
        return pool[torch.randint(0, len(pool), shape, generator=g)]
    raise ValueError(f"unknown operand kind {kind!r}")


def _eye(n, m):
    return torch.eye(n, m, dtype=torch.int64)


def make_program(config, scenario, seed):
    """Build the program of ``scenario`` for ``config``."""
    g = generator(seed, config.id, scenario)
    rows, cols = config.rows, config.cols
    rand = lambda *shape: operands(config, shape, "random", g)  # noqa: E731
    if config.dataflow is Dataflow.WS:
        m = 2 * rows + 3

        def tile(kind, n=m, gap=0):
            return [("load", operands(config, (rows, cols), kind, g)),
                    ("stream", operands(config, (n, rows), kind, g), gap)]
        if scenario in ("random", "min", "max", "zero", "extremes"):
            return tile(scenario)
        if scenario == "identity":
            return [("load", _eye(rows, cols)), ("stream", rand(m, rows), 0)]
        if scenario == "back_to_back":
            return tile("random", 3) + tile("random", rows + 1) + tile("extremes", 1)
        if scenario == "gaps":
            return (tile("random", 4, gap=1) + [("idle", 3)] + tile("random", 3, gap=3)
                    + [("idle", 1)] + tile("random", 2, gap=0))
        if scenario == "reset_mid":
            return (tile("random", rows + 2) + [("reset", 2)] + tile("random", 4))
    else:
        k = rows + cols + 3

        def tile(kind, n=k, gap=0, last=True):
            return [("tile", operands(config, (rows, n), kind, g),
                     operands(config, (n, cols), kind, g), gap, last)]
        if scenario in ("random", "min", "max", "zero", "extremes"):
            return tile(scenario)
        if scenario == "identity":
            return [("tile", rand(rows, cols), _eye(cols, cols), 0, True)]
        if scenario == "back_to_back":
            return tile("random", 1) + tile("random", 2) + tile("extremes", k) + tile("random", 1)
        if scenario == "gaps":
            return tile("random", 3, gap=1) + [("idle", 4)] + tile("random", k, gap=2)
        if scenario == "reset_mid":
            return tile("random", k, last=False) + [("reset", 2)] + tile("random", 5)
    raise ValueError(f"unknown scenario {scenario!r}")


def random_param_set(rnd, sets, n):
    """``(set index, StatParams)`` drawn with ``rnd(hi)`` (an integer below ``hi``) for a unit
    of ``sets`` parameter sets and ``n``-difference tiles: every field over its range."""
    from golden.params import StatParams
    a = 1 + rnd(1000) / 500
    return rnd(sets), StatParams(am1=round((a - 1) * 256), b_q=rnd(40 * 256) - 8 * 256,
                                 freq_th=rnd(n + 1), msd_th=rnd(1 << rnd(36)), policy=rnd(4),
                                 msd_mode=rnd(2))
