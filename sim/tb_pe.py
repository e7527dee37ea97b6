"""cocotb test of one processing element against ``PeModel``, its per-edge behaviour.

Used for the PE as built for an FPGA family (``tests/test_pe.py`` runs the ECP5 build, whose
multiplier is a MULT18X18D instance simulated by ``sim/models/MULT18X18D.v``); the portable
build is checked against the same model in Amaranth's simulator.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.build import CLOCK_PERIOD_NS, seeded_rng

CYCLES = int(os.environ.get("NPU_CASES", "2000"))


def wrap_int32(value):
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31


class PeModel:
    """What one PE does per clock edge."""

    def __init__(self):
        self.weight = self.shadow = self.product = self.product_staged = 0
        self.operands = (0, 0)
        self.act_out = self.swap_out = self.psum_out = 0

    def step(self, act_in, swap_in, psum_in, shadow_load, shadow_in):
        # Operands are registered, then their product, then the product again (beside the
        # adder): the adder sees the activation and weight of three cycles earlier.
        self.psum_out = wrap_int32(psum_in + self.product_staged)
        self.product_staged = self.product
        self.product = self.operands[0] * self.operands[1]
        self.operands = (act_in, self.weight)
        self.act_out, self.swap_out = act_in, swap_in
        if swap_in:
            self.weight = self.shadow  # the old shadow, even if it is written this edge
        if shadow_load:
            self.shadow = shadow_in


def random_inputs(rng):
    """One cycle's inputs, with the int8 and int32 extremes often."""
    def int8():
        return int(rng.choice([rng.integers(-128, 128), -128, 127]))
    return dict(act_in=int8(), swap_in=int(rng.random() < 0.2),
                psum_in=int(rng.choice([rng.integers(-(2 ** 31), 2 ** 31), -(2 ** 31),
                                        2 ** 31 - 1])),
                shadow_load=int(rng.random() < 0.3), shadow_in=int8())


@cocotb.test()
async def pe_matches_model(dut):
    rng = seeded_rng("pe_matches_model", dut._log)
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 0
    model = PeModel()
    # Warm up with known inputs so the model and the registers agree before checking.
    zeros = dict(act_in=0, swap_in=1, psum_in=0, shadow_load=1, shadow_in=0)
    await FallingEdge(dut.clk)
    for cycle in range(CYCLES):
        # Inputs change on the falling edge, outputs are read on the next one.
        inputs = zeros if cycle < 4 else random_inputs(rng)
        for name, value in inputs.items():
            getattr(dut, name).value = value
        await RisingEdge(dut.clk)
        model.step(**inputs)
        await FallingEdge(dut.clk)
        if cycle >= 4:
            assert dut.psum_out.value.to_signed() == model.psum_out, f"cycle {cycle}: psum"
            assert dut.act_out.value.to_signed() == model.act_out, f"cycle {cycle}: act"
            assert int(dut.swap_out.value) == model.swap_out, f"cycle {cycle}: swap"
