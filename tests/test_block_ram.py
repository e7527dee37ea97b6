"""``rtl.block_ram.BlockRam`` against a Python list of rows: as built for the ECP5 (DP16KD
instances with their output registers, simulated on Verilator with ``sim/models/DP16KD.v``)
in each port configuration the design uses, and as built elsewhere (a ``Memory`` and a
register). Both must give a read's row ``BLOCK_RAM_READ_LATENCY`` cycles later."""

import pytest

from rtl.block_ram import dp16kd_data_width
from rtl.config import NpuConfig
from rtl.target import Target
from sim.build import build_simulation, choose_seed, run_cocotb


@pytest.mark.parametrize("family, depth, width", [
    ("ecp5", 64, 40),      # 36-bit pseudo dual-port blocks, the last one partly used (quant)
    ("ecp5", 1000, 40),    # 18-bit blocks (accumulator)
    ("ecp5", 2048, 20),    # 9-bit blocks (scratchpad)
    ("ecp5", 16384, 3),    # 1-bit blocks, every address pin
    (None, 2048, 20),      # Memory and a register
])
def test_block_ram_reads_the_rows_written(family, depth, width):
    platform = Target(family) if family else None
    build = build_simulation("verilator", "block_ram", NpuConfig(n=2),
                             dict(depth=depth, width=width), platform=platform)
    results = run_cocotb(build, seed=choose_seed())
    assert results.passed == 1 and results.failed == 0, f"see {results.log_file}"


def test_dp16kd_configuration_is_the_widest_deep_enough():
    assert [dp16kd_data_width(depth)
            for depth in (1, 512, 513, 1024, 1025, 2048, 4096, 8192, 16384)] \
        == [36, 36, 18, 18, 9, 9, 4, 2, 1]
    with pytest.raises(ValueError, match="deeper than one DP16KD"):
        dp16kd_data_width(16385)
