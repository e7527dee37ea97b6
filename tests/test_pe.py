"""The processing element in Amaranth's simulator, beside a behavioural model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.pe import ProcessingElement


class PeModel:
    """What one PE does per clock edge."""

    def __init__(self):
        self.weight = self.shadow = 0
        self.act_out = self.swap_out = self.psum_out = 0

    def step(self, act_in, swap_in, psum_in, shadow_load, shadow_in):
        psum = psum_in + act_in * self.weight
        self.psum_out = (psum + 2 ** 31) % 2 ** 32 - 2 ** 31
        self.act_out, self.swap_out = act_in, swap_in
        if swap_in:
            self.weight = self.shadow  # the old shadow, even if it is written this edge
        if shadow_load:
            self.shadow = shadow_in


def test_pe_matches_model():
    seed = 1234
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = ProcessingElement(NpuConfig(n=4))
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
