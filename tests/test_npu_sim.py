"""cocotb system tests of the whole NPU (sim/tb_npu.py) on Verilator and Icarus."""

import pytest

from rtl.config import NpuConfig
from conftest import run_cocotb_regression
from sim.build import available_simulators

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
    run_cocotb_regression(simulator, "npu_top", NpuConfig(n=n, axi_data_width=axi_data_width),
                          seed=sim_seed, cases=cases, expected_tests=TESTS_IN_MODULE)
