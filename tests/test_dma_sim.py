"""cocotb regressions of the DMA (reader, writer, gearboxes) against AxiRam with backpressure.

Bus widths and row sizes cover rows equal to, narrower than, wider than, and not a multiple
of the bus (12-byte rows, as N=12 gives).
"""

import pytest

from rtl.config import NpuConfig
from conftest import run_cocotb_regression
from sim.build import available_simulators

# (simulator, AXI data width, row bytes, random copies)
REGRESSIONS = [
    ("verilator", 64, 8, 60),
    ("verilator", 64, 12, 60),
    ("verilator", 64, 4, 40),
    ("verilator", 128, 32, 40),
    ("verilator", 32, 8, 40),
    ("icarus", 64, 12, 8),
]


@pytest.mark.parametrize(
    "simulator, axi_data_width, row_bytes, cases",
    [pytest.param(*entry, id=f"{entry[0]}-bus{entry[1]}-row{entry[2]}") for entry in REGRESSIONS
     if entry[0] in available_simulators()])
def test_dma(simulator, axi_data_width, row_bytes, cases, sim_seed):
    run_cocotb_regression(simulator, "dma_copy", NpuConfig(axi_data_width=axi_data_width),
                          params={"row_bytes": row_bytes}, seed=sim_seed, cases=cases,
                          expected_tests=3)
