"""Suite-wide set-up: the tool environment and the one seed, printed in the header."""
from tb import sim
from tb.scenarios import suite_seed

sim.setup_environment()


def pytest_report_header(config):
    seed = suite_seed()
    return f"REALM_SEED={seed} (set REALM_SEED to reproduce or vary the random stimulus)"
