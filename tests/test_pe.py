"""The processing element in Amaranth's simulator, beside a behavioural model, with the
product from a DSP-style multiply or from LUTs."""

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.pe import ProcessingElement, lut_product


class PeModel:
    """What one PE does per clock edge."""

    def __init__(self):
        self.weight = self.shadow = self.product = 0
        self.act_out = self.swap_out = self.psum_out = 0

    def step(self, act_in, swap_in, psum_in, shadow_load, shadow_in):
        # The product register holds the previous cycle's activation times weight.
        psum = psum_in + self.product
        self.product = act_in * self.weight
        self.psum_out = (psum + 2 ** 31) % 2 ** 32 - 2 ** 31
        self.act_out, self.swap_out = act_in, swap_in
        if swap_in:
            self.weight = self.shadow  # the old shadow, even if it is written this edge
        if shadow_load:
            self.shadow = shadow_in


@pytest.mark.parametrize("lut_multiplier", [False, True])
def test_pe_matches_model(lut_multiplier):
    seed = 1234
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = ProcessingElement(NpuConfig(n=4), lut_multiplier=lut_multiplier)
    model = PeModel()
    extremes = [-128, 127, -(2 ** 31), 2 ** 31 - 1]

    async def testbench(ctx):
        for cycle in range(400):
            act = int(rng.choice([rng.integers(-128, 128), -128, 127]))
            psum = int(rng.choice([rng.integers(-(2 ** 31), 2 ** 31), *extremes]))
            inputs = dict(act_in=act, swap_in=int(rng.random() < 0.2), psum_in=psum,
                          shadow_load=int(rng.random() < 0.3),
                          shadow_in=int(rng.choice([rng.integers(-128, 128), -128, 127])))
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


def test_lut_product_is_exact_for_every_int8_pair():
    a, b = Signal(signed(8)), Signal(signed(8))
    product = Signal(signed(16))
    m = Module()
    m.d.comb += product.eq(lut_product(a, b))
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
