"""Gearboxes between bus beats (W bytes, partly filled) and memory rows (R bytes).

The DMA moves byte streams: a LOAD's bytes arrive in beats of up to W bytes and leave as
rows of R bytes (N for the scratchpad, 4N for the accumulator, 8N for the quant table); a
STORE's rows of R bytes leave in beats of up to W bytes. R need not be a multiple of W or
the other way round (N = 12 gives 12-byte rows on an 8-byte bus).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ByteChunk", "row_bytes", "RowPacker", "RowUnpacker"]


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


class RowPacker(wiring.Component):
    """Packs chunks of 1..W bytes into rows of R bytes, in order, at full rate.

    Members
    -------
    chunk : In(stream.Signature(ByteChunk(W)))
    row : Out(stream.Signature(ArrayLayout(8, R)))
    level : Out(range(R + W + 1))
        Bytes held (a row ends a transfer only when this returns to 0).
    """

    def __init__(self, *, chunk_bytes, row_bytes):
        self._w = chunk_bytes
        self._r = row_bytes
        super().__init__({
            "chunk": In(stream.Signature(ByteChunk(chunk_bytes))),
            "row": Out(stream.Signature(data.ArrayLayout(8, row_bytes))),
            "level": Out(range(row_bytes + chunk_bytes + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        w, r = self._w, self._r
        capacity = r + w
        buffer = Signal(data.ArrayLayout(8, capacity))
        level = self.level

        m.d.comb += [
            self.row.valid.eq(level >= r),
            self.row.payload.eq(buffer.as_value()[:8 * r]),
        ]
        popped = Signal()
        m.d.comb += popped.eq(self.row.valid & self.row.ready)
        # Bytes left after this cycle's pop; a chunk fits when they leave room for W more.
        level_after_pop = Signal.like(level)
        m.d.comb += level_after_pop.eq(Mux(popped, level - r, level))
        m.d.comb += self.chunk.ready.eq(level_after_pop <= r)
        pushed = self.chunk.valid & self.chunk.ready

        # Drop the popped row, then place the chunk's valid bytes at level_after_pop.
        kept = Mux(popped, buffer.as_value() >> (8 * r), buffer.as_value())
        chunk_bits = self.chunk.payload.data.as_value()
        position = Cat(Const(0, 3), level_after_pop)  # in bits
        chunk_mask = Signal(8 * w)
        m.d.comb += chunk_mask.eq(Mux(pushed,
                                      (Const(1, 8 * w + 1) << Cat(Const(0, 3),
                                                                  self.chunk.payload.count)) - 1,
                                      0))
        placed_mask = Signal(8 * capacity)
        placed = Signal(8 * capacity)
        m.d.comb += [
            placed_mask.eq(chunk_mask << position),
            placed.eq((chunk_bits & chunk_mask) << position),
        ]
        m.d.sync += [
            buffer.eq((kept & ~placed_mask) | placed),
            level.eq(level_after_pop + Mux(pushed, self.chunk.payload.count, 0)),
        ]
        return m


class RowUnpacker(wiring.Component):
    """Unpacks rows of R bytes into a byte stream taken 0..W bytes at a time.

    The consumer sees the next W bytes (``head``) and how many are held (``level``), and
    takes ``take`` of them in a cycle (``take <= level``, checked by the consumer).

    Members
    -------
    row : In(stream.Signature(ArrayLayout(8, R)))
    head : Out(ArrayLayout(8, W))
    level : Out(range(R + W + 1))
    take : In(range(W + 1))
    """

    def __init__(self, *, chunk_bytes, row_bytes):
        self._w = chunk_bytes
        self._r = row_bytes
        super().__init__({
            "row": In(stream.Signature(data.ArrayLayout(8, row_bytes))),
            "head": Out(data.ArrayLayout(8, chunk_bytes)),
            "level": Out(range(row_bytes + chunk_bytes + 1)),
            "take": In(range(chunk_bytes + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        w, r = self._w, self._r
        capacity = r + w
        buffer = Signal(data.ArrayLayout(8, capacity))
        level = self.level
        m.d.comb += self.head.eq(buffer.as_value()[:8 * w])

        level_after_take = Signal.like(level)
        m.d.comb += level_after_take.eq(level - self.take)
        m.d.comb += self.row.ready.eq(level_after_take <= w)
        pushed = self.row.valid & self.row.ready

        # Drop the taken bytes, then place a pushed row at level_after_take.
        kept = buffer.as_value() >> Cat(Const(0, 3), self.take)
        position = Cat(Const(0, 3), level_after_take)  # in bits
        row_mask = Mux(pushed, Const((1 << (8 * r)) - 1, 8 * r), 0)
        placed_mask = Signal(8 * capacity)
        placed = Signal(8 * capacity)
        m.d.comb += [
            placed_mask.eq(row_mask << position),
            placed.eq((self.row.payload.as_value() & row_mask) << position),
        ]
        m.d.sync += [
            buffer.eq((kept & ~placed_mask) | placed),
            level.eq(level_after_take + Mux(pushed, r, 0)),
        ]
        return m
