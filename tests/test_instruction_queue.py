"""The queue between dispatch and a unit, in Amaranth's simulator, against a Python deque."""

from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.fetch import InstructionQueue


@pytest.mark.parametrize("depth", [2, 3, 8])
def test_entries_leave_in_order_and_the_queue_holds_exactly_its_depth(depth):
    seed = 11 + depth
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = InstructionQueue(depth)
    model = deque()      # entries written and not yet taken
    taken = []
    written = 0
    full_seen = 0

    async def testbench(ctx):
        nonlocal written, full_seen
        for cycle in range(4000):
            # Phases of fast writing and of fast taking, so the queue both fills and empties.
            writing = rng.random() < (0.8 if (cycle // 100) % 2 == 0 else 0.2)
            taking = rng.random() < (0.3 if (cycle // 100) % 2 == 0 else 0.9)
            ctx.set(dut.w.valid, writing)
            ctx.set(dut.w.payload, {"instruction": written, "index": written})
            ctx.set(dut.r.ready, taking)
            await ctx.delay(1e-9)
            w_ready, r_valid = ctx.get(dut.w.ready), ctx.get(dut.r.valid)
            assert ctx.get(dut.busy) == bool(model), f"cycle {cycle}: busy with {len(model)} held"
            # Never more than ``depth`` held (it may refuse for a cycle while the head
            # register refills).
            assert not (w_ready and len(model) >= depth), f"cycle {cycle}: overfilled"
            full_seen += len(model) == depth
            if r_valid:
                assert model, f"cycle {cycle}: valid while empty"
                assert ctx.get(dut.r.payload.index) == model[0], f"cycle {cycle}: out of order"
                if taking:
                    taken.append(model.popleft())
            if writing and w_ready:
                model.append(written)
                written += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert written > 500 and taken == list(range(len(taken))) and len(taken) > 500
    assert full_seen > 0, "the queue never filled: the capacity check did not run"


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_a_queue_of_one_is_refused_by_name():
    with pytest.raises(ValueError, match="2 entries or more"):
        InstructionQueue(1)
