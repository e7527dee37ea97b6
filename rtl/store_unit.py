"""The STORE unit: accumulator -> requantize (or raw int32) -> DRAM."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from .accumulator import ACCUMULATOR_READ_LATENCY, accumulator_row_layout
from .block_ram import BLOCK_RAM_READ_LATENCY
from .config import NpuConfig
from .dma import Transfer, transfer_is_empty, transfer_of
from .fetch import Fault, QueueEntry, fault_raiser
from .gearbox import (ByteSourceSignature, RowSplitter, RowUnpacker, ring_bytes, row_bytes,
                      split_pieces)
from .isa import StoreInstruction, StoreMode
from .load_unit import quant_row_layout
from .multiplier import registered_multiply
from .pipeline import RegisteredInputFifo, delay, replicas, skid_buffer
from .requantizer import Requantizer, requantized_row_layout

__all__ = ["StoreUnit", "STORE_ROW_BUFFER_DEPTH"]

# Rows in the buffer before the writer, counting those in the read pipeline: a row's credit
# comes back about 17 cycles after its read (block RAM 2, requantizer 10, the buffer's
# write register, the buffer's and the unpacker's handshakes, the registered return), so 16
# keep reads going at close to a row per cycle, the bus's rate for requantized rows at N=8
# on a 64-bit bus (the write register cost a 512 x 8 x 512 matmul with int8 output one
# cycle). A FIFO of 16
# rows costs no more LUT RAM on the ECP5 than one of 8 (its RAM cells are 16 deep).
STORE_ROW_BUFFER_DEPTH = 16


class StoreUnit(wiring.Component):
    """Runs STORE instructions.

    Reads accumulator rows from ``acc_addr`` on, requantizes each with the quant table row
    ``quant_addr`` (N bytes out) or passes it raw (4N bytes), and streams the bytes into the
    DRAM transfer, whose total must be a whole number of those rows. Rows are read only as
    far as the transfer needs and only when the row buffer has room, so a slow bus stalls the
    reads, never the other way round. Faults: zero ``rows`` or ``bytes_per_row``, a partial
    last row or a wrapping DRAM range (BAD_TRANSFER), an accumulator row or quant row outside
    its memory (SRAM_RANGE, before that row is read), AXI errors (AXI_WRITE_ERROR).

    Members
    -------
    queue : In(stream.Signature(QueueEntry))
    halt : In(1)
    token_available : In(1), token_take : Out(1)
        The COMPUTE -> STORE counter (``pop_prev``).
    token_give : Out(1)
        To the STORE -> COMPUTE counter (``push_prev``), once every row has been read.
    transfer, writer_source, writer_* : the unit's DMA writer.
    acc_read, quant_read : In(ReadPort.Signature)
    busy : Out(1)
    fault : Out(Fault), fault_valid : Out(1)
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        w = config.bus_bytes
        # Bytes a row leaves as, per mode. A raw row (4N bytes) is split into pieces of at
        # least W bytes on its way to its unpacker, whose ring (the window multiplexer in
        # front of the writer) then holds a few pieces instead of a few whole rows. The
        # writer's source is the larger unpacker's ring.
        self._bytes_out = {StoreMode.REQUANT: row_bytes(requantized_row_layout(config)),
                           StoreMode.RAW: row_bytes(accumulator_row_layout(config))}
        self._pieces = {StoreMode.REQUANT: 1,
                        StoreMode.RAW: split_pieces(self._bytes_out[StoreMode.RAW], w)}
        self._unpacked_bytes = {mode: size // self._pieces[mode]
                                for mode, size in self._bytes_out.items()}
        self._source_capacity = max(ring_bytes(w, size)
                                    for size in self._unpacked_bytes.values())
        super().__init__({
            "queue": In(stream.Signature(QueueEntry)),
            "halt": In(1),
            "token_available": In(1),
            "token_take": Out(1),
            "token_give": Out(1),
            "transfer": Out(stream.Signature(Transfer)),
            "writer_source": Out(ByteSourceSignature(w, self._source_capacity)),
            "writer_busy": In(1),
            "writer_response_error": In(1),
            "writer_wrap_error": In(1),
            "acc_read": In(ReadPort.Signature(addr_width=config.accumulator_addr_width,
                                              shape=accumulator_row_layout(config))),
            "quant_read": In(ReadPort.Signature(
                addr_width=(config.quant_table_depth - 1).bit_length(),
                shape=quant_row_layout(config))),
            "busy": Out(1),
            "fault": Out(Fault),
            "fault_valid": Out(1),
        })

    @property
    def source_capacity(self):
        """Most bytes the writer's source can hold (for ``DmaWriter(source_capacity=)``)."""
        return self._source_capacity

    def elaborate(self, platform):
        m = Module()
        config = self._config
        w = config.bus_bytes
        # The instruction, its parameters and the read position are loaded before they are
        # used, so they have no reset: the unit's reset net (a replica's flip-flop through
        # a LUT, with the chip's reset, to every LSR pin of the unit) reaches only its
        # control flip-flops.
        insn = Signal(StoreInstruction, reset_less=True)
        index = Signal(32, reset_less=True)
        raw = insn.mode == StoreMode.RAW

        raise_fault = fault_raiser(m, self, instruction_index=index)

        # Datapath: acc read (ACCUMULATOR_READ_LATENCY) -> requantizer (REQUANTIZER_LATENCY)
        # or nothing (raw rows) -> the buffer's write register -> buffer. The two paths need
        # not be equally long: the mode holds for an instruction and every row of one is out
        # of both before the next (``drained``); a raw row delayed as long as the
        # requantizer's was ten registers of 32N bits.
        m.submodules.requantizer = requantizer = Requantizer(config)
        params = Signal(quant_row_layout(config), reset_less=True)
        read_issued = Signal()
        read_valid = delay(m, read_issued, ACCUMULATOR_READ_LATENCY, "read_valid")
        m.d.comb += [
            requantizer.acc_row.eq(self.acc_read.data),
            requantizer.params.eq(params),
            requantizer.valid_in.eq(read_valid),
        ]
        # The buffer's choice of path, a registered decode of the mode a cycle behind it (an
        # instruction's first row is read in RUN): it selects every bit of the buffer's input
        # and its write enable, so it starts from a flip-flop of its own.
        raw_rows = replicas(m, raw, "raw_rows", ["buffer"])["buffer"]
        # The chosen row is registered before the buffer (``RegisteredInputFifo``), so its
        # write logic (pointer, level) starts from flip-flops by the buffer, not from the
        # requantizer's valid, placed by the lanes (seed 5 of 7c71514 and seed 1 of 309f0c6:
        # valid_d10 -> the buffer's level, 9.22 and 8.83 ns). The row in that register holds
        # a credit like those in the buffer.
        row_bits = Shape.cast(accumulator_row_layout(config)).width
        m.submodules.rows = rows = RegisteredInputFifo(width=row_bits,
                                                        depth=STORE_ROW_BUFFER_DEPTH)
        m.d.comb += [
            rows.w_data.eq(Mux(raw_rows, self.acc_read.data.as_value(),
                               requantizer.result_row.as_value())),
            rows.w_en.eq(Mux(raw_rows, read_valid, requantizer.valid_out)),
        ]
        bytes_out = self._bytes_out
        unpackers = {mode: RowUnpacker(chunk_bytes=w, row_bytes=size)
                     for mode, size in self._unpacked_bytes.items()}
        writer_source = self.writer_source
        # Which unpacker is active, one-hot: registered decodes of ``insn.mode``, a cycle
        # behind it (an instruction's first row is read in RUN, cycles after ``insn`` loads).
        # The mode register also selects every bit of the row buffer's input, and the
        # writer's handshake should not start from that net; each flag loads every cycle
        # from the mode register alone, with no enable: loaded on the queue handshake
        # instead, the take decision (``halt`` and the queue's valid) ran 4-5 ns across the
        # die to the flags by the unpackers (8.9-9.3 ns on seeds 1-2 of 0c155df). One copy
        # gates the row stage's handshake and selects the writer's source, one the unpacker's
        # take (the unpackers sit by the writer, far from the row buffer).
        flags = {mode: replicas(m, insn.mode == mode, f"unpacking_{mode.name.lower()}",
                                ["rows", "take"])
                 for mode in unpackers}
        unpacking = {mode: copies["rows"] for mode, copies in flags.items()}
        unpacking_take = {mode: copies["take"] for mode, copies in flags.items()}
        held_pieces = []  # a splitter's, not yet in its unpacker
        rows_in = {}      # each mode's row input: its splitter's or its unpacker's
        for mode, unpacker in unpackers.items():
            name = mode.name.lower()
            m.submodules[f"unpacker_{name}"] = unpacker
            m.d.comb += [unpacker.source.take.eq(unpacking_take[mode] & writer_source.take),
                         unpacker.source.take_count.eq(writer_source.take_count)]
            rows_in[mode] = unpacker.row
            if self._pieces[mode] > 1:
                m.submodules[f"splitter_{name}"] = splitter = RowSplitter(
                    row_bytes=bytes_out[mode], pieces=self._pieces[mode])
                wiring.connect(m, splitter.row_out, unpacker.row)
                rows_in[mode] = splitter.row_in
                held_pieces.append(splitter.holding)
        # The row buffer's output passes a register stage with a skid register, one output
        # copy per mode loaded on that mode's own ready: the buffer reads on the skid's
        # emptiness (a register), and a consumer's ready (a register by the writer) reaches
        # only its own copy's enables and the stage's flags. Read straight from the buffer,
        # the flag's choice of ready ran across the die into the buffer's read logic and
        # every bit of its output register (8.65 ns on seed 2 of 97dcf56).
        row_copies = {mode: Signal(8 * bytes_out[mode], name=f"row_{mode.name.lower()}",
                                   reset_less=True) for mode in unpackers}
        row_staged = Signal()
        stage_taken = Cat(*(unpacking[mode] & rows_in[mode].ready for mode in unpackers)).any()
        rows_read, row_skid_valid = skid_buffer(
            m, rows.r_data, rows.r_rdy, None, row_staged, stage_taken, "row_stage",
            copies=[(row_copies[mode], rows_in[mode].ready) for mode in unpackers])
        m.d.comb += rows.r_en.eq(rows_read)
        for mode, unpacker in unpackers.items():
            row_in = rows_in[mode]
            m.d.comb += [row_in.payload.eq(row_copies[mode]),
                         row_in.valid.eq(row_staged & unpacking[mode])]
            with m.If(unpacking[mode]):
                m.d.comb += [
                    writer_source.window.eq(unpacker.source.window),
                    writer_source.offset.eq(unpacker.source.offset),
                    writer_source.level.eq(unpacker.source.level),
                ]
        # Bytes of the transfer not written: in the active unpacker or a splitter. Registered
        # every cycle, without an enable: the unpacker's level lives by the writer, and the
        # FSM's state decode should not reach back to it as a clock enable.
        leftover = (writer_source.level != 0) | Cat(*held_pieces).any()
        leftover_seen = Signal(reset_less=True)
        m.d.sync += leftover_seen.eq(leftover)

        # Rows may be read while the buffer, counting rows already in the pipeline, has room.
        # A row leaving the buffer (by the writer) is counted a cycle late, and whether any
        # credit is left is a register beside the count: the read decision starts from
        # flip-flops and never over-reports room. The flag's next value is chosen by the
        # read decision from two functions of the count, not computed after the count's
        # adder.
        credits = Signal(range(STORE_ROW_BUFFER_DEPTH + 1), init=STORE_ROW_BUFFER_DEPTH)
        credit_available = Signal(init=1)
        row_left = Signal()
        m.d.sync += row_left.eq(rows.r_rdy & rows.r_en)
        m.d.sync += [credits.eq(credits - read_issued + row_left),
                     credit_available.eq(row_left | Mux(read_issued, credits > 1, credits != 0))]
        # Kept as registers beside the reads, so the read decision starts from flip-flops:
        # the accumulator row to read next, the DRAM bytes its rows have yet to supply, and
        # whether they have all been supplied (the last read covered the rest).
        acc_row = Signal(18, reset_less=True)
        acc_row_in_range = Signal()  # acc_row < accumulator depth, kept with it
        bytes_to_supply = Signal(32, reset_less=True)
        reads_done = Signal()
        empty_transfer = Signal()
        quant_out_of_range = Signal()
        drained = Signal()
        # DRAM bytes per accumulator row in this mode, a register set in SIZE: the mode
        # register fans out to the row buffer's input, and the read decision's subtraction
        # and comparison should not start from that net.
        row_bytes_out = Signal(range(max(bytes_out.values()) + 1), reset_less=True)
        token_given = Signal()
        # In RUN, kept beside the FSM state: the read decision (the credit counter's and the
        # read pointers' enable) starts from this flip-flop, not from the state's decode.
        running = Signal()
        # The DRAM bytes of the instruction, MULTIPLY_LATENCY cycles after ``insn`` holds it
        # (a DSP block with its own registers on the ECP5): ready by SIZE, which follows
        # START and PARAMS, and loaded into ``bytes_to_supply`` there.
        transfer_bytes = Signal(32)
        registered_multiply(m, platform, insn.rows, insn.bytes_per_row, transfer_bytes,
                            name="transfer_bytes")
        m.d.comb += transfer_of(self.transfer.payload, insn)
        m.d.comb += [
            self.acc_read.addr.eq(acc_row),
            self.acc_read.en.eq(1),
            self.quant_read.addr.eq(insn.quant_addr),
            self.quant_read.en.eq(1),
        ]

        # The read decision, outside the FSM (``running`` stands for RUN). It does not wait
        # for the writer's error flags (registers by the writer, far away): a row read as a
        # writer fault is raised stays in this transfer, and the unit stops and is reset
        # before anything else happens.
        # bytes_to_supply <= row_bytes_out, as a zero test of the high bits (from registers,
        # beside the subtractor) and a comparison as narrow as ``row_bytes_out``, not a
        # 32-bit carry chain behind the subtractor's inputs.
        narrow = len(row_bytes_out)
        supply_ends = ((bytes_to_supply[narrow:] == 0) &
                       (bytes_to_supply[:narrow] <= row_bytes_out))
        may_read = ~reads_done & credit_available & ~self.halt
        m.d.comb += read_issued.eq(running & may_read & acc_row_in_range)
        with m.If(read_issued):
            m.d.sync += [acc_row.eq(acc_row + 1),
                         acc_row_in_range.eq(acc_row < config.accumulator_depth - 1),
                         bytes_to_supply.eq(bytes_to_supply - row_bytes_out),
                         reads_done.eq(supply_ends)]

        # SIZE, a cycle after PARAMS, as registers beside the state (one for the read
        # counters, one for the quant row): the loads below start from a flip-flop instead
        # of the state's decode, which crosses the unit to the counters' enables.
        in_params = Signal()
        sizing = replicas(m, in_params, "sizing", ["supply", "params"])
        with m.If(sizing["supply"]):
            m.d.sync += [bytes_to_supply.eq(transfer_bytes),
                         row_bytes_out.eq(Mux(raw, bytes_out[StoreMode.RAW],
                                              bytes_out[StoreMode.REQUANT]))]
        with m.If(sizing["params"]):
            # The quant row, read from START on (its address is ``insn``'s), is out of the
            # block RAM by now; hold it for the whole instruction.
            assert BLOCK_RAM_READ_LATENCY <= 2, "START and PARAMS cover the quant read"
            m.d.sync += params.eq(self.quant_read.data)

        wants_token = insn.header.deps.pop_prev
        # The take as an AND with the transfer's handshake (only START offers it), outside the
        # FSM (see ``TokenCounter``).
        m.d.comb += self.token_take.eq(self.transfer.valid & self.transfer.ready & wants_token)
        with m.FSM(name="store"):
            with m.State("IDLE"):
                m.d.comb += self.queue.ready.eq(~self.halt)
                # The instruction's registers load every cycle while idle, and only the
                # state waits for the handshake: their enables are the state alone, not the
                # queue's valid, which comes from the queue (placed by fetch's side).
                m.d.sync += [insn.eq(self.queue.payload.instruction),
                             index.eq(self.queue.payload.index), token_given.eq(0)]
                # Checked as the instruction is taken, so START's decision starts from
                # flip-flops.
                arriving = StoreInstruction(self.queue.payload.instruction)
                m.d.sync += [
                    empty_transfer.eq(transfer_is_empty(arriving)),
                    quant_out_of_range.eq((arriving.mode != StoreMode.RAW) &
                                          (arriving.quant_addr >= config.quant_table_depth)),
                ]
                with m.If(self.queue.valid & ~self.halt):
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc_row.eq(insn.acc_addr), reads_done.eq(0),
                             acc_row_in_range.eq(insn.acc_addr < config.accumulator_depth)]
                with m.If(empty_transfer):
                    raise_fault("BAD_TRANSFER")
                    m.next = "STOPPED"
                with m.Elif(quant_out_of_range):
                    raise_fault("SRAM_RANGE")
                    m.next = "STOPPED"
                with m.Elif(~self.halt & (~wants_token | self.token_available)):
                    m.d.comb += self.transfer.valid.eq(1)
                    with m.If(self.transfer.ready):
                        m.next = "PARAMS"
            with m.State("PARAMS"):
                m.d.comb += [self.busy.eq(1), in_params.eq(1)]
                m.next = "SIZE"
            with m.State("SIZE"):
                # The loads of this cycle are under ``sizing`` (above).
                m.d.comb += self.busy.eq(1)
                m.d.sync += running.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.writer_response_error):
                    raise_fault("AXI_WRITE_ERROR")
                    m.d.sync += running.eq(0)
                    m.next = "STOPPED"
                with m.Elif(self.writer_wrap_error):
                    raise_fault("BAD_TRANSFER")
                    m.d.sync += running.eq(0)
                    m.next = "STOPPED"
                with m.Elif(~reads_done):
                    with m.If(may_read & ~acc_row_in_range):
                        raise_fault("SRAM_RANGE")
                        m.d.sync += running.eq(0)
                        m.next = "STOPPED"
                with m.Else():
                    # Nothing left in the read pipeline, the row buffer or its stage, all
                    # bytes written: registered, and acted on a cycle later (nothing moves
                    # any more) with ``leftover_seen`` from the same cycle, so the end of the
                    # instruction starts from flip-flops rather than the unpacker's level,
                    # which lives by the writer.
                    m.d.sync += drained.eq(~self.writer_busy &
                                           (credits == STORE_ROW_BUFFER_DEPTH) &
                                           ~row_staged & ~row_skid_valid)
                    with m.If(drained):
                        m.d.sync += [drained.eq(0), running.eq(0)]
                        with m.If(leftover_seen):
                            raise_fault("BAD_TRANSFER")
                            m.next = "STOPPED"
                        with m.Else():
                            m.next = "IDLE"
                # Every row needed has been read: the accumulator rows are free again.
                with m.If(reads_done & ~token_given):
                    m.d.comb += self.token_give.eq(insn.header.deps.push_prev)
                    m.d.sync += token_given.eq(1)
            with m.State("STOPPED"):
                # Until the NPU resets the units; busy, so the program does not look finished
                # while the fault is on its way to the control FSM.
                m.d.comb += self.busy.eq(1)
        return m
