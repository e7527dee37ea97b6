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


def run_cocotb_regression(simulator, design, config, *, seed, cases, expected_tests,
                          params=None, testcase=None, platform=None):
    """Build (cached) and run one cocotb module; assert every test in it passed.
    ``platform``: elaborate for it, with its primitives' simulation models."""
    from sim.build import build_simulation, run_cocotb

    build = build_simulation(simulator, design, config, params, platform=platform)
    results = run_cocotb(build, seed=seed, testcase=testcase,
                         extra_env={"NPU_CASES": str(cases)}, run_name=f"pytest_{simulator}")
    print(f"{simulator} {design} {config.name} {params or ''}: seed {seed}, {results.passed} "
          f"passed, {results.failed} failed, {results.cycles_per_second:,.0f} cycles/s; "
          f"log {results.log_file}")
    assert results.failed == 0, f"failing: {results.failures}; see {results.log_file}"
    assert results.passed == expected_tests, f"ran {results.passed}; see {results.log_file}"


@pytest.fixture
def rng(request):
    """A random stream for one test, from the run's seed (in the header) and the test's name."""
    from sim.build import rng_for

    return rng_for(SEED, request.node.name)
