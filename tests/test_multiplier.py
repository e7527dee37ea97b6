"""``rtl.multiplier.registered_multiply`` as built for the ECP5 (a MULT18X18D with its own
registers, simulated on Verilator with ``sim/models/MULT18X18D.v``) against Python's
products, for the operand shapes the design uses: the PE's int8 x int8, the requantizer's
16-bit halves (signed high, unsigned low) and STORE's unsigned byte count."""

import pytest

from rtl.config import NpuConfig
from rtl.target import Target
from sim.build import build_simulation, choose_seed, run_cocotb


@pytest.mark.parametrize("a_width, a_signed, b_width, b_signed", [
    (8, 1, 8, 1),     # PE
    (16, 1, 16, 1),   # requantizer: high x high
    (16, 1, 16, 0),   # requantizer: high x low
    (16, 0, 16, 1),   # requantizer: low x high
    (16, 0, 16, 0),   # requantizer: low x low; STORE: rows x bytes per row
])
def test_ecp5_multiplier_matches_python(a_width, a_signed, b_width, b_signed):
    params = dict(a_width=a_width, a_signed=a_signed, b_width=b_width, b_signed=b_signed)
    build = build_simulation("verilator", "multiplier", NpuConfig(n=2), params,
                             platform=Target("ecp5"))
    results = run_cocotb(build, seed=choose_seed())
    assert results.passed == 1 and results.failed == 0, f"see {results.log_file}"
