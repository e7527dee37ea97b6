"""The accumulator: on-chip SRAM of int32 rows that compute results overwrite or add to."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from .block_ram import BLOCK_RAM_READ_LATENCY, BlockRam
from .config import NpuConfig

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
    wrapping modulo 2**32). The add is a read-modify-write over four cycles, so the block
    RAM's slow read, the choice of the newest value and the 32-bit add are in different
    cycles: the row is read (A), it lands in the block RAM's output register (B, so the RAM's
    slow read has a cycle of its own; ``rtl.block_ram``), the old value is chosen (C) and the
    sum written (D). The RAM read does not see the writes of the three cycles before its row
    reaches C, so C takes the newest of them to that row instead: the write happening now
    (D's sum, or a row from outside), or one of the two before it, kept in registers.
    Back-to-back updates of one row therefore see each other without a stall.

    Members
    -------
    update : In(accumulator_update_layout), with ``update_valid``
        A result row; the array cannot stall, so updates have no ready.
    write : In(stream.Signature(accumulator_write_layout))
        Rows from outside (bias), written the cycle after they are accepted. Updates from
        the array take the write port first: a write is accepted only when no update will
        need the port then.
    read : Out(ReadPort.Signature)
        Rows out (to the store path, or a testbench). Reads take
        ``ACCUMULATOR_READ_LATENCY`` cycles.
    busy : Out(1)
        An update is still being written.
    """

    # Cycles from an update arriving to its row being written.
    UPDATE_WRITE_DELAY = 3

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

        # Writes to the port now and in the two cycles before: what C's read missed.
        port_write = Signal(write_layout)
        port_write_valid = Signal()
        write_1_ago = Signal(write_layout, reset_less=True)
        write_2_ago = Signal(write_layout, reset_less=True)
        write_1_ago_valid = Signal()
        write_2_ago_valid = Signal()
        m.d.sync += [
            write_1_ago.eq(port_write), write_1_ago_valid.eq(port_write_valid),
            write_2_ago.eq(write_1_ago), write_2_ago_valid.eq(write_1_ago_valid),
        ]

        # Which of them write the row is mostly decided in B, a cycle ahead, so C's choice of
        # 256 bits starts from registers: in C, "now" is D's sum if an update is in C at B's
        # time (else a row from outside, compared in C: its address is only registered
        # then), "1 ago" is the port write at B's time and "2 ago" the one before it.
        update_is_now = Signal()
        newest_is_1_ago = Signal()
        newest_is_2_ago = Signal()
        m.d.sync += [
            update_is_now.eq(valid_c & (update_c.addr == update_b.addr)),
            newest_is_1_ago.eq(port_write_valid & (port_write.addr == update_b.addr)),
            newest_is_2_ago.eq(write_1_ago_valid & (write_1_ago.addr == update_b.addr)),
        ]

        # Rows from outside are registered and written the next cycle, accepted only when no
        # update is in C (so none will be in D then): the write port's inputs are registers
        # or D's adder, and the loader's handshake logic ends in ``held`` instead of running
        # into the block RAM.
        held = Signal(write_layout, reset_less=True)
        held_valid = Signal()
        m.d.comb += self.write.ready.eq(~valid_c)
        m.d.sync += [held.eq(self.write.payload), held_valid.eq(self.write.valid & ~valid_c)]

        # C: the old value is the newest write to the row, else the RAM's.
        update_d, valid_d = stage("d", update_c, valid_c)
        m.d.comb += self.busy.eq(valid_b | valid_c | valid_d | held_valid)
        old_d = Signal(row_layout, reset_less=True)
        with m.If(update_is_now | (held_valid & (held.addr == update_c.addr))):
            m.d.sync += old_d.eq(port_write.row)
        with m.Elif(newest_is_1_ago):
            m.d.sync += old_d.eq(write_1_ago.row)
        with m.Elif(newest_is_2_ago):
            m.d.sync += old_d.eq(write_2_ago.row)
        with m.Else():
            m.d.sync += old_d.eq(read_c)

        # D: add (or not) and write back.
        with m.If(valid_d):
            m.d.comb += port_write.addr.eq(update_d.addr)
            for lane in range(config.n):
                m.d.comb += port_write.row[lane].eq(Mux(update_d.accumulate,
                                                        old_d[lane] + update_d.row[lane],
                                                        update_d.row[lane]))
        with m.Else():
            m.d.comb += port_write.eq(held)
        m.d.comb += [
            port_write_valid.eq(valid_d | held_valid),
            write_port.addr.eq(port_write.addr),
            write_port.data.eq(port_write.row),
            write_port.en.eq(port_write_valid),
        ]
        return m
