"""The requantizer in Amaranth's simulator, bit-exact with the golden model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.requantizer import REQUANTIZER_LATENCY, Requantizer
from sw_runtime.golden import (INT32_MAX, INT32_MIN, REQUANT_SHIFT_MAX, REQUANT_SHIFT_MIN,
                               requantize)


def test_requantizer_matches_golden_model():
    seed = 2024
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    n = 4
    dut = Requantizer(NpuConfig(n=n))
    rows = 600
    extremes_acc = np.array([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX], dtype=np.int64)
    acc = rng.integers(INT32_MIN, INT32_MAX, size=(rows, n), endpoint=True, dtype=np.int64)
    # Small values make ties and exact halves common; extremes make saturation common.
    acc[::3] = rng.integers(-40, 40, size=acc[::3].shape)
    acc[::7] = rng.choice(extremes_acc, size=acc[::7].shape)
    acc = acc.astype(np.int32)
    cases = []
    for row in range(rows):
        multiplier = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
        if row % 5 == 0:
            multiplier = rng.choice([INT32_MIN, -1, 0, 1, 2 ** 30, INT32_MAX], size=n)
        shift = rng.integers(REQUANT_SHIFT_MIN, REQUANT_SHIFT_MAX, size=n, endpoint=True)
        if row % 3 == 0:
            shift = rng.choice([REQUANT_SHIFT_MIN, -30, -1, 0, 1, REQUANT_SHIFT_MAX], size=n)
        zero_point = int(rng.integers(-128, 128))
        qmin, qmax = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        expected = requantize(acc[row:row + 1], multiplier, shift, zero_point, qmin, qmax)[0]
        cases.append((multiplier, shift, zero_point, qmin, qmax, expected))
    outputs = []

    async def testbench(ctx):
        for cycle in range(rows + REQUANTIZER_LATENCY):
            if cycle < rows:
                multiplier, shift, zero_point, qmin, qmax, _ = cases[cycle]
                ctx.set(dut.acc_row, [int(v) for v in acc[cycle]])
                ctx.set(dut.params, [{"multiplier": int(multiplier[j]), "shift": int(shift[j]),
                                      "zero_point": zero_point, "qmin": qmin, "qmax": qmax}
                                     for j in range(n)])
            ctx.set(dut.valid_in, cycle < rows)
            await ctx.tick()
            if ctx.get(dut.valid_out):
                outputs.append([ctx.get(dut.result_row[j]) for j in range(n)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(outputs) == rows
    for row, (got, case) in enumerate(zip(outputs, cases)):
        assert got == case[-1].tolist(), (row, acc[row].tolist(), case)
