"""The dependency token counter in Amaranth's simulator, beside a count of tokens."""

import numpy as np
from amaranth.sim import Simulator

from rtl.fetch import TokenCounter


def test_available_never_over_reports_and_catches_up():
    seed = 11
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = TokenCounter()

    async def testbench(ctx):
        tokens = 0  # given and not yet taken, as the producer and consumer see them
        since_take = TokenCounter.INPUT_REGISTERS + 1  # cycles since the last take
        for cycle in range(3000):
            # Bursts of gives and takes, then quiet stretches in which the view must catch up.
            busy = (cycle // 50) % 2 == 0
            give = busy and rng.random() < 0.4
            available = ctx.get(dut.available)
            # A unit never takes within INPUT_REGISTERS cycles after a take (the counter's
            # rule): only there may ``available`` run ahead of the count.
            may_take = since_take > TokenCounter.INPUT_REGISTERS
            if may_take:
                assert not available or tokens > 0, f"cycle {cycle}: available with no token"
            take = busy and may_take and available and rng.random() < 0.7
            ctx.set(dut.give, give)
            ctx.set(dut.take, take)
            await ctx.tick()
            tokens += give - take
            since_take = 1 if take else since_take + 1
            if cycle % 100 == 99:  # at the end of a quiet stretch
                assert ctx.get(dut.available) == (tokens > 0), f"cycle {cycle}"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
