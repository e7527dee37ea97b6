"""The accumulator: on-chip SRAM of int32 rows that compute results overwrite or add to."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out

from .config import NpuConfig

__all__ = ["Accumulator", "accumulator_row_layout", "accumulator_write_layout",
           "accumulator_update_layout"]


def accumulator_row_layout(config: NpuConfig):
    """One accumulator row: N int32 lanes, lane i in bits [32i, 32i + 32)."""
    return data.ArrayLayout(signed(config.acc_width), config.n)


def accumulator_write_layout(config: NpuConfig):
    """A row written from outside the array (a bias row, from the loader)."""
    return data.StructLayout({
        "addr": config.accumulator_addr_width,
        "row": accumulator_row_layout(config),
    })


def accumulator_update_layout(config: NpuConfig):
    """A result row from the array, with where it goes and whether it adds."""
    return data.StructLayout({
        "addr": config.accumulator_addr_width,
        "row": accumulator_row_layout(config),
        "accumulate": 1,
    })


class Accumulator(wiring.Component):
    """``accumulator_depth`` rows of N int32.

    A result row from the array either overwrites its row or is added to it (lane-wise,
    wrapping modulo 2**32). The add is a read-modify-write over three cycles, so the block
    RAM's slow read and the 32-bit add are in different cycles: the row is read (A), its old
    value registered (B), and the sum written (C). An update two ahead of another writes in
    the cycle its successor reads (the read port is transparent to the write port); one just
    ahead writes in the cycle its successor registers the old value, which is forwarded
    there (as is a row from outside written in that cycle). Back-to-back updates of one row
    therefore see each other without a stall.

    Members
    -------
    update : In(accumulator_update_layout), with ``update_valid``
        A result row; the array cannot stall, so updates have no ready.
    write : In(stream.Signature(accumulator_write_layout))
        Rows from outside (bias), written the cycle after they are accepted. Updates from
        the array take the write port first: a write is accepted only when no update will
        need the port then.
    read : Out(ReadPort.Signature)
        Rows out (to the store path, or a testbench). Reads take one cycle.
    busy : Out(1)
        An update is still being written.
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        super().__init__({
            "update": In(accumulator_update_layout(config)),
            "update_valid": In(1),
            "write": In(stream.Signature(accumulator_write_layout(config))),
            "read": Out(ReadPort.Signature(addr_width=config.accumulator_addr_width,
                                           shape=accumulator_row_layout(config))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        m.submodules.memory = memory = Memory(
            shape=accumulator_row_layout(config), depth=config.accumulator_depth, init=[])
        write_port = memory.write_port()
        update_read = memory.read_port(transparent_for=(write_port,))
        wiring.connect(m, wiring.flipped(self.read), memory.read_port())

        # A: read the row the update goes to, register the update.
        update_b = Signal(accumulator_update_layout(config), reset_less=True)
        valid_b = Signal()
        m.d.comb += update_read.addr.eq(self.update.addr)
        m.d.sync += [update_b.eq(self.update), valid_b.eq(self.update_valid)]

        # B: register the old row; if C writes that row this cycle, its new value instead.
        update_c = Signal(accumulator_update_layout(config), reset_less=True)
        valid_c = Signal()
        old_c = Signal(accumulator_row_layout(config), reset_less=True)
        written = Signal(accumulator_row_layout(config))
        # Rows from outside are registered and written the next cycle, accepted only when no
        # update is in B (so none will be in C then): the write port's inputs are registers
        # or C's adder, and the loader's handshake logic ends in ``held`` instead of running
        # into the block RAM. Like C's sum, a held row written this cycle is forwarded to B.
        held = Signal(accumulator_write_layout(config), reset_less=True)
        held_valid = Signal()
        m.d.comb += self.write.ready.eq(~valid_b)
        m.d.sync += [held.eq(self.write.payload), held_valid.eq(self.write.valid & ~valid_b)]
        m.d.comb += self.busy.eq(valid_b | valid_c | held_valid)
        with m.If(valid_c & (update_c.addr == update_b.addr)):
            m.d.sync += old_c.eq(written)
        with m.Elif(held_valid & (held.addr == update_b.addr)):
            m.d.sync += old_c.eq(held.row)
        with m.Else():
            m.d.sync += old_c.eq(update_read.data)
        m.d.sync += [update_c.eq(update_b), valid_c.eq(valid_b)]

        # C: add (or not) and write back.
        for lane in range(config.n):
            m.d.comb += written[lane].eq(Mux(update_c.accumulate,
                                             old_c[lane] + update_c.row[lane],
                                             update_c.row[lane]))
        with m.If(valid_c):
            m.d.comb += [
                write_port.addr.eq(update_c.addr),
                write_port.data.eq(written),
                write_port.en.eq(1),
            ]
        with m.Else():
            m.d.comb += [
                write_port.addr.eq(held.addr),
                write_port.data.eq(held.row),
                write_port.en.eq(held_valid),
            ]
        return m
