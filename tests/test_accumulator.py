"""The accumulator's read-modify-write in Amaranth's simulator, beside a dict model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.accumulator import ACCUMULATOR_READ_LATENCY, Accumulator
from rtl.config import NpuConfig


def wrap32(value):
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31


# Cycles from a row from outside being accepted to its write: held, then the write register.
WRITE_DELAY = 2


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
            # Updates are written UPDATE_WRITE_DELAY cycles after they arrive, rows from
            # outside WRITE_DELAY cycles after they are accepted.
            stages = [None] * Accumulator.UPDATE_WRITE_DELAY
            writes = [None] * WRITE_DELAY
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
                # The model applies what the hardware writes this cycle: the update that
                # arrived UPDATE_WRITE_DELAY cycles ago or the row accepted WRITE_DELAY ago.
                writing = stages.pop()
                written = writes.pop()
                assert not (writing and written)
                for done in (writing, written):
                    if done:
                        apply(*done)
                # A row from outside is accepted only when no update is in C, the stage
                # that would write in the cycle the row does.
                where = f"episode {episode} cycle {cycle}"
                in_c = stages[1]
                assert ctx.get(dut.write.ready) == (in_c is None), where
                in_flight = [writing, written, *stages, *writes]
                assert ctx.get(dut.busy) == any(x is not None for x in in_flight), where
                writes.insert(0, (write_addr, write_row, False) if write_accepted else None)
                stages.insert(0, (addr, row, accumulate) if update else None)
                await ctx.tick()
            ctx.set(dut.update_valid, 0)
            ctx.set(dut.write.valid, 0)
            for _ in range(Accumulator.UPDATE_WRITE_DELAY):
                for queue in (stages, writes):
                    done = queue.pop() if queue else None
                    if done:
                        apply(*done)
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
