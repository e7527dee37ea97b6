"""Gearboxes between bus beats (W bytes, partly filled) and memory rows (R bytes).

The DMA moves byte streams: a LOAD's bytes arrive in beats of up to W bytes and leave as
rows of R bytes (N for the scratchpad, 4N for the accumulator, 8N for the quant table); a
STORE's rows of R bytes leave in beats of up to W bytes. R need not be a multiple of W or
the other way round (N = 12 gives 12-byte rows on an 8-byte bus).
"""

import math

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .pipeline import mirrors, replicas

# RowSplitter enables its held row this many bits at a time, each slice from flag copies of
# its own, so no enable net has more than this many loads.
SPLITTER_SLICE_BITS = 64

__all__ = ["ByteChunk", "ByteSourceSignature", "first_bytes", "placed_bytes", "row_bytes",
           "ring_bytes", "RowPacker", "RowUnpacker", "RowSplitter", "split_pieces"]


def row_bytes(layout):
    """Bytes in one memory row of ``layout`` (as it is laid out in DRAM)."""
    width = Shape.cast(layout).width
    assert width % 8 == 0, f"a row of {width} bits is not whole bytes"
    return width // 8


def ByteChunk(width_bytes):
    """Up to ``width_bytes`` bytes, the first ``count`` of ``data`` valid."""
    return data.StructLayout({
        "data": data.ArrayLayout(8, width_bytes),
        "count": range(1, width_bytes + 1),
    })


def ByteSourceSignature(chunk_bytes, capacity):
    """A byte stream taken 1..W bytes at a time (``RowUnpacker`` -> ``DmaWriter``).

    The source shows two words (``window``, 2W bytes, the next byte at ``offset``) and how
    many bytes it holds; the consumer takes ``take_count`` of them in a cycle with ``take``
    (``take_count <= level``, checked by the consumer). ``take_count`` should come from a
    register: the source's pointer arithmetic starts from it, and ``take`` only enables it.

    Members
    -------
    window : Out(ArrayLayout(8, 2W))
    offset : Out(range(W))
    level : Out(range(capacity + 1))
    take : In(1)
    take_count : In(range(W + 1))
    """
    return wiring.Signature({
        "window": Out(data.ArrayLayout(8, 2 * chunk_bytes)),
        "offset": Out(range(chunk_bytes)),
        "level": Out(range(capacity + 1)),
        "take": In(1),
        "take_count": In(range(chunk_bytes + 1)),
    })


def first_bytes(count, width_bytes):
    """A mask of ``width_bytes`` bits with the low ``count`` (0..width_bytes) set: the valid
    bytes of a chunk, or a beat's byte strobes before they move to their lanes. A table
    indexed by ``count``: each mask bit is one LUT of ``count``'s bits, where ``2**count - 1``
    would be a subtraction's carry chain in front of the shifters."""
    return Array(Const(2 ** c - 1, width_bytes) for c in range(width_bytes + 1))[count]


def placed_bytes(count, offset, width_bytes):
    """``first_bytes(count, width_bytes) << offset`` in ``2 * width_bytes`` lanes: the lanes a
    chunk of ``count`` bytes covers from lane ``offset`` (0..width_bytes-1). Each lane is a
    multiplexer, selected by ``offset``, of the thresholds ``count > k`` (one LUT of
    ``count``'s bits each), so a late ``count`` passes one LUT and one multiplexer; a table
    shifted by a barrel shifter was five LUT levels behind it (8.79 ns into RowPacker's
    ``staged_mask`` on seed 2 of 1f9a92e)."""
    above = [count > k for k in range(width_bytes)]
    lanes = []
    for lane in range(2 * width_bytes):
        candidates = [above[lane - shift] if 0 <= lane - shift < width_bytes else Const(0)
                      for shift in range(width_bytes)]
        lanes.append(Array(candidates)[offset])
    return Cat(*lanes)


def ring_bytes(chunk_bytes, row_bytes):
    """Capacity of a gearbox's ring: whole rows and whole chunk-sized words, with room for a
    row and two chunks (what full rate needs when ``ready`` looks only at the level)."""
    step = math.lcm(chunk_bytes, row_bytes)
    return step * -(-(row_bytes + 2 * chunk_bytes) // step)


def _following(value, modulus):
    """``value + 1`` modulo ``modulus`` (a ring index)."""
    return Mux(value == modulus - 1, 0, value + 1)


class _WordPointer:
    """A byte position in a ring of ``words`` words of ``w`` bytes, as registers: the word,
    the word after it (kept, so neither needs an adder to be read) and the byte offset."""

    def __init__(self, words, w, name):
        self._words, self._w = words, w
        self.word = Signal(range(words), name=f"{name}_word")
        self.next_word = Signal(range(words), init=1 % words, name=f"{name}_next_word")
        self.offset = Signal(range(w), name=f"{name}_offset")

    def advance(self, m, amount):
        """Move on by ``amount`` (0..W) bytes at the next edge."""
        end = self.offset + amount
        with m.If(end >= self._w):
            m.d.sync += [self.word.eq(self.next_word),
                         self.next_word.eq(_following(self.next_word, self._words))]
        m.d.sync += self.offset.eq(end[:exact_log2(self._w)])


class _Ring(wiring.Component):
    """What both gearboxes share: W a power of two, and the ring's capacity."""

    def __init__(self, members, *, chunk_bytes, row_bytes):
        if chunk_bytes & (chunk_bytes - 1):
            raise ValueError(f"chunk_bytes must be a power of two, not {chunk_bytes}")
        self._w = chunk_bytes
        self._r = row_bytes
        self._capacity = ring_bytes(chunk_bytes, row_bytes)
        super().__init__(members)

    @property
    def capacity(self):
        """Bytes the ring holds at most (the range of ``level``)."""
        return self._capacity


class RowPacker(_Ring):
    """Packs chunks of 1..W bytes into rows of R bytes, in order, at full rate.

    The bytes sit in a ring of whole rows and whole W-byte words. A chunk is first shifted to
    the write offset and registered with its byte mask; the next cycle writes it into the
    ring at a one-hot word pointer, so each ring byte's enable is a single gate of registers
    (the ring is up to 8N + 2W bytes wide: its enables are the packer's widest fan-out).
    Rows are read at a read pointer register. ``chunk.ready`` and ``row.valid`` come from
    level registers; the handshakes only enable pointer updates.

    Members
    -------
    chunk : In(stream.Signature(ByteChunk(W)))
    row : Out(stream.Signature(ArrayLayout(8, R)))
    level : Out(range(capacity + 1))
        Bytes taken in and not yet in a row handed out (a row ends a transfer only when this
        returns to 0).
    settled : Out(1)
        No chunk is on its way into the ring: ``row.valid`` says whether the bytes held
        make a whole row.
    """

    def __init__(self, *, chunk_bytes, row_bytes):
        super().__init__({
            "chunk": In(stream.Signature(ByteChunk(chunk_bytes))),
            "row": Out(stream.Signature(data.ArrayLayout(8, row_bytes))),
            "level": Out(range(ring_bytes(chunk_bytes, row_bytes) + 1)),
            "settled": Out(1),
        }, chunk_bytes=chunk_bytes, row_bytes=row_bytes)

    def elaborate(self, platform):
        m = Module()
        w, r, capacity = self._w, self._r, self._capacity
        words, rows = capacity // w, capacity // r
        ring = Signal(data.ArrayLayout(8, capacity), reset_less=True)  # bytes, no reset
        # The write position: the byte offset, moved as a chunk is taken, and the word, one-hot
        # and moved as the staged chunk is written. The word so moves on a register (the
        # staged mask's last lane of the word: the chunk reaches the word's end), not on the
        # offset's adder: behind ``pushed`` that adder set the word registers' enables, which
        # sit by the ring, far from the offset by the shifter (9.35 ns into
        # ``write_next_word`` on seed 2 of 8d136f7).
        write_offset = Signal(range(w))
        write_words = Signal(words, init=1)
        next_words = write_words.rotate_left(1)
        read_row = Signal(range(rows))
        level = self.level
        # Bytes written into the ring and not yet read: what ``row.valid`` looks at (the
        # staged chunk is in ``level`` but not here yet).
        ring_level = Signal.like(level)
        # Room for a whole chunk, and a whole row held: both kept with the levels, so the
        # handshakes start from registers.
        room = Signal(init=1)
        row_held = Signal()

        m.d.comb += [
            self.row.valid.eq(row_held),
            self.row.payload.eq(Array(ring.as_value()[8 * r * i:8 * r * (i + 1)]
                                      for i in range(rows))[read_row]),
            self.chunk.ready.eq(room),
        ]
        popped = self.row.valid & self.row.ready
        pushed = self.chunk.valid & self.chunk.ready
        count = self.chunk.payload.count

        # Stage 1: the chunk and its byte mask shifted to the write offset, two words' worth
        # (the first for the write word, the second for the word after it).
        staged_valid = Signal()
        staged_count = Signal.like(count)
        staged_data = Signal(16 * w, reset_less=True)
        staged_mask = Signal(2 * w, reset_less=True)
        # The stage loads every cycle (``staged_valid`` says whether it holds a chunk): the
        # handshake, which arrives last, enables only the pointer and the level, not the
        # stage's hundreds of flip-flops.
        m.d.sync += [staged_valid.eq(pushed), staged_count.eq(count)]
        m.d.comb += self.settled.eq(~staged_valid)
        end = write_offset + count
        # The shifter and the mask each read a copy of the offset of their own (``mirrors``):
        # the one register drove both, the 16W-bit shifter's selects and the mask's
        # multiplexers (write_offset -> staged_mask, 8.51 and 8.31 ns on seeds 1 and 3 of
        # 309f0c6 at N=8).
        offset_copies = mirrors(write_offset, ["data", "mask"])
        m.d.sync += [
            staged_data.eq(self.chunk.payload.data.as_value() <<
                           Cat(Const(0, 3), offset_copies["data"])),
            staged_mask.eq(placed_bytes(count, offset_copies["mask"], w)),
        ]
        with m.If(pushed):
            m.d.sync += [offset.eq(end[:exact_log2(w)])
                         for offset in [write_offset, *offset_copies.values()]]

        # Stage 2: into the ring.
        with m.If(staged_valid):
            with m.If(staged_mask[w - 1]):
                m.d.sync += write_words.eq(next_words)
            for word in range(words):
                for byte in range(w):
                    lane = ring[word * w + byte]
                    with m.If(write_words[word] & staged_mask[byte]):
                        m.d.sync += lane.eq(staged_data[8 * byte:8 * byte + 8])
                    with m.Elif(next_words[word] & staged_mask[w + byte]):
                        m.d.sync += lane.eq(staged_data[8 * (w + byte):8 * (w + byte) + 8])
        with m.If(popped):
            m.d.sync += read_row.eq(_following(read_row, rows))

        # Both outcomes of ``popped`` (the consumer's handshake, the latest signal here) are
        # computed from registers; it only chooses between them. ``room`` counts a chunk
        # pushed now as a whole word (it may be shorter), so it compares the level register
        # with constants and not the sum behind it: it may say no a cycle too long, never
        # yes too early.
        # Each level moves by one adder: what it gains and loses this cycle is chosen first
        # (``count - r`` from registers, beside the handshakes), not added and then
        # subtracted in two carry chains behind ``pushed``.
        level_change = Signal(range(-r, w + 1))
        m.d.comb += level_change.eq(Mux(pushed, Mux(popped, count - r, count),
                                        Mux(popped, -r, 0)))
        ring_level_change = Signal(range(-r, w + 1))
        m.d.comb += ring_level_change.eq(Mux(staged_valid,
                                             Mux(popped, staged_count - r, staged_count),
                                             Mux(popped, -r, 0)))
        m.d.sync += [level.eq(level + level_change),
                     ring_level.eq(ring_level + ring_level_change)]
        ring_level_in = ring_level + Mux(staged_valid, staged_count, 0)
        with m.If(popped):
            m.d.sync += [room.eq(Mux(pushed, level <= capacity - 2 * w + r,
                                     level <= capacity - w + r)),
                         row_held.eq(ring_level_in >= 2 * r)]
        with m.Else():
            m.d.sync += [room.eq(Mux(pushed, level <= capacity - 2 * w, level <= capacity - w)),
                         row_held.eq(ring_level_in >= r)]
        return m


class RowUnpacker(_Ring):
    """Unpacks rows of R bytes into a byte stream taken 0..W bytes at a time.

    Like ``RowPacker``, the bytes sit in a ring with a register for each pointer: a row is
    written at a row boundary, the window is the word at the read pointer and the word after
    it, and ``row.ready`` comes from the level register. The consumer does the byte shift
    (``DmaWriter`` merges it with its lane shift).

    Members
    -------
    row : In(stream.Signature(ArrayLayout(8, R)))
    source : Out(ByteSourceSignature(W, capacity))
    """

    def __init__(self, *, chunk_bytes, row_bytes):
        super().__init__({
            "row": In(stream.Signature(data.ArrayLayout(8, row_bytes))),
            "source": Out(ByteSourceSignature(chunk_bytes,
                                              ring_bytes(chunk_bytes, row_bytes))),
        }, chunk_bytes=chunk_bytes, row_bytes=row_bytes)

    def elaborate(self, platform):
        m = Module()
        w, r, capacity = self._w, self._r, self._capacity
        words, rows = capacity // w, capacity // r
        ring = Signal(data.ArrayLayout(8, capacity), reset_less=True)  # bytes, no reset
        write_row = Signal(range(rows))
        read = _WordPointer(words, w, "read")
        source = self.source
        level = source.level

        word_values = Array(ring.as_value()[8 * w * i:8 * w * (i + 1)] for i in range(words))
        room = Signal(init=1)  # level <= capacity - R, kept with the level
        m.d.comb += [
            source.window.eq(Cat(word_values[read.word], word_values[read.next_word])),
            source.offset.eq(read.offset),
            self.row.ready.eq(room),
        ]
        pushed = self.row.valid & self.row.ready
        with m.If(pushed):
            for index in range(rows):
                with m.If(write_row == index):
                    m.d.sync += ring.as_value()[8 * r * index:8 * r * (index + 1)].eq(
                        self.row.payload.as_value())
            m.d.sync += write_row.eq(_following(write_row, rows))
        # Both outcomes of ``take`` (the consumer's handshake, the latest signal here) are
        # computed from registers; it only chooses between them.
        level_in = level + Mux(pushed, r, 0)
        with m.If(source.take):
            read.advance(m, source.take_count)
            m.d.sync += [level.eq(level_in - source.take_count),
                         room.eq(level_in <= capacity - r + source.take_count)]
        with m.Else():
            m.d.sync += [level.eq(level_in), room.eq(level_in <= capacity - r)]
        return m


def split_pieces(row_bytes, chunk_bytes, most=4):
    """Pieces to split rows of R bytes into before a ``RowUnpacker``: the most (of ``most``
    and its halves) that still leaves each piece at least W bytes, so the unpacker is fed at
    the bus's rate by a ring a fraction of the size; 1 if R is not a multiple of them."""
    pieces = most
    while pieces > 1 and (row_bytes % pieces or row_bytes // pieces < chunk_bytes):
        pieces //= 2
    return pieces


class RowSplitter(wiring.Component):
    """Splits each row of R bytes into ``pieces`` rows of R / pieces bytes, in order, one a
    cycle: a register holding the row, rotated down a piece at a time (no multiplexer).
    A second row waits in a register behind it, so ``row_in.ready`` is that register's
    emptiness (a flip-flop: the consumer's ready does not reach the producer) and a row
    still follows the last piece of the one before without a gap.

    Members
    -------
    row_in : In(stream.Signature(ArrayLayout(8, R)))
    row_out : Out(stream.Signature(ArrayLayout(8, R / pieces)))
    holding : Out(1)
        A piece is held (for the STORE unit's end-of-transfer check).
    """

    def __init__(self, *, row_bytes, pieces):
        if pieces < 1 or row_bytes % pieces:
            raise ValueError(f"{row_bytes} bytes do not split into {pieces} pieces")
        self._r = row_bytes
        self._pieces = pieces
        super().__init__({
            "row_in": In(stream.Signature(data.ArrayLayout(8, row_bytes))),
            "row_out": Out(stream.Signature(data.ArrayLayout(8, row_bytes // pieces))),
            "holding": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        piece_bits = 8 * self._r // self._pieces
        held = Signal(8 * self._r, reset_less=True)
        full = Signal()
        left = Signal(range(self._pieces))  # pieces after the one shown
        waiting = Signal(8 * self._r, reset_less=True)  # the next row
        waiting_full = Signal()
        m.d.comb += [self.row_out.payload.eq(held[:piece_bits]),
                     self.row_out.valid.eq(full),
                     self.row_in.ready.eq(~waiting_full),
                     self.holding.eq(full)]  # a row waits only behind a held one
        # The waiting register follows the input while it is empty (its enable a register);
        # a row offered then stays there unless ``held`` takes it at once.
        with m.If(~waiting_full):
            m.d.sync += waiting.eq(self.row_in.payload)
        # ``held`` takes a row whenever it has a slot, valid or not (``full`` says which), so
        # its enables depend on its own flags and the consumer's ready alone. It rotates
        # rather than shifts: no bit is cleared (a constant would become reset-pin logic).
        slot = ~full | ((left == 0) & self.row_out.ready)
        full_next = Signal()
        left_next = Signal.like(left)
        waiting_full_next = Signal()
        m.d.comb += [
            full_next.eq(Mux(slot, waiting_full | self.row_in.valid, full)),
            left_next.eq(Mux(slot, self._pieces - 1,
                             Mux(self.row_out.ready, left - 1, left))),
            waiting_full_next.eq(Mux(slot, 0, waiting_full | self.row_in.valid)),
        ]
        m.d.sync += [full.eq(full_next), left.eq(left_next),
                     waiting_full.eq(waiting_full_next)]
        # ``held`` is enabled a slice at a time, each from copies of the flags beside it:
        # one decision driving every bit's enable and select was a net of 258 loads across
        # the die (8.53 ns on seed 1 of ba932c6, 7.8 of it routing). The copies follow the
        # next values without a reset; after a unit reset they agree with the flags from the
        # second cycle on, and in the first the flags are empty and no row is offered (the
        # row buffer is reset too), so a slice that misses that cycle's load loses nothing.
        slices = max(1, len(held) // SPLITTER_SLICE_BITS)
        slice_bits = -(-len(held) // slices)
        names = [f"slice_{index}" for index in range(slices)]
        full_copies = replicas(m, full_next, "splitter_full", names)
        last_copies = replicas(m, left_next == 0, "splitter_last", names)
        waiting_copies = replicas(m, waiting_full_next, "splitter_waiting", names)
        for index, name in enumerate(names):
            bits = slice(index * slice_bits, min((index + 1) * slice_bits, len(held)))
            slice_slot = ~full_copies[name] | (last_copies[name] & self.row_out.ready)
            with m.If(slice_slot):
                m.d.sync += held[bits].eq(Mux(waiting_copies[name], waiting[bits],
                                              self.row_in.payload.as_value()[bits]))
            with m.Elif(self.row_out.ready):
                m.d.sync += held[bits].eq(held.rotate_right(piece_bits)[bits])
        return m
