"""A small systolic array in Amaranth's simulator: tiles back to back against numpy."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.systolic_array import SystolicArray
from sw_runtime.golden import matmul_int8


def schedule_tiles(n, tiles):
    """Per cycle inputs for tiles [(W, A)], each starting as early as the contract allows."""
    cycles = []
    for weights, acts in tiles:
        slot = max(len(acts), n)
        for c in range(slot):
            cycles.append(dict(
                act=acts[c] if c < len(acts) else None,
                first=c == 0 and len(acts) > 0,
                weight=(c, weights[c]) if c < n else None))
    return cycles


@pytest.mark.parametrize("n, lut_rows", [(2, 0), (3, 0), (4, 0), (4, 2)])
def test_array_runs_tiles_back_to_back(n, lut_rows):
    seed = 100 + n
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    config = NpuConfig(n=n, lut_multiplier_rows=lut_rows)
    tiles = []
    for rows in [1, n - 1, n, n + 3, 1, 1, 2 * n, 5]:
        weights = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
        acts = rng.integers(-128, 128, size=(rows, n), dtype=np.int8)
        acts[0, 0] = -128  # the extremes show up in every tile
        weights[0, :] = -128
        tiles.append((weights, acts))
    expected = np.concatenate([matmul_int8(a, w) for w, a in tiles])
    inputs = schedule_tiles(n, tiles)
    dut = SystolicArray(config)
    results = []

    async def testbench(ctx):
        valid_at = {}
        for cycle in range(len(inputs) + config.array_latency + 1):
            step = inputs[cycle] if cycle < len(inputs) else dict(act=None, first=False,
                                                                  weight=None)
            ctx.set(dut.act_row, [int(v) for v in step["act"]] if step["act"] is not None
                    else [0] * n)
            ctx.set(dut.act_first, step["first"])
            ctx.set(dut.weight_row_load, step["weight"] is not None)
            if step["weight"] is not None:
                ctx.set(dut.weight_row_index, step["weight"][0])
                ctx.set(dut.weight_row, [int(v) for v in step["weight"][1]])
            if step["act"] is not None:
                valid_at[cycle + config.array_latency] = True
            if valid_at.get(cycle):
                results.append([ctx.get(dut.result_row[j]) for j in range(n)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert np.array_equal(np.array(results, dtype=np.int64), expected)
