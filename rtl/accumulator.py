"""The accumulator: on-chip SRAM of int32 rows that compute results overwrite or add to."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from .block_ram import BLOCK_RAM_READ_LATENCY, BlockRam
from .config import NpuConfig
from .pipeline import replicas

__all__ = ["Accumulator", "accumulator_row_layout", "accumulator_write_layout",
           "accumulator_update_layout", "ACCUMULATOR_READ_LATENCY"]

# Cycles from a read's address to its row on ``Accumulator.read``: a block RAM with its output
# register.
ACCUMULATOR_READ_LATENCY = BLOCK_RAM_READ_LATENCY


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
    wrapping modulo 2**32). The add is a read-modify-write over five cycles, so the block
    RAM's slow read, the choice of the newest value, the 32-bit add and the route to the
    block RAM's inputs are in different cycles: the row is read (A), it lands in the block
    RAM's output register (B, so the RAM's slow read has a cycle of its own;
    ``rtl.block_ram``), the old value is chosen (C), the sum is formed (D) and written from
    a register (E). The RAM read does not see the writes of the three cycles before its row
    reaches C, so C takes the newest of them to that row instead (all three are registers:
    the write in E now and the two before it). The write after those, in D while the update
    is in C (the update just ahead, or a row from outside), is taken from E by D instead.
    Back-to-back updates of one row therefore see each other without a stall. Rows from
    outside enter at D as overwrites.

    Members
    -------
    update : In(accumulator_update_layout), with ``update_valid``
        A result row; the array cannot stall, so updates have no ready.
    write : In(stream.Signature(accumulator_write_layout))
        Rows from outside (bias), written two cycles after they are accepted (through D and
        E). Updates from the array take the write port first: a write is accepted only when
        no update will need it then.
    read : Out(ReadPort.Signature)
        Rows out (to the store path, or a testbench). Reads take
        ``ACCUMULATOR_READ_LATENCY`` cycles.
    busy : Out(1)
        An update is still being written.
    """

    # Cycles from an update arriving to its row being written.
    UPDATE_WRITE_DELAY = 4

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
        row_layout = accumulator_row_layout(config)
        write_layout = accumulator_write_layout(config)
        m.submodules.memory = memory = BlockRam(shape=row_layout,
                                                depth=config.accumulator_depth, read_ports=2)
        write_port = memory.write
        update_read = memory.read[0]
        wiring.connect(m, wiring.flipped(self.read), memory.read[1])
        assert BLOCK_RAM_READ_LATENCY == 2, "the pipeline below reads the row in C"

        def stage(name, previous, previous_valid):
            update = Signal(accumulator_update_layout(config), name=f"update_{name}",
                            reset_less=True)
            valid = Signal(name=f"valid_{name}")
            m.d.sync += [update.eq(previous), valid.eq(previous_valid)]
            return update, valid

        # A: read the row the update goes to.
        m.d.comb += [update_read.addr.eq(self.update.addr), update_read.en.eq(1)]
        update_b, valid_b = stage("b", self.update, self.update_valid)

        # B: the row moves into the RAM's output register; C sees it there.
        update_c, valid_c = stage("c", update_b, valid_b)
        read_c = update_read.data

        # E: the write port's inputs, a register, and the writes of the two cycles before:
        # what C's read missed.
        port_write = Signal(write_layout, reset_less=True)
        port_write_valid = Signal()
        write_1_ago = Signal(write_layout, reset_less=True)
        write_2_ago = Signal(write_layout, reset_less=True)
        write_1_ago_valid = Signal()
        write_2_ago_valid = Signal()
        m.d.sync += [
            write_1_ago.eq(port_write), write_1_ago_valid.eq(port_write_valid),
            write_2_ago.eq(write_1_ago), write_2_ago_valid.eq(write_1_ago_valid),
        ]

        # D follows C, or takes a row from outside as an overwrite: such a row is accepted
        # only when no update is in C, so D is free for it the next cycle. The loader's
        # handshake logic ends in D's registers instead of running into the block RAM, and
        # the write port has one source.
        update_d = Signal(accumulator_update_layout(config), name="update_d", reset_less=True)
        valid_d = Signal()
        m.d.comb += self.write.ready.eq(~valid_c)
        with m.If(valid_c):
            m.d.sync += update_d.eq(update_c)
        with m.Else():
            m.d.sync += [update_d.addr.eq(self.write.payload.addr),
                         update_d.row.eq(self.write.payload.row), update_d.accumulate.eq(0)]
        m.d.sync += valid_d.eq(valid_c | self.write.valid)

        # Which of them write the row is decided in B, a cycle ahead, from registers, so C's
        # choice of N x 32 bits has registered selects. In C, "now" is what is in E then (D
        # at B's time), "1 ago" is E at B's time and "2 ago" the write before it.
        newest_is_now = Signal()
        newest_is_1_ago = Signal()
        newest_is_2_ago = Signal()
        m.d.sync += [
            newest_is_now.eq(valid_d & (update_d.addr == update_b.addr)),
            newest_is_1_ago.eq(port_write_valid & (port_write.addr == update_b.addr)),
            newest_is_2_ago.eq(write_1_ago_valid & (write_1_ago.addr == update_b.addr)),
        ]

        # C: the old value is the newest write to the row, else the RAM's (zero for an
        # overwrite, and for D's row from outside, so D only adds). The write still to
        # come, in D now, is in E when this update is in D: whether it is to the same row,
        # and the update adds to it, is registered here, one copy per lane (each selects 32
        # bits of D's addend), ...
        old_d = Signal(row_layout, reset_less=True)
        with m.If(~(valid_c & update_c.accumulate)):
            m.d.sync += old_d.eq(0)
        with m.Elif(newest_is_now):
            m.d.sync += old_d.eq(port_write.row)
        with m.Elif(newest_is_1_ago):
            m.d.sync += old_d.eq(write_1_ago.row)
        with m.Elif(newest_is_2_ago):
            m.d.sync += old_d.eq(write_2_ago.row)
        with m.Else():
            m.d.sync += old_d.eq(read_c)
        # ... decided in B already (what D will hold next is C's update or the row from
        # outside accepted now), so the lanes' copies load from one register, not from the
        # address comparison.
        adds_to_e_ahead = Signal()
        m.d.sync += adds_to_e_ahead.eq(
            valid_b & update_b.accumulate &
            Mux(valid_c, update_c.addr == update_b.addr,
                self.write.valid & (self.write.payload.addr == update_b.addr)))
        adds_to_e = replicas(m, adds_to_e_ahead, "adds_to_e",
                             [f"lane_{lane}" for lane in range(config.n)])

        # D: add, into E.
        m.d.comb += self.busy.eq(valid_b | valid_c | valid_d | port_write_valid)
        m.d.sync += [port_write_valid.eq(valid_d), port_write.addr.eq(update_d.addr)]
        for lane in range(config.n):
            addend = Mux(adds_to_e[f"lane_{lane}"], port_write.row[lane], old_d[lane])
            m.d.sync += port_write.row[lane].eq(addend + update_d.row[lane])
        m.d.comb += [
            write_port.addr.eq(port_write.addr),
            write_port.data.eq(port_write.row),
            write_port.en.eq(port_write_valid),
        ]
        return m
