"""cocotb test of ``rtl.multiplier.registered_multiply`` (``sim.harness.MultiplierHarness``):
the product of every cycle's operands ``MULTIPLY_LATENCY`` cycles later, against Python's
integers. The operand shapes come from ``NPU_PARAMS``; the extremes of each come often."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from rtl.multiplier import MULTIPLY_LATENCY
from sim.build import CLOCK_PERIOD_NS, seeded_rng

CYCLES = int(os.environ.get("NPU_CASES", "2000"))


def operand_range(width, signed):
    return (-(2 ** (width - 1)), 2 ** (width - 1)) if signed else (0, 2 ** width)


@cocotb.test()
async def product_matches_python(dut):
    rng = seeded_rng("product_matches_python", dut._log)
    params = json.loads(os.environ["NPU_PARAMS"])
    ranges = [operand_range(params["a_width"], params["a_signed"]),
              operand_range(params["b_width"], params["b_signed"])]
    product_signed = params["a_signed"] or params["b_signed"]

    def operand(low, high):
        return int(rng.choice([rng.integers(low, high), low, high - 1, 0, -1 if low else 1]))

    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 0
    sent = []
    await FallingEdge(dut.clk)
    for cycle in range(CYCLES + MULTIPLY_LATENCY):
        a, b = operand(*ranges[0]), operand(*ranges[1])
        dut.a.value, dut.b.value = a, b
        sent.append(a * b)
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        if cycle >= MULTIPLY_LATENCY:
            value = dut.product.value
            got = value.to_signed() if product_signed else value.to_unsigned()
            assert got == sent[cycle - MULTIPLY_LATENCY + 1], f"cycle {cycle}"
