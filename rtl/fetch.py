"""Instruction fetch and dispatch, the queues' layout, and the dependency-token counters."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .config import NpuConfig
from .dma import Transfer
from .gearbox import ByteChunk, RowPacker
from .isa import (FORBIDDEN_DEPENDENCIES, INSTRUCTION_BITS, INSTRUCTION_BYTES,
                  INSTRUCTION_LAYOUTS, Header, Opcode, reserved_mask)
from .pipeline import delay, skid_buffer
from .regmap import error_codes

__all__ = ["QueueEntry", "InstructionQueue", "Fault", "fault_raiser", "TokenCounter",
           "FetchUnit", "FETCH_BUFFER_DEPTH"]

FETCH_BUFFER_DEPTH = 16


class QueueEntry(data.Struct):
    """An instruction on its way to a unit, with its index in the program (for faults)."""
    instruction: INSTRUCTION_BITS
    index: 32


class InstructionQueue(wiring.Component):
    """The queue between dispatch and one unit: ``depth`` entries, the last of them in an
    output register that loads only while it is empty.

    The unit's take (its IDLE decode, the latest signal here) clears one flag; the output
    register's enable and the FIFO's read start from that flag and the FIFO's level, both
    registers by the queue, instead of running from the unit's state through the FIFO's
    read logic to every bit of the entry. The cost is a cycle between two entries leaving:
    a unit spends three cycles or more on each instruction anyway.

    Members
    -------
    w : In(stream.Signature(QueueEntry))
        From dispatch.
    r : Out(stream.Signature(QueueEntry))
        To the unit; ``r.payload`` is a register.
    busy : Out(1)
        An entry is held.
    """

    def __init__(self, depth):
        if depth < 2:
            raise ValueError(f"an instruction queue holds 2 entries or more, not {depth}")
        self._depth = depth
        super().__init__({
            "w": In(stream.Signature(QueueEntry)),
            "r": Out(stream.Signature(QueueEntry)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=Shape.cast(QueueEntry).width,
                                            depth=self._depth - 1)
        head = Signal(QueueEntry, reset_less=True)
        head_valid = Signal()
        with m.If(self.r.valid & self.r.ready):
            m.d.sync += head_valid.eq(0)
        with m.If(~head_valid & fifo.r_rdy):
            m.d.sync += [head.eq(fifo.r_data), head_valid.eq(1)]
        m.d.comb += [
            fifo.w_data.eq(self.w.payload),
            fifo.w_en.eq(self.w.valid),
            self.w.ready.eq(fifo.w_rdy),
            fifo.r_en.eq(~head_valid),
            self.r.payload.eq(head),
            self.r.valid.eq(head_valid),
            self.busy.eq((fifo.level != 0) | head_valid),
        ]
        return m


class Fault(data.Struct):
    code: 8
    index: 32


def fault_raiser(m, unit, instruction_index=None):
    """``raise_fault(code, index)``: latch a fault (by its RDL name) on a unit's ``fault`` and
    ``fault_valid`` members, the first one raised. Call it where the fault is detected (it
    drives combinational signals); the capture is set up here, so create the raiser outside
    any ``If`` or FSM state.

    The fault is registered as raised (code, index and a flag, all without enables) and
    latched a cycle later, so the capture registers' enable is one gate of two registers
    rather than the OR of every fault condition of the unit. ``fault_valid`` therefore rises
    two cycles after the detection: a unit that raised one stays busy (its STOPPED state),
    so the program cannot look finished meanwhile.

    ``instruction_index``: the register every fault of the unit names, if there is one
    (``raise_fault(code)`` then); it must hold still until the fault is latched, and is
    latched as it is, not through a multiplexer of the fault conditions."""
    codes = error_codes()
    raising = Signal(name="fault_raising")
    code = Signal.like(unit.fault.code, name="fault_raising_code")
    raised = Signal(name="fault_raised")
    raised_code = Signal.like(code, name="fault_raised_code", reset_less=True)
    m.d.sync += [raised.eq(raising), raised_code.eq(code)]
    if instruction_index is None:
        index = Signal.like(unit.fault.index, name="fault_raising_index")
        raised_index = Signal.like(index, name="fault_raised_index", reset_less=True)
        m.d.sync += raised_index.eq(index)
    else:
        raised_index = instruction_index
    with m.If(raised & ~unit.fault_valid):
        m.d.sync += [unit.fault.code.eq(raised_code), unit.fault.index.eq(raised_index),
                     unit.fault_valid.eq(1)]

    def raise_fault(code_name, fault_index=None):
        assert (fault_index is None) == (instruction_index is not None), \
            "pass the index to raise_fault exactly when the raiser was given none"
        m.d.comb += [raising.eq(1), code.eq(codes[code_name])]
        if fault_index is not None:
            m.d.comb += index.eq(fault_index)

    return raise_fault


class TokenCounter(wiring.Component):
    """Tokens one unit has given another and not yet taken back.

    Members
    -------
    give, take : In(1)
        One token more / one less (``take`` only while ``available``, and never within
        ``INPUT_REGISTERS`` cycles after a take: every unit spends more cycles than that
        between instructions); both are counted ``INPUT_REGISTERS`` cycles later.
    available : Out(1)
        A token may be taken: a register (the count is non-zero) that never over-reports to
        a unit that keeps that rule; it may still read 1 in the ``INPUT_REGISTERS`` cycles
        right after a take.
    """

    # ``give`` and ``take`` each pass two registers before they reach the count: the units'
    # decisions are logic (state, handshakes, halt) and the counter sits between two units
    # that may be placed far apart, so one register can sit by the deciding unit and the
    # other by the count, with a cycle for the wire between. The units drive them as ANDs
    # outside their FSMs, not as values set under the state's conditions, which would put a
    # multiplexer with 0 in front of the first register: yosys makes that its synchronous
    # clear (LSR; see ``skid_buffer``). Seed 1 of 97dcf56 ended there, COMPUTE's issue
    # decision into ``taken_d1``.
    INPUT_REGISTERS = 2

    give: In(1)
    take: In(1)
    available: Out(1)

    def elaborate(self, platform):
        m = Module()
        count = Signal(16)
        nonzero = Signal()  # count != 0, kept with it
        # ``available`` is the ``nonzero`` register: the taking unit decides from a register
        # and its decision ends in one, so no path runs from the counter to the unit and
        # back in one cycle.
        given = delay(m, self.give, self.INPUT_REGISTERS, "given")
        taken = delay(m, self.take, self.INPUT_REGISTERS, "taken")
        nonzero_next = Signal()
        m.d.comb += nonzero_next.eq(nonzero)
        with m.If(given & ~taken):
            m.d.sync += count.eq(count + 1)
            m.d.comb += nonzero_next.eq(1)
        with m.Elif(taken & ~given):
            m.d.sync += count.eq(count - 1)
            m.d.comb += nonzero_next.eq(count != 1)
        # ``nonzero`` is the count's, INPUT_REGISTERS cycles behind the unit: a take shows
        # from the cycle after that, which is the rule a unit keeps between takes.
        m.d.sync += nonzero.eq(nonzero_next)
        m.d.comb += self.available.eq(nonzero)
        return m


class FetchUnit(wiring.Component):
    """Streams the program in from DRAM and dispatches each instruction to its unit's queue.

    Transfers are sized to the free space of a small instruction buffer, so fetch never holds
    the shared read channel waiting for a queue to drain. Each head instruction is checked
    (opcode, reserved bits, dependency flags) and pushed to the LOAD, COMPUTE or STORE queue;
    FINISH, or the end of the program, waits until ``all_idle`` and raises ``done``.

    Members
    -------
    start : In(1)
        Pulse: fetch ``count`` instructions from ``base``.
    base, count : In(32)
    halt : In(1)
        Stop issuing transfers and dispatching (a fault or soft reset is being handled).
    transfer : Out(stream.Signature(Transfer)), chunk : In(stream.Signature(ByteChunk))
        To and from this unit's DMA reader.
    reader_busy, reader_response_error, reader_wrap_error : In(1)
    load_queue, compute_queue, store_queue : Out(stream.Signature(QueueEntry))
    all_idle : In(1)
        Every unit and queue is empty and idle, and every transfer has completed (may be
        two cycles old: FINISH looks at it from two cycles after the last push into a queue
        on).
    running : Out(1)
    done : Out(1)
        Pulse: the program finished.
    fault : Out(Fault), fault_valid : Out(1)
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        super().__init__({
            "start": In(1),
            "base": In(32),
            "count": In(32),
            "halt": In(1),
            "transfer": Out(stream.Signature(Transfer)),
            "chunk": In(stream.Signature(ByteChunk(config.bus_bytes))),
            "reader_busy": In(1),
            "reader_response_error": In(1),
            "reader_wrap_error": In(1),
            "load_queue": Out(stream.Signature(QueueEntry)),
            "compute_queue": Out(stream.Signature(QueueEntry)),
            "store_queue": Out(stream.Signature(QueueEntry)),
            "all_idle": In(1),
            "running": Out(1),
            "done": Out(1),
            "fault": Out(Fault),
            "fault_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        raise_fault = fault_raiser(m, self)
        m.submodules.packer = packer = RowPacker(chunk_bytes=self._config.bus_bytes,
                                                 row_bytes=INSTRUCTION_BYTES)
        wiring.connect(m, wiring.flipped(self.chunk), packer.chunk)
        queues = {Opcode.LOAD: self.load_queue, Opcode.COMPUTE: self.compute_queue,
                  Opcode.STORE: self.store_queue}

        # Decode as instructions enter the buffer: each is checked (opcode, reserved bits,
        # dependency flags) and its target chosen, and the buffer holds decoded entries: the
        # instruction, whether it is legal, and a one-hot of where it goes (its queue, or
        # that it is FINISH). The wide reserved-bit test so ends at the buffer's write port,
        # away from dispatch and the buffer's read side.
        targets = [*queues, Opcode.FINISH]
        entry_layout = data.StructLayout({"instruction": INSTRUCTION_BITS, "legal": 1,
                                          "to": len(targets)})
        # Instructions leave the packer through a skid stage: the decode starts from its
        # registers rather than from the packer's row multiplexer, and the packer's ready is
        # the stage's emptiness.
        arriving = Signal(INSTRUCTION_BITS)
        arriving_valid = Signal()
        decode_ready = Signal()
        packer_ready, arriving_skid_valid = skid_buffer(
            m, packer.row.payload.as_value(), packer.row.valid, arriving, arriving_valid,
            decode_ready, "arriving")
        m.d.comb += packer.row.ready.eq(packer_ready)
        header = Header(arriving[:Shape.cast(Header).width])
        legal = Signal()
        with m.Switch(header.opcode):
            for opcode, layout in INSTRUCTION_LAYOUTS.items():
                with m.Case(opcode):
                    # Sorted: a set's order changes between processes, and so would the Verilog.
                    forbidden = [getattr(header.deps, flag)
                                 for flag in sorted(FORBIDDEN_DEPENDENCIES[opcode])]
                    m.d.comb += legal.eq(((arriving & reserved_mask(layout)) == 0) &
                                         ~Cat(*forbidden).any())
        decoded = Signal(entry_layout)
        m.d.comb += [decoded.instruction.eq(arriving), decoded.legal.eq(legal),
                     decoded.to.eq(Cat(*(header.opcode == opcode for opcode in targets)))]
        # Decoded entries pass a skid stage of their own on the way into the buffer: the
        # buffer's storage is LUT RAM spread over many slices, and the decode's four LUT
        # levels so end at the stage's flip-flops, not at the RAM's write data (8.23 ns into
        # ``buffer.storage`` on seed 4 of 8d136f7).
        m.submodules.buffer = buffer = SyncFIFOBuffered(
            width=Shape.cast(entry_layout).width, depth=FETCH_BUFFER_DEPTH)
        staged = Signal(entry_layout, reset_less=True)
        staged_valid = Signal()
        staged_ready, staged_skid_valid = skid_buffer(
            m, decoded, arriving_valid, staged, staged_valid, buffer.w_rdy, "decoded")
        m.d.comb += [
            decode_ready.eq(staged_ready),
            buffer.w_data.eq(staged),
            buffer.w_en.eq(staged_valid),
        ]

        next_addr = Signal(32)
        remaining = Signal(32)    # instructions not yet requested
        fetched = Signal(32)      # instructions that arrived (fault index for fetch errors)
        dispatched = Signal(32)   # index of the head instruction
        with m.If(packer.row.valid & packer.row.ready):
            m.d.sync += fetched.eq(fetched + 1)

        # Fetch: ask for as many instructions as the buffer has room for. The size is a
        # register computed from the cycle before, and a transfer goes out only after fetch
        # was already idle then: nothing arrives while idle, so the room seen a cycle late is
        # never more than the room there is. The room is a counter of the buffer's writes and
        # reads (not FETCH_BUFFER_DEPTH - level, an adder behind the FIFO's state) and
        # ``remaining`` is compared through a flag registered a cycle after it changes (a
        # transfer keeps the reader busy for longer), so the size is a 5-bit minimum of
        # registers instead of four carry chains running into the DMA planner.
        free = Signal(range(FETCH_BUFFER_DEPTH + 1), init=FETCH_BUFFER_DEPTH)
        written = buffer.w_en & buffer.w_rdy
        read = buffer.r_en & buffer.r_rdy
        with m.If(written & ~read):
            m.d.sync += free.eq(free - 1)
        with m.Elif(read & ~written):
            m.d.sync += free.eq(free + 1)
        # remaining < FETCH_BUFFER_DEPTH, a cycle late. Set out of reset: while it is stale
        # after ``start`` the request is ``remaining[:4]`` or less, never more than remains.
        few_remaining = Signal(init=1)
        m.d.sync += few_remaining.eq(remaining < FETCH_BUFFER_DEPTH)
        # remaining != 0, a cycle late like ``few_remaining`` (stale only while a transfer
        # just sent, or ``start``, holds the request back anyway).
        remaining_nonzero = Signal()
        m.d.sync += remaining_nonzero.eq(remaining != 0)
        remaining_low = remaining[:exact_log2(FETCH_BUFFER_DEPTH)]
        request = Signal(range(FETCH_BUFFER_DEPTH + 1))
        m.d.sync += request.eq(Mux(few_remaining & (remaining_low < free), remaining_low, free))
        transfer_sent = Signal()
        fetch_idle = (~self.reader_busy & ~transfer_sent & (packer.level == 0) &
                      ~arriving_valid & ~arriving_skid_valid &
                      ~staged_valid & ~staged_skid_valid)
        was_idle = Signal()
        m.d.sync += was_idle.eq(fetch_idle)
        m.d.comb += [
            self.transfer.payload.dram_addr.eq(next_addr),
            self.transfer.payload.bytes_per_row.eq(request * INSTRUCTION_BYTES),
            self.transfer.payload.rows.eq(1),
        ]
        with m.If(self.transfer.valid & self.transfer.ready):
            m.d.sync += [
                transfer_sent.eq(1),
                next_addr.eq(next_addr + request * INSTRUCTION_BYTES),
                remaining.eq(remaining - request),
            ]
        with m.If(transfer_sent & self.reader_busy):
            m.d.sync += transfer_sent.eq(0)  # the reader has it; busy covers it from now

        # Dispatch reads from a two-entry ring of decoded entries: the buffer's read enable
        # is the ring's "not full" register and each entry's write enable a pointer compare,
        # so the dispatch decision (state, slot, the target queue's ready) moves only the
        # read pointer and two flags, at one instruction per cycle.
        entries = Array(Signal(entry_layout, name=f"entry_{index}") for index in range(2))
        write_index = Signal()
        read_index = Signal()
        slot_valid = Signal()     # the ring holds an entry
        full = Signal()           # it holds two
        slot = Signal(entry_layout)
        m.d.comb += slot.eq(entries[read_index])
        slot_to = {opcode: slot.to[position] for position, opcode in enumerate(targets)}

        # Dispatch: the slot's instruction goes to its queue (``dispatched`` is its index);
        # FINISH is always taken. Each queue is fed through a skid stage: the queues sit by
        # their units, across the die, and their write enables and levels start from the
        # stage's registers, not from the FSM state and the slot decode. The stages add a
        # cycle from dispatch to queue; DRAIN waits for them to empty before SETTLE.
        stage_ready = {}
        stage_valid = {}
        stage_empty = []
        for opcode, queue in queues.items():
            name = opcode.name.lower()
            payload = Signal(QueueEntry, name=f"{name}_dispatched")
            m.d.comb += [payload.instruction.eq(slot.instruction),
                         payload.index.eq(dispatched)]
            stage_valid[opcode] = Signal(name=f"{name}_dispatch")
            out_payload = Signal(QueueEntry, name=f"{name}_staged", reset_less=True)
            out_valid = Signal(name=f"{name}_staged_valid")
            stage_ready[opcode], skid_valid = skid_buffer(
                m, payload, stage_valid[opcode], out_payload, out_valid, queue.ready,
                f"{name}_stage")
            m.d.comb += [queue.payload.eq(out_payload), queue.valid.eq(out_valid)]
            stage_empty.append(~out_valid & ~skid_valid)
        stages_empty = Cat(*stage_empty).all()
        target_ready = Signal()
        m.d.comb += target_ready.eq(slot_to[Opcode.FINISH] | Cat(
            *(slot_to[opcode] & stage_ready[opcode] for opcode in queues)).any())
        dispatch = Signal()
        refill = Signal()
        m.d.comb += [refill.eq(buffer.r_rdy & ~full), buffer.r_en.eq(refill)]
        with m.If(refill):
            m.d.sync += [entries[write_index].eq(buffer.r_data), write_index.eq(~write_index)]
        with m.If(dispatch):
            m.d.sync += [dispatched.eq(dispatched + 1), read_index.eq(~read_index)]
        with m.If(refill & ~dispatch):
            m.d.sync += [slot_valid.eq(1), full.eq(slot_valid)]
        with m.Elif(dispatch & ~refill):
            m.d.sync += [slot_valid.eq(full), full.eq(0)]

        with m.FSM(name="fetch") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [next_addr.eq(self.base), remaining.eq(self.count),
                                 fetched.eq(0), dispatched.eq(0), transfer_sent.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(~self.halt):
                    m.d.comb += self.transfer.valid.eq(was_idle & ~transfer_sent &
                                                       remaining_nonzero & (request != 0))
                    with m.If(slot_valid):
                        with m.If(~slot.legal):
                            raise_fault("ILLEGAL_INSTRUCTION", dispatched)
                            m.next = "STOPPED"
                        with m.Else():
                            m.d.comb += [stage_valid[opcode].eq(slot_to[opcode])
                                         for opcode in queues]
                            m.d.comb += dispatch.eq(target_ready)
                            with m.If(slot_to[Opcode.FINISH]):
                                m.next = "DRAIN"
                    with m.Elif((remaining == 0) & fetch_idle & (free == FETCH_BUFFER_DEPTH)):
                        m.next = "DRAIN"  # the program ended without FINISH
                # Reader errors are checked beside dispatch, not in front of it, and win
                # (written last): what was dispatched this cycle is reset with the rest.
                with m.If(self.reader_response_error):
                    raise_fault("AXI_READ_ERROR", fetched)
                    m.next = "STOPPED"
                with m.Elif(self.reader_wrap_error):
                    raise_fault("BAD_TRANSFER", fetched)
                    m.next = "STOPPED"
            with m.State("DRAIN"):
                # Seen empty here, the stages' last push was a cycle or more ago: from
                # SETTLE on, as without the stages, the queues' levels show it.
                with m.If(stages_empty):
                    m.next = "SETTLE"
            with m.State("SETTLE"):
                m.next = "FINISH"  # ``all_idle`` has seen the last dispatch from here on
            with m.State("FINISH"):
                with m.If(self.all_idle & ~self.halt):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("STOPPED"):
                pass  # until the NPU resets the units
        m.d.comb += self.running.eq(~fsm.ongoing("IDLE"))
        return m
