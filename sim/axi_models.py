"""Bus models shared by the testbenches: a DRAM that can answer errors, random pauses."""

import itertools
import logging

from cocotbext.axi import AxiBus, AxiRam

__all__ = ["Dram", "set_pauses"]


class Dram(AxiRam):
    """cocotbext-axi's AxiRam on ``<prefix>__*`` ports, quiet, with poisoned ranges.

    An access that touches a range in ``poisoned`` (a list of ``(start, end)``) answers
    SLVERR, as a failing memory or an unmapped region would.
    """

    def __init__(self, dut, prefix="m_axi", size=2 ** 33):
        super().__init__(AxiBus.from_prefix(dut, prefix, bus_separator="__"), dut.clk,
                         dut.rst, size=size)
        self.poisoned = []
        for interface in (self.read_if, self.write_if):
            interface.log.setLevel(logging.WARNING)  # it logs every burst at INFO
        read, write = self.read_if._read, self.write_if._write

        async def checked_read(address, length):
            self._check(address, length)
            return await read(address, length)

        async def checked_write(address, data):
            self._check(address, len(data))
            return await write(address, data)

        self.read_if._read = checked_read
        self.write_if._write = checked_write

    def _check(self, address, length):
        for start, end in self.poisoned:
            if address < end and address + length > start:
                raise IOError(f"poisoned address {address:#x}")

    @property
    def channels(self):
        return [self.write_if.aw_channel, self.write_if.w_channel, self.write_if.b_channel,
                self.read_if.ar_channel, self.read_if.r_channel]


def set_pauses(channels, rng, enabled, probability=0.35):
    """Random pause patterns on cocotbext-axi channels, or none."""
    for channel in channels:
        if enabled:
            pattern = [bool(v) for v in rng.random(int(rng.integers(3, 17))) < probability]
            pattern.append(False)  # an all-paused pattern would stall the channel forever
            channel.set_pause_generator(itertools.cycle(pattern))
        else:
            channel.set_pause_generator(None)
            channel.pause = False  # removing the generator leaves its last value
