"""The LOAD unit: DRAM -> scratchpad, accumulator (bias) or quant table."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

from .accumulator import accumulator_row_layout, accumulator_write_layout
from .config import NpuConfig
from .dma import Transfer, transfer_is_empty, transfer_of
from .fetch import Fault, QueueEntry, fault_raiser
from .gearbox import ByteChunk, RowPacker, row_bytes
from .isa import LoadInstruction, LoadTarget, QuantParams
from .pipeline import REPLICA_MARK, skid_buffer
from .scratchpad import scratchpad_row_layout

__all__ = ["LoadUnit", "quant_row_layout"]


def quant_row_layout(config: NpuConfig):
    """One quant table row: the parameters of N output channels."""
    return data.ArrayLayout(QuantParams, config.n)


class LoadUnit(wiring.Component):
    """Runs LOAD instructions.

    The transfer's bytes, in order, fill consecutive rows of the target from ``sram_addr``:
    N bytes a scratchpad row, 4N an accumulator row (int32 lanes), 8N a quant table row
    (``QuantParams`` lanes). Faults: zero ``rows`` or ``bytes_per_row`` or a total that is not
    a whole number of rows (BAD_TRANSFER), a row past the end of the target (SRAM_RANGE,
    raised before that row is written), AXI errors (AXI_READ_ERROR), a DRAM range that
    wraps (BAD_TRANSFER).

    Members
    -------
    queue : In(stream.Signature(QueueEntry))
    halt : In(1)
    token_available : In(1), token_take : Out(1)
        The COMPUTE -> LOAD token counter (``pop_next``).
    token_give : Out(1)
        To the LOAD -> COMPUTE counter when an instruction with ``push_next`` completes.
    transfer, chunk, reader_* : the unit's DMA reader.
    spad_write, quant_write : In(WritePort.Signature), acc_write : Out(stream)
        Scratchpad and quant table rows are written a cycle after the packer hands them over
        (registered on the way to the block RAMs).
    busy : Out(1)
        Executing an instruction (the LOAD busy counter).
    chunk_bytes : Out
        Bytes arriving this cycle (the bytes-read counter).
    fault : Out(Fault), fault_valid : Out(1)
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        w = config.bus_bytes
        super().__init__({
            "queue": In(stream.Signature(QueueEntry)),
            "halt": In(1),
            "token_available": In(1),
            "token_take": Out(1),
            "token_give": Out(1),
            "transfer": Out(stream.Signature(Transfer)),
            "chunk": In(stream.Signature(ByteChunk(w))),
            "reader_busy": In(1),
            "reader_response_error": In(1),
            "reader_wrap_error": In(1),
            "spad_write": In(WritePort.Signature(addr_width=config.scratchpad_addr_width,
                                                 shape=scratchpad_row_layout(config))),
            "acc_write": Out(stream.Signature(accumulator_write_layout(config))),
            "quant_write": In(WritePort.Signature(
                addr_width=(config.quant_table_depth - 1).bit_length(),
                shape=quant_row_layout(config))),
            "busy": Out(1),
            "chunk_bytes": Out(range(w + 1)),
            "fault": Out(Fault),
            "fault_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        w = config.bus_bytes
        targets = {
            LoadTarget.SCRATCHPAD: (row_bytes(scratchpad_row_layout(config)),
                                    config.scratchpad_depth),
            LoadTarget.ACCUMULATOR: (row_bytes(accumulator_row_layout(config)),
                                     config.accumulator_depth),
            LoadTarget.QUANT: (row_bytes(quant_row_layout(config)), config.quant_table_depth),
        }
        packers = {}
        for target, (size, _) in targets.items():
            packers[target] = m.submodules[f"packer_{target.name.lower()}"] = RowPacker(
                chunk_bytes=w, row_bytes=size)

        insn = Signal(LoadInstruction)
        index = Signal(32)
        # The target row each packer's next row goes to, and whether it exists, both kept a
        # row ahead so that the range check is a register, not an adder and a comparator in
        # front of the packer's pop. One pair per target: each is enabled by its own packer's
        # pop alone and compared with its own depth, so the three packers (placed apart)
        # do not meet at one register.
        # Only as wide as the target's rows: an address out of range is never written to
        # (its flag is clear) nor advanced.
        address = {target: Signal(range(depth), name=f"address_{target.name.lower()}")
                   for target, (_, depth) in targets.items()}
        address_in_range = {target: Signal(name=f"address_in_range_{target.name.lower()}")
                            for target in targets}
        transfer_sent = Signal()
        all_in = Signal()
        empty_transfer = Signal()
        leftover_seen = Signal()
        # Which packer the transfer's bytes go to, one-hot, kept in a register while RUN
        # lasts: a packer's push enables every byte of its ring, so it must not wait for
        # the state and target to be decoded.
        feeding = {target: Signal(name=f"feeding_{target.name.lower()}") for target in targets}
        # Chunks pass a skid stage on their way to the packers: the reader's ready is the
        # stage's emptiness (a register), not the fed packer's room, which lives by a packer
        # that may be placed far from the reader.
        # The stage's output register is one copy per packer (each packer shifts every bit
        # of it into its staging registers, and the three sit apart).
        chunk = {target: Signal(ByteChunk(w),
                                name=f"chunk_{REPLICA_MARK}_{target.name.lower()}")
                 for target in targets}
        chunk_valid = Signal()
        packers_ready = Cat(*(feeding[target] & packer.chunk.ready
                              for target, packer in packers.items())).any()
        # Each copy loads on its own packer's room (a register), not on the fed packer's
        # room chosen by ``feeding`` and ORed over the three.
        chunk_ready, chunk_skid_valid = skid_buffer(
            m, self.chunk.payload, self.chunk.valid, None, chunk_valid, packers_ready, "chunk",
            copies=[(chunk[target], packer.chunk.ready) for target, packer in packers.items()])
        m.d.comb += self.chunk.ready.eq(chunk_ready)
        for target, packer in packers.items():
            m.d.comb += [packer.chunk.payload.eq(chunk[target]),
                         packer.chunk.valid.eq(chunk_valid & feeding[target])]

        raise_any_fault = fault_raiser(m, self, instruction_index=index)

        def raise_fault(code):
            raise_any_fault(code)
            m.d.sync += [feeding[target].eq(0) for target in targets]

        m.d.comb += transfer_of(self.transfer.payload, insn)
        with m.If(self.chunk.valid & self.chunk.ready):
            m.d.comb += self.chunk_bytes.eq(self.chunk.payload.count)

        wants_token = insn.header.deps.pop_next
        # The take as an AND with the transfer's handshake (only START offers it), outside the
        # FSM (see ``TokenCounter``).
        m.d.comb += self.token_take.eq(self.transfer.valid & self.transfer.ready & wants_token)
        with m.FSM(name="load"):
            with m.State("IDLE"):
                m.d.sync += [feeding[target].eq(0) for target in targets]
                m.d.comb += self.queue.ready.eq(~self.halt)
                # The instruction's registers load every cycle while idle, and only the
                # state waits for the handshake: their enables are the state alone, not the
                # queue's valid, which comes from the queue (placed by fetch's side).
                m.d.sync += [insn.eq(self.queue.payload.instruction),
                             index.eq(self.queue.payload.index),
                             transfer_sent.eq(0)]
                # Checked as the instruction is taken, so START's decision starts from
                # flip-flops.
                m.d.sync += empty_transfer.eq(transfer_is_empty(
                    LoadInstruction(self.queue.payload.instruction)))
                with m.If(self.queue.valid & ~self.halt):
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                for target, (_, depth) in targets.items():
                    m.d.sync += [address[target].eq(insn.sram_addr),
                                 address_in_range[target].eq(insn.sram_addr < depth)]
                with m.If(empty_transfer):
                    raise_fault("BAD_TRANSFER")
                    m.next = "STOPPED"
                with m.Elif(~self.halt & (~wants_token | self.token_available)):
                    m.d.comb += self.transfer.valid.eq(1)
                    with m.If(self.transfer.ready):
                        m.d.sync += [feeding[target].eq(insn.target == target)
                                     for target in targets]
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += transfer_sent.eq(1)
                leftover = Signal()
                settled = Cat(*(p.settled for p in packers.values())).all()
                for target, packer in packers.items():
                    with m.If(feeding[target]):
                        m.d.comb += leftover.eq(packer.level != 0)
                        with m.If(packer.row.valid & ~address_in_range[target]):
                            raise_fault("SRAM_RANGE")
                            m.next = "STOPPED"
                reader_done = transfer_sent & ~self.reader_busy
                row_pending = (Cat(*(p.row.valid for p in packers.values())).any() |
                               self.acc_write.valid)
                # Every byte has reached a ring and the whole rows have drained: registered
                # with whether a partial row is left, and acted on a cycle later (nothing
                # changes once the reader is done and the rings are settled), so the end of
                # the instruction starts from flip-flops.
                chunks_in = ~self.chunk.valid & ~chunk_valid & ~chunk_skid_valid
                m.d.sync += [all_in.eq(reader_done & chunks_in & settled & ~row_pending),
                             leftover_seen.eq(leftover)]
                with m.If(self.reader_response_error):
                    raise_fault("AXI_READ_ERROR")
                    m.next = "STOPPED"
                with m.Elif(self.reader_wrap_error):
                    raise_fault("BAD_TRANSFER")
                    m.next = "STOPPED"
                with m.Elif(all_in):
                    with m.If(leftover_seen):
                        raise_fault("BAD_TRANSFER")
                        m.next = "STOPPED"
                    with m.Else():
                        m.d.comb += self.token_give.eq(insn.header.deps.push_next)
                        m.d.sync += all_in.eq(0)
                        m.next = "IDLE"
            with m.State("STOPPED"):
                # Until the NPU resets the units; busy, so the program does not look finished
                # while the fault is on its way to the control FSM.
                m.d.comb += self.busy.eq(1)

        # Accumulator rows wait in a register stage (``acc_write`` itself) until the
        # accumulator takes them: the packer's pop and the row address then depend on the
        # stage's flag, not on the accumulator's ready, which lives by the compute core. A
        # row every other cycle at most; an accumulator row is 4N bytes, two bus beats or
        # more except at N=2 (and N=4 on a 128-bit bus), and only bias rows come this way.
        with m.If(self.acc_write.valid & self.acc_write.ready):
            m.d.sync += self.acc_write.valid.eq(0)
        # The stage's row and address load on its emptiness alone (the valid flag says
        # whether they hold a row): hundreds of enables from one flip-flop, not from the
        # AND of ``feeding``, the packer's row flag and the range flag.
        with m.If(~self.acc_write.valid):
            m.d.sync += [
                self.acc_write.payload.addr.eq(address[LoadTarget.ACCUMULATOR]),
                self.acc_write.payload.row.eq(
                    packers[LoadTarget.ACCUMULATOR].row.payload.as_value()),
            ]
        # Rows go to their memory under ``feeding`` alone, not the state: it is set only
        # while RUN lasts (cleared by a fault as it is raised), so the writes and the
        # packers' row handshakes start from registers.
        m.d.sync += [self.spad_write.en.eq(0), self.quant_write.en.eq(0)]
        for target, (_, depth) in targets.items():
            packer = packers[target]
            with m.If(feeding[target] & packer.row.valid & address_in_range[target]):
                self._write_row(m, target, address[target], packer)
                with m.If(packer.row.ready):
                    # address + 1 < depth, as a comparison with a constant (no adder in front).
                    m.d.sync += [address[target].eq(address[target] + 1),
                                 address_in_range[target].eq(address[target] < depth - 1)]
        return m

    def _write_row(self, m, target, address, packer):
        """Write the packer's row to the target; sets ``packer.row.ready`` when it is taken.
        Scratchpad and quant table writes are registered on their way: the block RAMs they
        go to are spread over the die's RAM rows, so the route gets a cycle of its own (the
        row lands a cycle after it is taken; the instruction ends two cycles after that)."""
        payload = packer.row.payload.as_value()
        if target is LoadTarget.SCRATCHPAD:
            m.d.sync += [self.spad_write.addr.eq(address), self.spad_write.data.eq(payload),
                         self.spad_write.en.eq(1)]
            m.d.comb += packer.row.ready.eq(1)
        elif target is LoadTarget.ACCUMULATOR:
            # Into the accumulator write stage while it is empty (see ``elaborate``).
            with m.If(~self.acc_write.valid):
                m.d.sync += self.acc_write.valid.eq(1)  # the row and address load with it
                m.d.comb += packer.row.ready.eq(1)
        else:
            m.d.sync += [self.quant_write.addr.eq(address), self.quant_write.data.eq(payload),
                         self.quant_write.en.eq(1)]
            m.d.comb += packer.row.ready.eq(1)
