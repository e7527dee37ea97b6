"""cocotb regressions of the compute core on Verilator (and Icarus when installed).

Each run builds once per configuration (cached in build/sim/) and runs the testbench in
sim/tb_compute_core.py: random command sequences against the golden model, and the
back-to-back throughput check.
"""

import pytest

from rtl.config import NpuConfig
from rtl.target import Target
from conftest import run_cocotb_regression
from sim.build import available_simulators

# (simulator, N, random cases, test, FPGA family): >= 200 random shapes per run across N=4
# and N=8 on Verilator; Icarus is ~30x slower, so it checks fewer; N=16 shows the large build
# works. The ECP5 build runs the DSP and block RAM instances on their models (a read that
# collides with a write returns garbage there, which the accumulator must never use).
REGRESSIONS = [
    ("verilator", 4, 150, None, None),
    ("verilator", 8, 150, None, None),
    ("verilator", 16, 10, "test_random_commands", None),
    ("verilator", 4, 60, "test_random_commands", "ecp5"),
    ("icarus", 4, 25, None, None),
    ("icarus", 8, 10, None, None),
]
TESTS_IN_MODULE = 2


@pytest.mark.parametrize(
    "simulator, n, cases, testcase, family",
    [pytest.param(*entry, id=f"{entry[0]}-n{entry[1]}" + (f"-{entry[4]}" if entry[4] else ""))
     for entry in REGRESSIONS if entry[0] in available_simulators()])
def test_compute_core(simulator, n, cases, testcase, family, sim_seed):
    run_cocotb_regression(simulator, "compute_core", NpuConfig(n=n), seed=sim_seed, cases=cases,
                          testcase=testcase, expected_tests=1 if testcase else TESTS_IN_MODULE,
                          platform=Target(family) if family else None)
