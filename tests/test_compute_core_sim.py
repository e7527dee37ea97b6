"""cocotb regressions of the compute core on Verilator (and Icarus when installed).

Each run builds once per configuration (cached in build/sim/) and runs the testbench in
sim/tb_compute_core.py: random command sequences against the golden model, and the
back-to-back throughput check.
"""

import pytest

from rtl.config import NpuConfig
from sim.build import available_simulators, build_simulation, run_cocotb

# (simulator, N, random cases): >= 200 random shapes per run across N=4 and N=8 on
# Verilator; Icarus is ~30x slower, so it checks fewer; N=16 shows the large build works.
REGRESSIONS = [
    ("verilator", 4, 150, None),
    ("verilator", 8, 150, None),
    ("verilator", 16, 10, "test_random_commands"),
    ("icarus", 4, 25, None),
    ("icarus", 8, 10, None),
]
TESTS_IN_MODULE = 2


@pytest.mark.parametrize(
    "simulator, n, cases, testcase",
    [pytest.param(*entry, id=f"{entry[0]}-n{entry[1]}") for entry in REGRESSIONS
     if entry[0] in available_simulators()])
def test_compute_core(simulator, n, cases, testcase, sim_seed):
    build = build_simulation(simulator, "compute_core", NpuConfig(n=n))
    results = run_cocotb(build, seed=sim_seed, testcase=testcase,
                         extra_env={"NPU_CASES": str(cases)}, run_name=f"pytest_{simulator}")
    print(f"{simulator} N={n}: seed {sim_seed}, {results.passed} passed, {results.failed} "
          f"failed, {results.cycles_per_second:,.0f} cycles/s; log {results.log_file}")
    assert results.failed == 0, f"failing: {results.failures}; see {results.log_file}"
    assert results.passed == (1 if testcase else TESTS_IN_MODULE)
