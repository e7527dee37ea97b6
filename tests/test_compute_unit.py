"""The COMPUTE unit in Amaranth's simulator, beside a model of the core's command queue."""

import numpy as np
from amaranth.sim import Simulator

from rtl.compute_unit import ComputeUnit
from rtl.config import NpuConfig
from rtl.isa import ComputeInstruction, Opcode


def test_commands_reach_a_filling_queue_in_order_and_only_when_it_has_room():
    seed = 5
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    config = NpuConfig(n=4)
    depth = config.command_queue_depth
    dut = ComputeUnit(config)
    instructions = [ComputeInstruction.const({
        "header": {"opcode": Opcode.COMPUTE}, "weight_addr": 4 * i, "act_addr": 8,
        "rows": int(rng.integers(1, 16)), "acc_addr": 16}).as_value().value
        for i in range(60)]
    queued = []  # weight addresses, as the core's queue received them

    async def testbench(ctx):
        ctx.set(dut.load_token_available, 1)
        ctx.set(dut.store_token_available, 1)
        level, sent = 0, 0
        for cycle in range(3000):
            # The core drains its queue in bursts, so the queue fills and stays full a while.
            draining = (cycle // 40) % 2 == 1 and rng.random() < 0.6
            ready = level < depth
            ctx.set(dut.command.ready, ready)
            ctx.set(dut.queue.valid, sent < len(instructions))
            if sent < len(instructions):
                ctx.set(dut.queue.payload, {"instruction": instructions[sent], "index": sent})
            await ctx.delay(1e-9)
            assert not ctx.get(dut.fault_valid), f"cycle {cycle}: fault"
            valid = ctx.get(dut.command.valid)
            # The unit offers on a registered view of the room: it must never offer into a
            # full queue (a command would be lost, and its tokens taken).
            assert not (valid and not ready), f"cycle {cycle}: command offered to a full queue"
            if ctx.get(dut.queue.valid) and ctx.get(dut.queue.ready):
                sent += 1
            if valid and ready:
                queued.append(ctx.get(dut.command.payload.weight_addr))
            level += (valid and ready) - (draining and level > 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert queued == [4 * i for i in range(len(instructions))]
