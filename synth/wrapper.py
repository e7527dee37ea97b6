"""An I/O wrapper that lets a block with hundreds of ports be placed and timed on a package.

Every input of the block is fed from a shift register clocked in through one pin, and every
output is folded into a register chain shifted out through another, so no logic is optimised
away, no port needs a pin, and every timing path of the block stays register to register.
A block that defines its own clock domain (members ``clk`` and ``rst``, as ``NpuTop``) gets
the wrapper's ``clk`` pin, and its ``rst`` pin through two registers, as a board's reset
synchronizer would give it: the block's reset is synchronous, so its paths are timed too.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pipeline import delay

__all__ = ["SerialIoWrapper"]

CLOCK_MEMBERS = {"clk", "rst"}
RESET_SYNC_STAGES = 2


class SerialIoWrapper(wiring.Component):
    """``serial_in`` / ``serial_out``, plus ``clk`` / ``rst`` when the block has them."""

    def __init__(self, block: wiring.Component):
        self._block = block
        self._own_clock = CLOCK_MEMBERS <= set(block.signature.members)
        members = {"serial_in": In(1), "serial_out": Out(1)}
        if self._own_clock:
            members.update(clk=In(1), rst=In(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self._block
        inputs, outputs = [], []
        for path, member, value in block.signature.flatten(block):
            if self._own_clock and len(path) == 1 and path[0] in CLOCK_MEMBERS:
                continue
            (inputs if member.flow == In else outputs).append(value)
        if self._own_clock:
            # The block's domain is the design's: its clock is the pin, its reset registered.
            m.d.comb += block.clk.eq(self.clk)
            block_reset = delay(m, self.rst, RESET_SYNC_STAGES, "reset_sync", reset_less=True)
            m.d.comb += block.rst.eq(block_reset)
        if inputs:
            width = sum(len(Value.cast(value)) for value in inputs)
            chain = Signal(width)
            m.d.sync += chain.eq(Cat(self.serial_in, chain[:-1]))
            offset = 0
            for value in inputs:
                size = len(Value.cast(value))
                m.d.comb += value.eq(chain[offset:offset + size])
                offset += size
        observed = Cat(*outputs)
        folded = Signal(len(observed))
        # Bit i takes output i xor bit i+1: every output reaches the pin, no deep XOR tree.
        m.d.sync += folded.eq(observed ^ Cat(folded[1:], Const(0, 1)))
        m.d.comb += self.serial_out.eq(folded[0])
        return m
