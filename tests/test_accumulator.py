"""The accumulator's read-modify-write in Amaranth's simulator, beside a dict model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.accumulator import Accumulator
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

    async def testbench(ctx):
        pending = []  # writes land one cycle after an update (two-stage RMW)
        for cycle in range(600):
            # Few addresses, so the same row is updated on consecutive cycles often.
            update = rng.random() < 0.6
            addr = int(rng.integers(0, 4))
            row = [int(v) for v in rng.choice([-(2 ** 31), 2 ** 31 - 1, -1, 1, 12345], lanes)]
            accumulate = bool(rng.integers(0, 2))
            write = rng.random() < 0.5
            write_addr = int(rng.integers(0, 4))
            write_row = [int(v) for v in rng.integers(-1000, 1000, lanes)]
            ctx.set(dut.update_valid, update)
            ctx.set(dut.update, {"addr": addr, "row": row, "accumulate": accumulate})
            ctx.set(dut.write.valid, write)
            ctx.set(dut.write.payload, {"addr": write_addr, "row": write_row})
            write_accepted = write and ctx.get(dut.write.ready)
            # The model applies the update registered last cycle, then this cycle's write.
            for p_addr, p_row, p_acc in pending:
                old = model.get(p_addr, [0] * lanes)
                model[p_addr] = [wrap32(o + r) if p_acc else r for o, r in zip(old, p_row)]
            assert ctx.get(dut.write.ready) == (not pending), f"cycle {cycle}"
            if write_accepted:
                model[write_addr] = write_row
            pending = [(addr, row, accumulate)] if update else []
            await ctx.tick()
        ctx.set(dut.update_valid, 0)
        ctx.set(dut.write.valid, 0)
        for p_addr, p_row, p_acc in pending:
            old = model.get(p_addr, [0] * lanes)
            model[p_addr] = [wrap32(o + r) if p_acc else r for o, r in zip(old, p_row)]
        await ctx.tick()
        for addr, expected in model.items():
            ctx.set(dut.read.addr, addr)
            await ctx.tick()
            assert [ctx.get(dut.read.data[lane]) for lane in range(lanes)] == expected, addr

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
