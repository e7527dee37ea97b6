"""The DMA: 2-D strided transfers between DRAM (AXI4) and byte streams.

A transfer is ``rows`` DRAM rows of ``bytes_per_row`` bytes, row i starting at
``dram_addr + i * stride``, any byte alignment. Its bytes travel in order: the reader turns
them into chunks of up to W bytes (W = the bus width in bytes), the writer takes them from a
``RowUnpacker``. Bursts are INCR, never cross a 4 KiB boundary and are at most
``max_burst_beats`` long; several are in flight at once.

An error response stops the engine: from the next cycle it issues no further bursts, finishes
(reads: drains, writes: sends with no byte strobe) the ones in flight so the bus is never left
hanging, and holds ``error`` until ``clear``. ``abort`` does the same without an error (soft
reset). A transfer whose DRAM range would wrap past 2**32 raises ``error`` before any burst of
the wrapping part goes out.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .axi import AXI4Signature, Burst, Response
from .gearbox import ByteChunk, ByteSourceSignature, first_bytes
from .pipeline import replicas, skid_buffer

__all__ = ["Transfer", "transfer_of", "transfer_is_empty", "engine_params", "BurstPlanner",
           "DmaReader", "DmaWriter", "burst_layout"]

MAX_AXI_BEATS = 256
PAGE_BYTES = 4096


class Transfer(data.Struct):
    dram_addr: 32
    bytes_per_row: 16
    rows: 16
    stride: 32


def transfer_of(payload, insn):
    """Assignments of a LOAD or STORE instruction's DRAM fields to a ``Transfer``."""
    return [getattr(payload, name).eq(getattr(insn, name))
            for name, _ in data.Layout.cast(Transfer)]


def transfer_is_empty(insn):
    """Whether a LOAD or STORE instruction's transfer moves no bytes (the units fault on
    it: the planner needs non-zero ``rows`` and ``bytes_per_row``)."""
    return (insn.rows == 0) | (insn.bytes_per_row == 0)


def burst_layout(bus_bytes):
    """One burst: beat-aligned address, beats, where its first byte sits, how many bytes."""
    return data.StructLayout({
        "addr": 32,
        "beats": range(1, MAX_AXI_BEATS + 1),
        "offset": range(bus_bytes),
        "bytes": range(1, PAGE_BYTES + 1),
        "last": 1,
    })


class BurstPlanner(wiring.Component):
    """Splits a 2-D transfer into bursts: one per cycle, and a cycle more after a burst
    that stops inside a row (at a page's end or the burst limit, so a long one).

    Members
    -------
    transfer : In(stream.Signature(Transfer))
        ``bytes_per_row`` and ``rows`` must be non-zero (the units check).
    burst : Out(stream.Signature(burst_layout))
    busy : Out(1)
    wrap_error : Out(1)
        The transfer would wrap past 2**32; no burst of the wrapping part was planned.
        Held until ``clear``.
    abort, clear : In(1)
        Drop the current transfer / clear ``wrap_error``.
    """

    def __init__(self, *, bus_bytes, max_burst_beats):
        self._bus_bytes = bus_bytes
        self._max_burst_beats = max_burst_beats
        super().__init__({
            "transfer": In(stream.Signature(Transfer)),
            "burst": Out(stream.Signature(burst_layout(bus_bytes))),
            "busy": Out(1),
            "wrap_error": Out(1),
            "abort": In(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._bus_bytes
        lane_bits = exact_log2(w)
        max_burst_bytes = self._max_burst_beats * w
        row_addr = Signal(32)
        cursor = Signal(33)  # bit 32 set: the previous burst ended exactly at 2**32
        page_left = Signal(range(PAGE_BYTES + 1))  # PAGE_BYTES - cursor[:12], kept
        next_row_addr = Signal(33)                 # row_addr + stride, kept
        # next_row_addr + stride, kept a row further ahead, bit 32 set when it is 2**32 or
        # more: the row step's wrap check for the row after next is then a register, not
        # the top of a 33-bit carry chain in front of ``next_row_follows``.
        after_next_row_addr = Signal(33)
        row_left = Signal(16)
        rows_left = Signal(16)
        bytes_per_row = Signal(16)
        stride = Signal(32)

        # The burst is the smallest of three limits. Their comparisons are registers, set a
        # row ahead for the next row and in a COMPARE cycle after a mid-row burst, so
        # choosing the burst starts from flip-flops instead of two carry chains in front of
        # every planner register's enable.
        offset = cursor[:lane_bits]
        # Kept: the cursor is lane-aligned after every burst but a row's last.
        to_max_burst = Signal(range(max_burst_bytes + 1))
        last_row = Signal()   # rows_left == 1, kept
        # rows_left == 2, kept too: the next row's ``last`` then has no 16-bit compare.
        next_row_last = Signal()
        row_fits_page = Signal()    # row_left <= page_left
        row_fits_burst = Signal()   # row_left <= to_max_burst
        page_fits_burst = Signal()  # page_left <= to_max_burst
        # Kept with them: the burst ends the row; it ends the transfer; the row's end is
        # followed by a next row past 2**32.
        row_done = Signal()         # row_fits_page & row_fits_burst
        last = Signal()             # row_done & last_row
        row_end_wraps = Signal()    # ~last_row & next_row_addr[32]
        # row_done & ~last & ~row_end_wraps: the burst ends the row and the next row follows,
        # one register for the row step's enable (which loads the row registers).
        next_row_follows = Signal()
        burst_bytes = Signal(range(PAGE_BYTES + 1))
        with m.If(row_done):
            m.d.comb += burst_bytes.eq(row_left)
        with m.Elif(page_fits_burst):
            m.d.comb += burst_bytes.eq(page_left)
        with m.Else():
            m.d.comb += burst_bytes.eq(to_max_burst)

        m.d.comb += [
            self.burst.payload.addr.eq(Cat(Const(0, lane_bits), cursor[lane_bits:32])),
            self.burst.payload.beats.eq((offset + burst_bytes + w - 1) >> lane_bits),
            self.burst.payload.offset.eq(offset),
            self.burst.payload.bytes.eq(burst_bytes),
            self.burst.payload.last.eq(last),
        ]
        with m.If(self.clear):
            m.d.sync += self.wrap_error.eq(0)

        def beyond(address_sum):
            """A 33-bit address from a wider sum: bit 32 set when it is 2**32 or more (only
            the low 32 bits of an address that does not wrap are used)."""
            return Cat(address_sum[:32], address_sum[32:].any())

        def start_row(addr):
            return [cursor.eq(addr), page_left.eq(PAGE_BYTES - addr[:12]),
                    to_max_burst.eq(max_burst_bytes - addr[:lane_bits])]

        def continue_row(cursor_after, row_after, page_after):
            """A burst that ends at ``cursor_after`` and leaves ``row_after`` bytes of the row
            and ``page_after`` of the page; the next is lane-aligned, so a whole burst away
            from the burst limit. Such a burst ran to a page's end or the burst limit, so it
            is long (short ones end rows): the limits are compared afresh in COMPARE, a cycle
            per mid-row burst, rather than through the subtractions in front of them."""
            return [cursor.eq(cursor_after), page_left.eq(page_after),
                    to_max_burst.eq(max_burst_bytes), row_left.eq(row_after)]

        # Where a burst to the page's end or to the burst limit leaves the cursor: the next
        # page, or the lane-aligned cursor plus a whole burst (``page_left`` and
        # ``to_max_burst`` are those distances). Sums of the cursor register and constants,
        # not of the cursor and a chosen burst length.
        next_page = Cat(Const(0, 12), cursor[12:] + 1)
        burst_end = Cat(Const(0, lane_bits), cursor[lane_bits:]) + max_burst_bytes

        def limits(fits_page, fits_burst, page_fits, is_last_row, end_wraps):
            return [row_fits_page.eq(fits_page), row_fits_burst.eq(fits_burst),
                    page_fits_burst.eq(page_fits), row_done.eq(fits_page & fits_burst),
                    last.eq(fits_page & fits_burst & is_last_row),
                    next_row_follows.eq(fits_page & fits_burst & ~is_last_row & ~end_wraps)]

        def limits_compared(end_wraps):
            return limits(row_left <= page_left, row_left <= to_max_burst,
                          page_left <= to_max_burst, last_row, end_wraps)

        # The next row's comparisons, from registers a burst ahead: with a = its address,
        # bytes_per_row <= PAGE_BYTES - a[:12] is a[:12] <= PAGE_BYTES - bytes_per_row, and
        # likewise for the burst limit, with the right sides registered in FIRST (a row longer
        # than a page or a burst never fits either); the page fits the burst when a,
        # lane-aligned down, lies within max_burst_bytes of the page's end. One comparison of
        # registers each, not a sum and a comparison, in front of ``row_done``.
        row_ever_fits_page = Signal()   # bytes_per_row <= PAGE_BYTES
        row_ever_fits_burst = Signal()  # bytes_per_row <= max_burst_bytes
        page_room = Signal(range(PAGE_BYTES + 1))        # PAGE_BYTES - bytes_per_row
        burst_room = Signal(range(max_burst_bytes + 1))  # max_burst_bytes - bytes_per_row
        # The next row's comparisons are registers too, made a row ahead (in AHEAD for the
        # second row, at each row step for the row after next), so the row step's enable
        # and ``next_row_follows`` get one gate of flip-flops: from ``next_row_addr`` the
        # 12-bit comparison ran into ``next_row_follows`` (8.21 ns on seed 4 of 7eab2aa).
        next_row_fits_page = Signal()
        next_row_fits_burst = Signal()
        next_page_fits_burst = Signal()

        def next_limits(addr):
            """The three comparisons for the row starting at ``addr``, into the registers."""
            page_offset = addr[:12]
            return [next_row_fits_page.eq(row_ever_fits_page & (page_offset <= page_room)),
                    next_row_fits_burst.eq(row_ever_fits_burst &
                                           (addr[:lane_bits] <= burst_room)),
                    next_page_fits_burst.eq(((page_offset >> lane_bits) << lane_bits) >=
                                            PAGE_BYTES - max_burst_bytes)]
        after_page = Signal(16)    # row_left - page_left
        after_burst = Signal(16)   # row_left - to_max_burst
        page_after_burst = Signal(range(PAGE_BYTES + 1))
        m.d.comb += [after_page.eq(row_left - page_left),
                     after_burst.eq(row_left - to_max_burst),
                     page_after_burst.eq(page_left - to_max_burst)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.transfer.ready.eq(~self.abort)
                with m.If(self.transfer.valid & ~self.abort):
                    payload = self.transfer.payload
                    m.d.sync += [
                        row_addr.eq(payload.dram_addr),
                        *start_row(payload.dram_addr),
                        row_left.eq(payload.bytes_per_row),
                        bytes_per_row.eq(payload.bytes_per_row),
                        rows_left.eq(payload.rows),
                        last_row.eq(payload.rows == 1),
                        next_row_last.eq(payload.rows == 2),
                        stride.eq(payload.stride),
                    ]
                    m.next = "FIRST"
            with m.State("FIRST"):
                m.d.comb += self.busy.eq(1)
                first_next_row = row_addr + stride
                first_end_wraps = ~last_row & first_next_row[32]
                m.d.sync += [next_row_addr.eq(first_next_row),
                             after_next_row_addr.eq(beyond(row_addr + (stride << 1))),
                             *limits_compared(first_end_wraps),
                             row_end_wraps.eq(first_end_wraps),
                             row_ever_fits_page.eq(bytes_per_row <= PAGE_BYTES),
                             row_ever_fits_burst.eq(bytes_per_row <= max_burst_bytes),
                             page_room.eq(PAGE_BYTES - bytes_per_row),
                             burst_room.eq(max_burst_bytes - bytes_per_row)]
                m.next = "AHEAD"
            with m.State("AHEAD"):
                # The second row's comparisons, from the registers FIRST loaded.
                m.d.comb += self.busy.eq(1)
                m.d.sync += next_limits(next_row_addr)
                m.next = "PLAN"
            with m.State("COMPARE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += limits_compared(row_end_wraps)
                m.next = "PLAN"
            with m.State("PLAN"):
                m.d.comb += self.busy.eq(1)
                # A burst never crosses a 4 KiB page, so none starting below 2**32 wraps;
                # only one starting at 2**32 (the previous ended there) or a next row
                # starting past the address space does.
                wraps = cursor[32] | (row_done & row_end_wraps)
                m.d.comb += self.burst.valid.eq(~wraps & ~self.abort)
                # ``abort`` stops the burst and sends the FSM to IDLE but does not gate the
                # registers (IDLE reloads them), so it stays out of their enables.
                # The burst's outcomes, each enabled by registers and the queue's ready:
                # ``last`` and ``next_row_follows`` exclude a wrapping row end already.
                sent = ~cursor[32] & self.burst.ready
                with m.If(sent & last):
                    m.next = "IDLE"
                with m.If(sent & next_row_follows):
                    next_end_wraps = ~next_row_last & after_next_row_addr[32]
                    m.d.sync += [
                        row_addr.eq(next_row_addr),
                        next_row_addr.eq(after_next_row_addr),
                        after_next_row_addr.eq(beyond(after_next_row_addr + stride)),
                        *start_row(next_row_addr),
                        row_left.eq(bytes_per_row),
                        rows_left.eq(rows_left - 1),
                        last_row.eq(next_row_last),
                        next_row_last.eq(rows_left == 3),
                        *limits(next_row_fits_page, next_row_fits_burst,
                                next_page_fits_burst, next_row_last, next_end_wraps),
                        row_end_wraps.eq(next_end_wraps),
                        *next_limits(after_next_row_addr),
                    ]
                with m.If(sent & ~row_done):
                    with m.If(page_fits_burst):
                        # The burst ran to the page's end: the next starts a page.
                        m.d.sync += continue_row(next_page, after_page, PAGE_BYTES)
                    with m.Else():
                        m.d.sync += continue_row(burst_end, after_burst, page_after_burst)
                    m.next = "COMPARE"
                with m.If(wraps & ~self.abort):
                    m.d.sync += self.wrap_error.eq(1)
                    m.next = "IDLE"
                with m.If(self.abort):
                    m.next = "IDLE"
        return m


def _in_flight_layout(bus_bytes):
    # ``single`` is beats == 1, decided as the burst goes out so the beat planner's last-beat
    # flag is a register and a multiplexer.
    return data.StructLayout({"offset": range(bus_bytes), "bytes": range(1, PAGE_BYTES + 1),
                              "beats": range(1, MAX_AXI_BEATS + 1), "single": 1})


def engine_params(config):
    """The DMA engines' keyword arguments from the NPU configuration."""
    return dict(bus_bytes=config.bus_bytes, max_burst_beats=config.axi_max_burst_beats,
                max_outstanding=config.axi_max_outstanding)


class _EngineBase(wiring.Component):
    """What both engines have: a transfer in, status out, abort and clear in."""

    def __init__(self, members, *, bus_bytes, max_burst_beats, max_outstanding, axi_id,
                 id_width):
        if bus_bytes not in (4, 8, 16, 32):
            raise ValueError(f"bus_bytes must be 4, 8, 16 or 32, not {bus_bytes!r}")
        if not 1 <= max_burst_beats <= MAX_AXI_BEATS:
            raise ValueError(f"max_burst_beats must be in 1..{MAX_AXI_BEATS}, "
                             f"not {max_burst_beats!r}")
        self._bus_bytes = bus_bytes
        self._max_burst_beats = max_burst_beats
        self._max_outstanding = max_outstanding
        self._axi_id = axi_id
        super().__init__({
            "transfer": In(stream.Signature(Transfer)),
            **members,
            "busy": Out(1),
            "error": Out(1),
            "response_error": Out(1),
            "wrap_error": Out(1),
            "abort": In(1),
            "clear": In(1),
        })

    def _engine_core(self, m, fifo_name):
        """The parts both engines share: the planner fed from ``transfer``, the FIFO of
        bursts whose data is still to move, the error flags. Returns (planner, fifo, discard,
        transfer_held), ``discard`` meaning no more bytes may move (an error or an abort, from
        the cycle after: a register, since it reaches the bus handshakes) and
        ``transfer_held`` that a transfer waits for the planner.

        The transfer is registered on its way in, so the unit's handshake logic does not
        run into the enables of the planner's registers."""
        m.submodules.planner = planner = BurstPlanner(
            bus_bytes=self._bus_bytes, max_burst_beats=self._max_burst_beats)
        layout = _in_flight_layout(self._bus_bytes)
        m.submodules[fifo_name] = fifo = SyncFIFOBuffered(
            width=Shape.cast(layout).width, depth=self._max_outstanding)
        held = Signal(Transfer, reset_less=True)
        held_valid = Signal()
        m.d.comb += [self.transfer.ready.eq(~held_valid),
                     planner.transfer.payload.eq(held),
                     planner.transfer.valid.eq(held_valid)]
        with m.If(self.abort | (planner.transfer.valid & planner.transfer.ready)):
            m.d.sync += held_valid.eq(0)
        with m.Elif(~held_valid):
            m.d.sync += held_valid.eq(self.transfer.valid)
        # ``held`` follows the payload while it is empty, so its enable is a register and
        # the unit's offer (its FSM and token decision, far away) reaches only ``held_valid``
        # (8.3 ns into the enables of ``held`` on seed 2 of 0c155df).
        with m.If(~held_valid):
            m.d.sync += held.eq(self.transfer.payload)
        discard = Signal()
        m.d.sync += discard.eq(self.error | self.abort)
        m.d.comb += [
            # An error stops the planner too, so the planner's ``ready`` (into the enables of
            # all its registers) needs no stop term of its own; it stops a cycle late, from
            # the register, as the address channel does (a burst it plans meanwhile is
            # dropped there).
            planner.abort.eq(discard),
            planner.clear.eq(self.clear),
            self.wrap_error.eq(planner.wrap_error),
            self.error.eq(self.response_error | planner.wrap_error),
        ]
        with m.If(self.clear):
            m.d.sync += self.response_error.eq(0)
        return planner, fifo, discard, held_valid

    def _beat_lanes(self, m, fifo):
        """Which lanes the next beat of the head burst carries: (start_lane, count, last,
        advance, pending, planned_beats), ``advance(beat)`` moving on when a beat is
        transferred, ``pending`` saying a beat is ready and ``planned_beats`` that beats are
        still planned (for ``busy``).

        The beats are planned a stage ahead into a small FIFO, so the data path sees its lane
        numbers as registers: the minimum and comparisons that split a burst into beats end
        there instead of running into the data shifters and the bus handshake.
        """
        w = self._bus_bytes
        head = Signal(_in_flight_layout(w))
        m.d.comb += head.eq(fifo.r_data)
        beat_layout = data.StructLayout({"start_lane": range(w), "count": range(w + 1),
                                         "last": 1})
        m.submodules.beats = beats = SyncFIFOBuffered(
            width=Shape.cast(beat_layout).width, depth=4)

        # The last beat is known from a beat count (the burst's, then a down-counter), so
        # the in-flight FIFO's read enable needs no byte arithmetic; the byte counts only
        # go into the beat FIFO's data.
        first_beat = Signal(init=1)
        bytes_left = Signal(range(PAGE_BYTES + 1))
        beats_left = Signal(range(MAX_AXI_BEATS + 1))
        one_beat_left = Signal()  # beats_left == 1, kept
        planned = Signal(beat_layout)
        first_lanes = Signal(range(w + 1))
        m.d.comb += [
            first_lanes.eq(w - head.offset),
            planned.start_lane.eq(Mux(first_beat, head.offset, 0)),
            planned.last.eq(Mux(first_beat, head.single, one_beat_left)),
            beats.w_data.eq(planned),
        ]
        with m.If(first_beat):
            m.d.comb += planned.count.eq(Mux(planned.last, head.bytes, first_lanes))
        with m.Else():
            m.d.comb += planned.count.eq(Mux(planned.last, bytes_left, w))
        plan = fifo.r_rdy & beats.w_rdy
        m.d.comb += [beats.w_en.eq(plan), fifo.r_en.eq(plan & planned.last)]
        with m.If(plan):
            m.d.sync += first_beat.eq(planned.last)
            with m.If(first_beat):
                m.d.sync += [bytes_left.eq(head.bytes - first_lanes),
                             beats_left.eq(head.beats - 1), one_beat_left.eq(head.beats == 2)]
            with m.Else():
                m.d.sync += [bytes_left.eq(bytes_left - w), beats_left.eq(beats_left - 1),
                             one_beat_left.eq(beats_left == 2)]

        # The head beat sits in registers of its own, behind a skid register, so the beat
        # decision (``advance``, from the bus handshake or the source's levels) reaches only
        # them: the FIFO's pointers and level load on the skid's emptiness, a register. On
        # seed 1 of 07e9d94 the FIFO's ``r_rdy`` -> the writer's decision -> the FIFO's level
        # enables ran 20 columns there and back (9.31 ns).
        head_beat = Signal(beat_layout, reset_less=True)
        head_valid = Signal()
        transferred = Signal()
        skid_empty, skid_valid = skid_buffer(m, beats.r_data, beats.r_rdy, head_beat,
                                             head_valid, transferred, "beat")
        m.d.comb += beats.r_en.eq(beats.r_rdy & skid_empty)

        def advance(beat_transferred):
            m.d.comb += transferred.eq(beat_transferred)

        planned_beats = (beats.level != 0) | head_valid | skid_valid
        return (head_beat.start_lane, head_beat.count, head_beat.last, advance, head_valid,
                planned_beats)

    def _address_channel(self, m, planner, prefix, in_flight, space_left, stop):
        """Drive AR or AW from the planner while ``space_left``; each burst's data layout
        (``_in_flight_layout``) goes into the ``in_flight`` FIFO as it enters the channel's
        output registers.

        Returns (accepted, slot_valid): the strobe of a burst entering those registers
        (counted as outstanding from then on) and whether a burst waits anywhere here.

        Two planned bursts wait in a small FIFO, so the planner's address arithmetic ends in
        a register and the planner's ``ready`` comes from the FIFO's level register. The
        channel itself leaves from a register stage with a skid register (``skid_buffer``):
        the bus's ``ready`` reaches only those registers, not the FIFO's level and the
        outstanding count (on seed 3 of 7eab2aa the AW queue's level -> ``awvalid`` ->
        ``awready``'s gate by the bus port and back to the level's enable was 8.54 ns), and
        a burst offered stays offered until it is taken, as AXI requires, even if ``stop``
        (the registered ``discard``) arrives meanwhile: it is recorded already and drained
        like the rest. ``stop`` empties the FIFO.
        """
        axi = self.axi
        m.submodules[f"{prefix}_queue"] = queue = SyncFIFO(
            width=Shape.cast(burst_layout(self._bus_bytes)).width, depth=2)
        slot = Signal(burst_layout(self._bus_bytes))
        request_layout = data.StructLayout({"addr": len(slot.addr),
                                            "len": len(getattr(axi, f"{prefix}len"))})
        request = Signal(request_layout)
        out = Signal(request_layout, name=f"{prefix}_out", reset_less=True)
        out_valid = Signal(name=f"{prefix}_out_valid")
        valid = queue.r_rdy & space_left & ~stop
        # The planner's ready is a register beside the planner, the queue's ``w_rdy`` a
        # cycle early (its next level below the depth): the planner's burst decision enables
        # all of its address registers, and from the queue's level through ``w_rdy`` it was
        # 8.05 ns into ``rows_left`` on seed 5 of 97dcf56.
        queue_room = Signal(init=1)
        written = queue.w_en & queue.w_rdy
        read = queue.r_en & queue.r_rdy
        m.d.sync += queue_room.eq(queue.level + written - read < queue.depth)
        stage_ready, skid_valid = skid_buffer(m, request, valid, out, out_valid,
                                              getattr(axi, f"{prefix}ready"), prefix)
        accepted = valid & stage_ready
        m.d.comb += [
            slot.eq(queue.r_data),
            request.addr.eq(slot.addr),
            request.len.eq(slot.beats - 1),
            getattr(axi, f"{prefix}id").eq(self._axi_id),
            getattr(axi, f"{prefix}addr").eq(out.addr),
            getattr(axi, f"{prefix}len").eq(out.len),
            getattr(axi, f"{prefix}size").eq(exact_log2(self._bus_bytes)),
            getattr(axi, f"{prefix}burst").eq(Burst.INCR),
            getattr(axi, f"{prefix}valid").eq(out_valid),
            queue.w_data.eq(planner.burst.payload),
            queue.w_en.eq(planner.burst.valid & ~stop),
            planner.burst.ready.eq(queue_room),
            queue.r_en.eq(accepted | stop),
        ]
        record = Signal(_in_flight_layout(self._bus_bytes))
        m.d.comb += [record.offset.eq(slot.offset), record.bytes.eq(slot.bytes),
                     record.beats.eq(slot.beats), record.single.eq(slot.beats == 1),
                     in_flight.w_data.eq(record), in_flight.w_en.eq(accepted)]
        return accepted, queue.r_rdy | out_valid | skid_valid

class DmaReader(_EngineBase):
    """AXI4 read engine: a 2-D transfer from DRAM to a stream of byte chunks.

    Members
    -------
    transfer : In(stream.Signature(Transfer))
    chunk : Out(stream.Signature(ByteChunk(W)))
        The transfer's bytes in order, up to W per chunk.
    axi : Out(AXI4Signature(read=True, write=False))
    busy : Out(1)
        Bursts are planned or in flight.
    error : Out(1)
        ``response_error | wrap_error``. Held until ``clear``.
    response_error : Out(1)
        An RRESP other than OKAY.
    wrap_error : Out(1)
        A transfer would have wrapped past 2**32.
    abort, clear : In(1)
    """

    def __init__(self, *, bus_bytes=8, max_burst_beats=64, max_outstanding=4, axi_id=0,
                 id_width=1):
        super().__init__({
            "chunk": Out(stream.Signature(ByteChunk(bus_bytes))),
            "axi": Out(AXI4Signature(data_width=8 * bus_bytes, id_width=id_width,
                                     read=True, write=False)),
        }, bus_bytes=bus_bytes, max_burst_beats=max_burst_beats,
            max_outstanding=max_outstanding, axi_id=axi_id, id_width=id_width)

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        planner, in_flight, discard, transfer_held = self._engine_core(m, "in_flight")
        _, slot_valid = self._address_channel(m, planner, "ar", in_flight, in_flight.w_rdy,
                                              discard)

        # R side: the burst at the head of in_flight says where its bytes sit. The aligned
        # chunk goes through a register, so the lane arithmetic ends there and does not run
        # on into the consumer's (a gearbox's) shifters.
        # With a skid register behind the chunk register, RREADY depends on registers only,
        # not on the consumer's ready, which only moves the chunks along.
        start_lane, count, _, advance, pending, planned_beats = self._beat_lanes(m, in_flight)
        beat = axi.rvalid & axi.rready
        aligned = Signal.like(self.chunk.payload)
        m.d.comb += [aligned.data.eq(axi.rdata >> Cat(Const(0, 3), start_lane)),
                     aligned.count.eq(count)]
        skid_empty, skid_valid = skid_buffer(m, aligned, beat, self.chunk.payload,
                                             self.chunk.valid, self.chunk.ready, "chunk",
                                             flush=discard)
        m.d.comb += axi.rready.eq(pending & (discard | skid_empty))
        advance(beat)
        with m.If(beat & (axi.rresp != Response.OKAY)):
            m.d.sync += self.response_error.eq(1)
        m.d.comb += self.busy.eq(transfer_held | planner.busy | slot_valid |
                                 (in_flight.level != 0) |
                                 planned_beats | self.chunk.valid | skid_valid)
        return m


class DmaWriter(_EngineBase):
    """AXI4 write engine: a 2-D transfer from a byte stream to DRAM, with byte strobes.

    Members
    -------
    transfer : In(stream.Signature(Transfer))
    source : In(ByteSourceSignature(W, source_capacity))
        The bytes to write (``RowUnpacker``).
    axi : Out(AXI4Signature(read=False, write=True))
    busy : Out(1)
        Bursts are planned, being sent, or waiting for their response.
    error : Out(1)
        A BRESP other than OKAY, or a wrapping transfer. Held until ``clear``.
    abort, clear : In(1)
    """

    def __init__(self, *, bus_bytes=8, max_burst_beats=64, max_outstanding=4, axi_id=0,
                 id_width=1, source_capacity=None):
        source_capacity = source_capacity or 4 * bus_bytes
        super().__init__({
            "source": In(ByteSourceSignature(bus_bytes, source_capacity)),
            "axi": Out(AXI4Signature(data_width=8 * bus_bytes, id_width=id_width,
                                     read=False, write=True)),
        }, bus_bytes=bus_bytes, max_burst_beats=max_burst_beats,
            max_outstanding=max_outstanding, axi_id=axi_id, id_width=id_width)

    def elaborate(self, platform):
        m = Module()
        w = self._bus_bytes
        axi = self.axi
        source = self.source
        planner, to_send, discard, transfer_held = self._engine_core(m, "to_send")
        # Bursts whose address went out and whose response has not come back.
        awaiting_response = Signal(range(self._max_outstanding + 2))
        room = (awaiting_response < self._max_outstanding) & to_send.w_rdy
        accepted, slot_valid = self._address_channel(m, planner, "aw", to_send, room, discard)

        start_lane, count, last_beat, advance, pending, planned_beats = \
            self._beat_lanes(m, to_send)
        # The beat decision's own copy of ``discard``: that register also stops the planner
        # and the AW channel, and placed by them it was 4 ns of routing from ``load``.
        beat_discard = replicas(m, self.error | self.abort, "discard", ["beats"])["beats"]
        # Two register stages: a beat's window of source bytes is registered with how far
        # to rotate it (the source's word select ends there), then rotated straight to its
        # lanes into the W channel's registers (one shift for the source's byte offset and
        # the beat's start lane; the bus sees only flip-flops). Each stage has a skid
        # register behind it, so every decision ends a stage from: ``wready`` reaches only
        # the W registers' enables, and a beat is loaded into ``staged`` on the emptiness of
        # its skid (a register), so the take into the source's pointers starts from
        # flip-flops alone (from the W stage's skid, through ``staged``'s handshake, it was
        # 8.90 ns into the unpacker's read pointers on seed 4 of 97dcf56).
        staged_layout = data.StructLayout({
            "window": data.ArrayLayout(8, 2 * w), "rotate": range(2 * w), "strobe": w,
            "last": 1})
        loading = Signal(staged_layout)
        staged = Signal(staged_layout, reset_less=True)
        staged_valid = Signal()
        w_beat_layout = data.StructLayout({"data": 8 * w, "strobe": w, "last": 1})
        rotated = Signal(w_beat_layout)
        w_out = Signal(w_beat_layout)
        window = staged.window.as_value()
        m.d.comb += [
            rotated.data.eq((Cat(window, window) >> Cat(Const(0, 3), staged.rotate))[:8 * w]),
            rotated.strobe.eq(staged.strobe),
            rotated.last.eq(staged.last),
            axi.wdata.eq(w_out.data),
            axi.wstrb.eq(w_out.strobe),
            axi.wlast.eq(w_out.last),
        ]
        w_free, w_skid_valid = skid_buffer(m, rotated, staged_valid, w_out, axi.wvalid,
                                           axi.wready, "w")

        # Whether the source holds the head beat's bytes, kept as a register so no level
        # comparison runs through ``take`` into the source's pointer enables. It may say no
        # for a cycle too long (bytes arriving count a cycle late), never yes too early: the
        # level only falls by what is taken. It is the OR of two tests, made here so the
        # take sees one flip-flop: level >= W, which any beat needs at most (after a load,
        # against the level left), or level >= the head beat's count (a partial beat, while
        # that beat waits).
        holds = Signal()
        load = Signal()
        staged_free, staged_skid_valid = skid_buffer(m, loading, load, staged, staged_valid,
                                                     w_free, "staged")
        m.d.comb += load.eq(staged_free & pending & (beat_discard | holds))
        m.d.sync += holds.eq(Mux(load, source.level >= count + w, source.level >= w) |
                             (pending & ~load & (source.level >= count)))
        m.d.comb += [loading.window.eq(source.window),
                     loading.rotate.eq(source.offset - start_lane),
                     loading.strobe.eq(Mux(beat_discard, 0, first_bytes(count, w) << start_lane)),
                     loading.last.eq(last_beat)]
        m.d.comb += [source.take.eq(load & ~beat_discard), source.take_count.eq(count)]
        advance(load)

        m.d.comb += axi.bready.eq(1)
        response = axi.bvalid & axi.bready
        with m.If(response & (axi.bresp != Response.OKAY)):
            m.d.sync += self.response_error.eq(1)
        m.d.sync += awaiting_response.eq(awaiting_response + accepted - response)
        m.d.comb += self.busy.eq(transfer_held | planner.busy | slot_valid |
                                 (to_send.level != 0) |
                                 planned_beats | staged_valid | staged_skid_valid | axi.wvalid |
                                 w_skid_valid |
                                 (awaiting_response != 0))
        return m
