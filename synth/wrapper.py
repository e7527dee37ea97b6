"""An I/O wrapper that lets a block with hundreds of ports be placed and timed on a package.

Every input of the block is fed from a shift register clocked in through one pin, and every
output is folded into a register chain shifted out through another, so no logic is optimised
away, no port needs a pin, and every timing path of the block stays register to register.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialIoWrapper"]


class SerialIoWrapper(wiring.Component):
    serial_in: In(1)
    serial_out: Out(1)

    def __init__(self, block: wiring.Component):
        self._block = block
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self._block
        inputs, outputs = [], []
        for _path, member, value in block.signature.flatten(block):
            (inputs if member.flow == In else outputs).append(value)
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
