"""cocotb regressions of the DMA (reader, writer, gearboxes) against AxiRam with backpressure.

Bus widths and row sizes cover rows equal to, narrower than, wider than, and not a multiple
of the bus (12-byte rows, as N=12 gives).
"""

import pytest

from rtl.config import NpuConfig
from sim.build import available_simulators, build_simulation, run_cocotb

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
    build = build_simulation(simulator, "dma_copy", NpuConfig(axi_data_width=axi_data_width),
                             {"row_bytes": row_bytes})
    results = run_cocotb(build, seed=sim_seed, extra_env={"NPU_CASES": str(cases)},
                         run_name="pytest")
    print(f"{simulator} bus {axi_data_width} row {row_bytes}: seed {sim_seed}, "
          f"{results.passed} passed, {results.failed} failed; log {results.log_file}")
    assert results.failed == 0, f"failing: {results.failures}; see {results.log_file}"
    assert results.passed == 3
