"""cocotb system tests of the whole NPU (sim/tb_npu.py) on Verilator and Icarus."""

import pytest

from rtl.config import NpuConfig
from sim.build import available_simulators, build_simulation, run_cocotb

# (simulator, N, AXI data width, random GEMMs)
REGRESSIONS = [
    ("verilator", 4, 64, 12),
    ("verilator", 8, 64, 10),
    ("verilator", 8, 32, 4),
    ("verilator", 8, 128, 4),
    ("verilator", 16, 64, 3),
    ("icarus", 4, 64, 3),
]
TESTS_IN_MODULE = 5


@pytest.mark.parametrize(
    "simulator, n, axi_data_width, cases",
    [pytest.param(*entry, id=f"{entry[0]}-n{entry[1]}-bus{entry[2]}") for entry in REGRESSIONS
     if entry[0] in available_simulators()])
def test_npu(simulator, n, axi_data_width, cases, sim_seed):
    build = build_simulation(simulator, "npu_top",
                             NpuConfig(n=n, axi_data_width=axi_data_width))
    results = run_cocotb(build, seed=sim_seed, extra_env={"NPU_CASES": str(cases)},
                         run_name="pytest")
    print(f"{simulator} N={n} bus {axi_data_width}: seed {sim_seed}, {results.passed} passed, {results.failed} "
          f"failed, {results.cycles_per_second:,.0f} cycles/s; log {results.log_file}")
    assert results.failed == 0, f"failing: {results.failures}; see {results.log_file}"
    assert results.passed == TESTS_IN_MODULE
