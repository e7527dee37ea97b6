"""The processing element beside its per-edge model (``sim.tb_pe.PeModel``): the portable
build (product from ``*`` or from LUTs) in Amaranth's simulator, the ECP5 build (a
MULT18X18D instance) on Verilator."""

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.multiplier import lut_partial_products
from rtl.pe import ProcessingElement
from rtl.target import Target
from sim.build import build_simulation, choose_seed, run_cocotb
from sim.tb_pe import PeModel, random_inputs


@pytest.mark.parametrize("lut_multiplier", [False, True])
def test_pe_matches_model(lut_multiplier):
    seed = 1234
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = ProcessingElement(NpuConfig(n=4), lut_multiplier=lut_multiplier)
    model = PeModel()

    async def testbench(ctx):
        for cycle in range(400):
            inputs = random_inputs(rng)
            for name, value in inputs.items():
                ctx.set(getattr(dut, name), value)
            await ctx.tick()
            model.step(**inputs)
            assert ctx.get(dut.psum_out) == model.psum_out, f"cycle {cycle}"
            assert ctx.get(dut.act_out) == model.act_out
            assert ctx.get(dut.swap_out) == model.swap_out

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_lut_partial_products_sum_to_every_int8_product():
    a, b = Signal(signed(8)), Signal(signed(8))
    product = Signal(signed(16))
    m = Module()
    m.d.comb += product.eq(sum(lut_partial_products(a, b)))
    values = np.arange(-128, 128)

    async def testbench(ctx):
        for x in values:
            ctx.set(a, int(x))
            row = []
            for y in values:
                ctx.set(b, int(y))
                row.append(ctx.get(product))
            np.testing.assert_array_equal(row, x * values, err_msg=f"a={x}")

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()


def test_pe_built_for_ecp5_matches_model():
    """The ECP5 build's MULT18X18D instance (ports, sign extension, which registers are on)
    against the same per-edge model, on Verilator with our model of the primitive."""
    config = NpuConfig(n=4)
    build = build_simulation("verilator", "pe", config, platform=Target("ecp5"))
    results = run_cocotb(build, seed=choose_seed())
    assert results.passed == 1 and results.failed == 0, f"see {results.log_file}"
