"""The scratchpad: on-chip SRAM of int8 rows feeding the systolic array."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import Out

from .block_ram import BLOCK_RAM_READ_LATENCY, BlockRam
from .config import NpuConfig

__all__ = ["Scratchpad", "scratchpad_row_layout", "SCRATCHPAD_READ_LATENCY"]

# Cycles from a read's address to its row: a block RAM with its output register.
SCRATCHPAD_READ_LATENCY = BLOCK_RAM_READ_LATENCY


def scratchpad_row_layout(config: NpuConfig):
    """One scratchpad row: N int8 lanes, lane i in bits [8i, 8i + 8)."""
    return data.ArrayLayout(signed(config.data_width), config.n)


class Scratchpad(wiring.Component):
    """``scratchpad_depth`` rows of N int8, written by a loader and read by the array.

    The array side has two read ports, one for weight rows and one for activation rows, so
    the next weight tile is read while the current tile's activations stream (synthesis
    builds them as two copies of a simple dual-port RAM). Reads take
    ``SCRATCHPAD_READ_LATENCY`` cycles (``rtl.block_ram``).

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
        m.submodules.memory = memory = BlockRam(
            shape=scratchpad_row_layout(self._config), depth=self._config.scratchpad_depth,
            read_ports=2)
        wiring.connect(m, wiring.flipped(self.write), memory.write)
        wiring.connect(m, wiring.flipped(self.weight_read), memory.read[0])
        wiring.connect(m, wiring.flipped(self.act_read), memory.read[1])
        return m
