"""Pipeline helpers in Amaranth's simulator, against a Python queue."""

from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.pipeline import RegisteredInputFifo


@pytest.mark.parametrize("depth", [2, 5, 16])
def test_registered_input_fifo_keeps_every_word_in_order_under_random_traffic(depth):
    seed = 1000 + depth
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = RegisteredInputFifo(width=12, depth=depth)
    words = [int(w) for w in rng.integers(0, 1 << 12, 400)]

    async def testbench(ctx):
        expected = deque()   # written words not yet read, in order (the input register's too)
        held = 0             # words the FIFO holds or has in its input register: the credits
        sent = received = 0
        for cycle in range(4000):
            write = sent < len(words) and held < depth and rng.random() < 0.6
            read = rng.random() < 0.5
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, words[sent] if write else 0)
            ctx.set(dut.r_en, read)
            # The level counts the memory's words: all held but the one in the register.
            assert ctx.get(dut.level) <= depth
            if ctx.get(dut.r_rdy) and read:
                assert ctx.get(dut.r_data) == expected.popleft(), (cycle, received)
                received += 1
                held -= 1
            else:
                assert ctx.get(dut.r_rdy) == (ctx.get(dut.level) != 0)
            if write:
                expected.append(words[sent])
                sent += 1
                held += 1
            await ctx.tick()
            if received == len(words):
                break
        assert received == len(words), f"only {received} of {len(words)} words came out"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_registered_input_fifo_shows_a_word_two_cycles_after_its_write():
    dut = RegisteredInputFifo(width=8, depth=4)

    async def testbench(ctx):
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_data, 0x5A)
        await ctx.tick()
        ctx.set(dut.w_en, 0)
        assert not ctx.get(dut.r_rdy)   # in the input register
        await ctx.tick()
        assert ctx.get(dut.r_rdy) and ctx.get(dut.r_data) == 0x5A and ctx.get(dut.level) == 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
