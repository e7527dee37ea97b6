"""The scratchpad: on-chip SRAM of int8 rows feeding the systolic array."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out

from .config import NpuConfig

__all__ = ["Scratchpad", "scratchpad_row_layout"]


def scratchpad_row_layout(config: NpuConfig):
    """One scratchpad row: N int8 lanes, lane i in bits [8i, 8i + 8)."""
    return data.ArrayLayout(signed(config.data_width), config.n)


class Scratchpad(wiring.Component):
    """``scratchpad_depth`` rows of N int8, written by a loader and read by the array.

    The array side has two read ports, one for weight rows and one for activation rows, so
    the next weight tile is read while the current tile's activations stream (synthesis
    builds them as two copies of a simple dual-port RAM). Reads take one cycle.

    Members
    -------
    write : Out(WritePort.Signature)
        Loader side (DMA, or a testbench).
    weight_read : Out(ReadPort.Signature)
        Array side, weight rows.
    act_read : Out(ReadPort.Signature)
        Array side, activation rows.
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        addr_width = config.scratchpad_addr_width
        row = scratchpad_row_layout(config)
        super().__init__({
            "write": Out(WritePort.Signature(addr_width=addr_width, shape=row)),
            "weight_read": Out(ReadPort.Signature(addr_width=addr_width, shape=row)),
            "act_read": Out(ReadPort.Signature(addr_width=addr_width, shape=row)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(
            shape=scratchpad_row_layout(self._config), depth=self._config.scratchpad_depth,
            init=[])
        wiring.connect(m, wiring.flipped(self.write), memory.write_port())
        wiring.connect(m, wiring.flipped(self.weight_read), memory.read_port())
        wiring.connect(m, wiring.flipped(self.act_read), memory.read_port())
        return m
