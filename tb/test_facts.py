# amaranth: UnusedElaboratable=no
"""The shared registry (:mod:`hw.facts`) against what the generator builds and what the golden
model does. The fault port's ``fi_site`` index is a position in the registry; the test drives
the generated RTL (Amaranth's simulator, through :mod:`golden.ports`) with one fault per site,
coded from the registry, and requires the trace of the golden model, which applies the fault by
site name. A site whose code reached another register would change the trace."""
import pytest

from golden.array import ArrayModel
from golden.faultgen import generator
from golden.faults import Fault
from golden.stats import policy_sets
from golden.stimulus import Driver
from hw.array import OSArray, WSArray
from hw.config import ArrayConfig
from hw.facts import FAULT_KINDS, SITES, FaultKind, fault_mask_width, fault_site_index, fault_sites
from realm.rtl.pysim import ports_by_name, run_pysim
from realm.rtl.sim import suite_seed
from tb.scenarios import operands


def test_fault_kind_codes_follow_the_registry():
    assert [k.value for k in FaultKind] == [FAULT_KINDS.index(k.name.lower()) for k in FaultKind]


@pytest.mark.parametrize("abft", ["none", "realm"])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_fault_port_widths_follow_the_registry(dataflow, abft):
    c = ArrayConfig(rows=2, cols=3, dataflow=dataflow, abft=abft, fault_port=True)
    ports = ports_by_name({"ws": WSArray, "os": OSArray}[dataflow](c))
    assert len(ports["fi_mask"]) == fault_mask_width(c)
    assert 1 << (len(ports["fi_site"]) - 1) < len(fault_sites(c)) <= 1 << len(ports["fi_site"])
    assert fault_sites(c) == tuple(s for s in SITES if abft != "none" or not SITES[s].abft)


def _program(config, seed):
    g = generator(seed, "facts", config.id)
    prog = policy_sets(config) + [("select", 2)]
    r, c = config.rows, config.cols
    if config.dataflow.value == "ws":
        return prog + [("load", operands(config, (r, c), "random", g)),
                       ("stream", operands(config, (4, r), "random", g), 0, True)]
    return prog + [("tile", operands(config, (r, 3), "random", g),
                    operands(config, (3, c), "random", g), 0, True)]


def _first_visible(config, program, site):
    """A fault on ``site`` (position (0, 0), one bit) at the first cycle where the golden
    model's trace shows it."""
    clean = ArrayModel(config).run(Driver(config, program))
    for cycle in range(len(clean)):
        f = Fault(site, 0, 0, "flip", 1 << 2, cycle=cycle)
        faulty = ArrayModel(config, [f]).run(Driver(config, program))
        if faulty != clean:
            return f, faulty
    raise AssertionError(f"no cycle where a fault on {site} shows in the outputs")


@pytest.mark.parametrize("site", list(SITES))
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_fault_site_index_reaches_the_registered_register(dataflow, site):
    config = ArrayConfig(rows=2, cols=3, dataflow=dataflow, abft="realm", fault_port=True)
    program = _program(config, suite_seed())
    fault, want = _first_visible(config, program, site)
    assert fault_site_index(config, site) == list(SITES).index(site)
    assert run_pysim(config, program, len(want), [fault]) == want
