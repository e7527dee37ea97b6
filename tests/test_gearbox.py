"""Gearboxes between bus beats and memory rows, in Amaranth's simulator, against byte lists."""

import numpy as np
import pytest
from amaranth import Module, ResetInserter, Signal
from amaranth.sim import Simulator

from rtl.gearbox import RowPacker, RowSplitter, RowUnpacker, placed_bytes, split_pieces

SHAPES = [(8, 8), (8, 4), (8, 12), (8, 32), (4, 12), (16, 8), (8, 64)]


@pytest.mark.parametrize("width_bytes", [4, 8, 16])
def test_placed_bytes_is_the_shifted_mask_for_every_count_and_offset(width_bytes):
    count = Signal(range(width_bytes + 1))
    offset = Signal(range(width_bytes))
    lanes = Signal(2 * width_bytes)
    m = Module()
    m.d.comb += lanes.eq(placed_bytes(count, offset, width_bytes))

    async def testbench(ctx):
        for c in range(width_bytes + 1):
            for o in range(width_bytes):
                ctx.set(count, c)
                ctx.set(offset, o)
                assert ctx.get(lanes) == ((1 << c) - 1) << o, (c, o)

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("chunk_bytes, row_bytes", SHAPES)
def test_packer_keeps_every_byte_in_order(chunk_bytes, row_bytes):
    seed = chunk_bytes * 100 + row_bytes
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows_wanted = 40
    stream_bytes = [int(b) for b in rng.integers(0, 256, rows_wanted * row_bytes)]
    dut = RowPacker(chunk_bytes=chunk_bytes, row_bytes=row_bytes)
    received = []
    cycles_busy = [0]

    async def testbench(ctx):
        sent = 0
        while len(received) < rows_wanted:
            count = int(rng.integers(1, chunk_bytes + 1))
            count = min(count, len(stream_bytes) - sent)
            full_rate = rng.random() < 0.5
            ctx.set(dut.chunk.valid, count > 0 and (full_rate or rng.random() < 0.5))
            chunk = stream_bytes[sent:sent + count] + [0] * (chunk_bytes - count)
            ctx.set(dut.chunk.payload, {"data": chunk, "count": max(count, 1)})
            ctx.set(dut.row.ready, full_rate or rng.random() < 0.7)
            await ctx.delay(1e-9)
            if ctx.get(dut.row.valid) and ctx.get(dut.row.ready):
                received.append([ctx.get(dut.row.payload[i]) for i in range(row_bytes)])
            if ctx.get(dut.chunk.valid) and ctx.get(dut.chunk.ready):
                sent += count
            cycles_busy[0] += 1
            assert cycles_busy[0] < 10_000
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert sum(received, []) == stream_bytes


@pytest.mark.parametrize("chunk_bytes, row_bytes", SHAPES)
def test_packer_runs_at_full_rate(chunk_bytes, row_bytes):
    """With both sides always ready, bytes flow at min(W, R) per cycle."""
    dut = RowPacker(chunk_bytes=chunk_bytes, row_bytes=row_bytes)
    rows = 24
    cycles = [0]

    async def testbench(ctx):
        ctx.set(dut.row.ready, 1)
        ctx.set(dut.chunk.payload, {"data": [1] * chunk_bytes, "count": chunk_bytes})
        got = 0
        while got < rows:
            ctx.set(dut.chunk.valid, 1)
            await ctx.delay(1e-9)
            got += ctx.get(dut.row.valid)
            cycles[0] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    ideal = rows * row_bytes / min(chunk_bytes, row_bytes)
    assert cycles[0] <= ideal + row_bytes // chunk_bytes + 2


@pytest.mark.parametrize("chunk_bytes, row_bytes", SHAPES)
def test_unpacker_keeps_every_byte_in_order(chunk_bytes, row_bytes):
    seed = chunk_bytes * 1000 + row_bytes
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = 30
    stream_bytes = [int(b) for b in rng.integers(0, 256, rows * row_bytes)]
    dut = RowUnpacker(chunk_bytes=chunk_bytes, row_bytes=row_bytes)
    taken = []

    async def testbench(ctx):
        pushed = 0
        steps = 0
        while len(taken) < len(stream_bytes):
            ctx.set(dut.row.valid, pushed < rows and rng.random() < 0.8)
            if pushed < rows:
                ctx.set(dut.row.payload,
                        stream_bytes[pushed * row_bytes:(pushed + 1) * row_bytes])
            level = ctx.get(dut.source.level)
            take = int(rng.integers(0, min(level, chunk_bytes) + 1))
            # The count is steady whether or not bytes are taken, as a consumer's is.
            ctx.set(dut.source.take_count, take or int(rng.integers(1, chunk_bytes + 1)))
            ctx.set(dut.source.take, take != 0)
            offset = ctx.get(dut.source.offset)
            taken.extend(ctx.get(dut.source.window[offset + i]) for i in range(take))
            await ctx.delay(1e-9)
            if ctx.get(dut.row.valid) and ctx.get(dut.row.ready):
                pushed += 1
            steps += 1
            assert steps < 20_000
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert taken == stream_bytes


@pytest.mark.parametrize("chunk_bytes, row_bytes", SHAPES)
def test_unpacker_runs_at_full_rate(chunk_bytes, row_bytes):
    """With rows always offered and the consumer taking all it may (up to W bytes a cycle),
    bytes flow at min(W, R) per cycle: the staged row and the room kept a row ahead cost
    latency, not throughput."""
    dut = RowUnpacker(chunk_bytes=chunk_bytes, row_bytes=row_bytes)
    rows = 24
    cycles = [0]

    async def testbench(ctx):
        ctx.set(dut.row.valid, 1)
        ctx.set(dut.row.payload, [1] * row_bytes)
        taken = 0
        while taken < rows * row_bytes:
            take = min(ctx.get(dut.source.level), chunk_bytes)
            ctx.set(dut.source.take_count, max(take, 1))
            ctx.set(dut.source.take, take != 0)
            taken += take
            cycles[0] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    ideal = rows * row_bytes / min(chunk_bytes, row_bytes)
    assert cycles[0] <= ideal + row_bytes // chunk_bytes + 3, f"{cycles[0]} cycles, ideal {ideal}"


@pytest.mark.parametrize("row_bytes, pieces", [(32, 4), (16, 2), (48, 4), (8, 1)])
def test_splitter_hands_out_every_piece_in_order_one_a_cycle(row_bytes, pieces):
    seed = row_bytes * 10 + pieces
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = 40
    stream_bytes = [int(b) for b in rng.integers(0, 256, rows * row_bytes)]
    dut = RowSplitter(row_bytes=row_bytes, pieces=pieces)
    received = []

    async def testbench(ctx):
        pushed = 0
        for _ in range(20_000):
            if len(received) == len(stream_bytes):
                break
            ctx.set(dut.row_in.valid, pushed < rows and rng.random() < 0.7)
            if pushed < rows:
                ctx.set(dut.row_in.payload,
                        stream_bytes[pushed * row_bytes:(pushed + 1) * row_bytes])
            ctx.set(dut.row_out.ready, rng.random() < 0.7)
            await ctx.delay(1e-9)
            assert ctx.get(dut.holding) == ctx.get(dut.row_out.valid)
            if ctx.get(dut.row_out.valid) and ctx.get(dut.row_out.ready):
                received.extend(ctx.get(dut.row_out.payload))
            if ctx.get(dut.row_in.valid) and ctx.get(dut.row_in.ready):
                pushed += 1
            await ctx.tick()
        # Offered rows and a ready consumer: after the first row's cycle in, a piece every
        # cycle.
        ctx.set(dut.row_in.valid, 1)
        ctx.set(dut.row_out.ready, 1)
        await ctx.tick()
        for cycle in range(10 * pieces):
            await ctx.delay(1e-9)
            assert ctx.get(dut.row_out.valid), f"no piece in cycle {cycle} of full rate"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert received == stream_bytes


@pytest.mark.parametrize("row_bytes, pieces", [(32, 4), (64, 8), (48, 4)])
def test_splitter_after_a_reset_pulse_hands_out_only_the_rows_offered_after_it(row_bytes,
                                                                             pieces):
    """A one-cycle reset (the units' reset) while pieces are held: the rows pushed after it
    come out whole and in order (the slices' flag copies, which have no reset, agree again).
    As in the STORE unit, whose row buffer is reset too, no row is offered the cycle after."""
    seed = row_bytes * 100 + pieces
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    splitter = RowSplitter(row_bytes=row_bytes, pieces=pieces)
    reset = Signal()
    dut = ResetInserter(reset)(splitter)
    resets = 0

    async def testbench(ctx):
        nonlocal resets
        expected, received = [], []
        quiet = False  # the cycle after a reset: nothing offered
        for cycle in range(3_000):
            row = [int(b) for b in rng.integers(0, 256, row_bytes)]
            pulse = cycle < 2_500 and ctx.get(splitter.holding) and rng.random() < 0.05
            ctx.set(reset, pulse)
            ctx.set(splitter.row_in.valid, cycle < 2_500 and not quiet and rng.random() < 0.7)
            ctx.set(splitter.row_in.payload, row)
            ctx.set(splitter.row_out.ready, rng.random() < 0.7)
            await ctx.delay(1e-9)
            if pulse:
                assert received == expected[:len(received)], f"cycle {cycle}"
                expected, received = [], []
                resets += 1
            else:
                if ctx.get(splitter.row_out.valid) and ctx.get(splitter.row_out.ready):
                    received.extend(ctx.get(splitter.row_out.payload))
                if ctx.get(splitter.row_in.valid) and ctx.get(splitter.row_in.ready):
                    expected.extend(row)
            quiet = pulse
            await ctx.tick()
        assert received == expected

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert resets > 10, f"only {resets} resets while holding"


def test_split_pieces_keep_at_least_a_bus_word():
    assert [split_pieces(4 * n, 8) for n in (2, 4, 8, 12, 16)] == [1, 2, 4, 4, 4]
    assert split_pieces(32, 16) == 2 and split_pieces(32, 32) == 1
