"""Suite-wide set-up: the tool environment and the one seed, printed in the header."""
import pytest
import torch

from realm.rtl import sim
from realm.rtl.sim import suite_seed

sim.setup_environment()


def pytest_report_header(config):
    seed = suite_seed()
    return f"REALM_SEED={seed} (set REALM_SEED to reproduce or vary the random stimulus)"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread per test module: the golden and LLM models gain nothing from more on a
    shared 2-core machine, only OpenMP synchronization (and pytest-xdist runs two workers)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
