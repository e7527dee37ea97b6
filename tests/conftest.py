"""Shared fixtures: one seed per run for every randomised simulation, printed in the header."""

import pytest

from sim.build import available_simulators, choose_seed

SEED = choose_seed()


def pytest_report_header(config):
    simulators = available_simulators()
    note = "" if "icarus" in simulators else " (icarus: iverilog not on PATH, not run)"
    return [f"npu: simulation seed {SEED} (re-run with NPU_SEED={SEED})",
            f"npu: simulators {', '.join(simulators)}{note}"]


@pytest.fixture(scope="session")
def sim_seed():
    return SEED
