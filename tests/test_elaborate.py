"""The compute core elaborates at every array size the project promises."""

import pytest
from amaranth.back import rtlil

from rtl.compute_core import ComputeCore
from rtl.config import NpuConfig


@pytest.mark.parametrize("n", [4, 8, 12, 16])
def test_compute_core_elaborates(n):
    text = rtlil.convert(ComputeCore(NpuConfig(n=n)), name="compute_core")
    # One PE per array position, each with its shadow weight.
    assert text.count("weight_shadow") >= n * n


def test_verilog_is_the_same_in_every_process():
    """Simulation builds are cached by the Verilog's hash: it must not depend on Python's
    per-process hash seed (set iteration order), or every process would rebuild."""
    import os
    import subprocess
    import sys

    script = ("import hashlib; from amaranth.back import verilog; from rtl.npu import NpuTop; "
              "from rtl.config import NpuConfig; print(hashlib.sha256(verilog.convert("
              "NpuTop(NpuConfig(n=4)), name='npu_top').encode()).hexdigest())")
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        digests.add(subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert len(digests) == 1


@pytest.mark.parametrize("n", [4, 12])
def test_row_sizes_software_assumes_are_the_rtls(n):
    from rtl.accumulator import accumulator_row_layout
    from rtl.gearbox import row_bytes
    from rtl.isa import LOAD_LANE_BYTES, STORE_LANE_BYTES, LoadTarget, StoreMode
    from rtl.load_unit import quant_row_layout
    from rtl.scratchpad import scratchpad_row_layout

    config = NpuConfig(n=n)
    assert row_bytes(scratchpad_row_layout(config)) == LOAD_LANE_BYTES[LoadTarget.SCRATCHPAD] * n
    assert row_bytes(accumulator_row_layout(config)) == \
        LOAD_LANE_BYTES[LoadTarget.ACCUMULATOR] * n == STORE_LANE_BYTES[StoreMode.RAW] * n
    assert row_bytes(quant_row_layout(config)) == LOAD_LANE_BYTES[LoadTarget.QUANT] * n
    from amaranth.hdl import Fragment
    from rtl.requantizer import Requantizer
    requantizer = Requantizer(config)
    Fragment.get(requantizer, None)  # elaborated, as inside the STORE unit
    assert row_bytes(requantizer.result_row.shape()) == STORE_LANE_BYTES[StoreMode.REQUANT] * n
