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
