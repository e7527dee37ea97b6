"""The accumulator's read-modify-write in Amaranth's simulator, beside a dict model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.accumulator import ACCUMULATOR_READ_LATENCY, Accumulator
from rtl.config import NpuConfig


def wrap32(value):
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31


def test_updates_and_writes_match_model():
    seed = 7
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    config = NpuConfig(n=2, accumulator_depth=16)
    dut = Accumulator(config)
    model = {}
    lanes = config.n

    def apply(addr, row, accumulate):
        old = model.get(addr, [0] * lanes)
        model[addr] = [wrap32(o + r) if accumulate else r for o, r in zip(old, row)]

    async def testbench(ctx):
        # Short bursts of traffic, each drained and checked row by row, so a lost or stale
        # write shows before a later overwrite hides it.
        for episode in range(80):
            # Updates are written UPDATE_WRITE_DELAY cycles after they arrive.
            stages = [None] * Accumulator.UPDATE_WRITE_DELAY
            held = False  # a write accepted last cycle, being written now
            for cycle in range(int(rng.integers(1, 12))):
                # Few addresses, so the same row is updated on consecutive cycles often.
                update = rng.random() < 0.6
                addr = int(rng.integers(0, 4))
                row = [int(v) for v in
                       rng.choice([-(2 ** 31), 2 ** 31 - 1, -1, 1, 12345], lanes)]
                accumulate = bool(rng.integers(0, 2))
                write = rng.random() < 0.5
                write_addr = int(rng.integers(0, 4))
                write_row = [int(v) for v in rng.integers(-1000, 1000, lanes)]
                ctx.set(dut.update_valid, update)
                ctx.set(dut.update, {"addr": addr, "row": row, "accumulate": accumulate})
                ctx.set(dut.write.valid, write)
                ctx.set(dut.write.payload, {"addr": write_addr, "row": write_row})
                write_accepted = write and ctx.get(dut.write.ready)
                # The model applies the update that arrived UPDATE_WRITE_DELAY cycles ago,
                # then this cycle's write.
                writing = stages.pop()
                if writing:
                    apply(*writing)
                # A write is accepted when no update will write in the next cycle, when the
                # write lands: the model may apply it now.
                where = f"episode {episode} cycle {cycle}"
                assert ctx.get(dut.write.ready) == (stages[-1] is None), where
                assert ctx.get(dut.busy) == (held or any(stage is not None
                                                         for stage in [writing, *stages])), where
                if write_accepted:
                    model[write_addr] = write_row
                held = write_accepted
                stages.insert(0, (addr, row, accumulate) if update else None)
                await ctx.tick()
            ctx.set(dut.update_valid, 0)
            ctx.set(dut.write.valid, 0)
            for stage in reversed(stages):
                if stage:
                    apply(*stage)
                await ctx.tick()
            await ctx.tick()
            assert not ctx.get(dut.busy)
            for addr, expected in model.items():
                ctx.set(dut.read.addr, addr)
                await ctx.tick().repeat(ACCUMULATOR_READ_LATENCY)
                assert [ctx.get(dut.read.data[lane]) for lane in range(lanes)] == expected, \
                    f"episode {episode} row {addr}"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
