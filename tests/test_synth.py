"""The synthesis flow's own pieces: the serial I/O wrapper and the cell-count parser."""

import numpy as np
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from synth.run import cell_counts
from synth.wrapper import SerialIoWrapper


class Adder(wiring.Component):
    a: In(4)
    b: In(3)
    total: Out(5)
    carry: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Cat(self.total, self.carry).eq(self.a + self.b)
        return m


def test_wrapper_feeds_every_input_and_observes_every_output():
    seed = 11
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = SerialIoWrapper(Adder())
    bits_in = [int(b) for b in rng.integers(0, 2, 200)]
    outputs = []

    async def testbench(ctx):
        for bit in bits_in:
            ctx.set(dut.serial_in, bit)
            await ctx.tick()
            outputs.append(ctx.get(dut.serial_out))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()

    # Model: a 7-bit input chain (a then b), outputs total (5 bits) then carry, folded.
    chain, folded, expected = 0, [0] * 6, []
    for bit in bits_in:
        a, b = chain & 0xF, (chain >> 4) & 0x7
        observed = [(a + b) >> i & 1 for i in range(5)] + [0]
        folded = [observed[i] ^ (folded[i + 1] if i + 1 < 6 else 0) for i in range(6)]
        chain = ((chain << 1) | bit) & 0x7F
        expected.append(folded[0])
    assert outputs == expected


def test_cell_counts_reads_yosys_stat():
    stat = """
     1757 cells
      210   SB_CARRY
      162   SB_DFF
      235   SB_DFFE
      696   SB_LUT4
        4   SB_MAC16
       10   SB_RAM40_4K
"""
    assert cell_counts(stat, "ice40") == {"lut4": 696, "ff": 397, "dsp": 4, "bram": 10}
    ecp5 = "  115   CCU2C\n    6   DP16KD\n  510   LUT4\n    4   MULT18X18D\n  998   TRELLIS_FF\n"
    assert cell_counts(ecp5, "ecp5") == {"lut4": 510, "ff": 998, "dsp": 4, "bram": 6}
