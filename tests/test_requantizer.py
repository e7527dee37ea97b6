"""The requantizer in Amaranth's simulator, bit-exact with the golden model."""

import numpy as np
from amaranth.sim import Simulator

from rtl.config import NpuConfig
from rtl.requantizer import REQUANTIZER_LATENCY, Requantizer
from sw_runtime.golden import (INT32_MAX, INT32_MIN, REQUANT_SHIFT_MAX, REQUANT_SHIFT_MIN,
                               requantize)

N = 4


def run_requantizer(acc, cases):
    """Stream ``acc`` rows with their parameters through the RTL, a row per cycle while the
    parameters stay the same; where they change, the lanes drain first (they read the
    parameters at every stage, which hold still for a STORE). Check every output row
    against the golden model's."""
    dut = Requantizer(NpuConfig(n=N))
    rows = len(cases)
    outputs = []

    def params_of(case):
        multiplier, shift, zero_point, qmin, qmax, _ = case
        return [{"multiplier": int(multiplier[j]), "shift": int(shift[j]),
                 "zero_point": zero_point, "qmin": qmin, "qmax": qmax} for j in range(N)]

    async def testbench(ctx):
        async def tick():
            await ctx.tick()
            if ctx.get(dut.valid_out):
                outputs.append([ctx.get(dut.result_row[j]) for j in range(N)])

        async def drain():
            ctx.set(dut.valid_in, 0)
            for _ in range(REQUANTIZER_LATENCY):
                await tick()

        held = None
        for row in range(rows):
            params = params_of(cases[row])
            if params != held:
                await drain()
                ctx.set(dut.params, params)
                held = params
            ctx.set(dut.acc_row, [int(v) for v in acc[row]])
            ctx.set(dut.valid_in, 1)
            await tick()
        await drain()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(outputs) == rows
    for row, (got, case) in enumerate(zip(outputs, cases)):
        assert got == case[-1].tolist(), (row, acc[row].tolist(), case)


def case(acc_row, multiplier, shift, zero_point=0, qmin=-128, qmax=127):
    expected = requantize(acc_row[None, :], multiplier, shift, zero_point, qmin, qmax)[0]
    return (multiplier, shift, zero_point, qmin, qmax, expected)


def test_requantizer_matches_golden_model():
    seed = 2024
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = 1200
    extremes_acc = np.array([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX], dtype=np.int64)
    acc = rng.integers(INT32_MIN, INT32_MAX, size=(rows, N), endpoint=True, dtype=np.int64)
    # Small values make ties and exact halves common; extremes make saturation common.
    acc[::3] = rng.integers(-40, 40, size=acc[::3].shape)
    acc[::7] = rng.choice(extremes_acc, size=acc[::7].shape)
    acc = acc.astype(np.int32)
    # Groups of rows share their parameters (a STORE's), so rows also follow each other at
    # a row per cycle; each group has new ones.
    group_rows = 4
    cases = []
    for row in range(rows):
        group = row // group_rows
        if row % group_rows == 0:
            multiplier = rng.integers(INT32_MIN, INT32_MAX, size=N, endpoint=True)
            if group % 5 == 0:
                multiplier = rng.choice([INT32_MIN, -1, 0, 1, 2 ** 30, INT32_MAX], size=N)
            shift = rng.integers(REQUANT_SHIFT_MIN, REQUANT_SHIFT_MAX, size=N, endpoint=True)
            if group % 3 == 0:
                shift = rng.choice([REQUANT_SHIFT_MIN, -30, -1, 0, 1, REQUANT_SHIFT_MAX], size=N)
            zero_point = int(rng.integers(-128, 128))
            qmin, qmax = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        cases.append(case(acc[row], multiplier, shift, zero_point, qmin, qmax))
    run_requantizer(acc, cases)


def test_requantizer_rounds_exact_halves_and_near_halves():
    """Products that are exact halves, or a half plus one bit anywhere below it: rounding
    must see a sticky bit however far below the half bit it sits (the RTL finds it in two
    steps, whole bytes then bits)."""
    seed = 77
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = 400
    acc = np.zeros((rows, N), dtype=np.int64)
    multiplier = np.zeros((rows, N), dtype=np.int64)
    shift = np.zeros((rows, N), dtype=np.int64)
    for row in range(rows):
        for lane in range(N):
            # product = acc * 2**k; the half bit of s = 31 + shift sits at acc bit `half`.
            k = int(rng.integers(0, 31))
            half = int(rng.integers(max(0, 1 - k), min(29, 61 - k) + 1))
            # A quotient small enough to survive the int8 clamp, and acc within int32.
            limit = min(64, 1 << (29 - half))
            quotient = int(rng.integers(-limit, limit))
            value = (quotient << (half + 1)) | (1 << half)
            if half > 0 and rng.random() < 0.6:
                value |= 1 << int(rng.integers(0, half))   # the sticky bit
            acc[row, lane] = value
            multiplier[row, lane] = 1 << k
            shift[row, lane] = half + k + 1 - 31
    assert acc.min() >= INT32_MIN and acc.max() <= INT32_MAX
    assert shift.min() >= REQUANT_SHIFT_MIN and shift.max() <= REQUANT_SHIFT_MAX
    acc = acc.astype(np.int32)
    cases = [case(acc[row], multiplier[row], shift[row]) for row in range(rows)]
    run_requantizer(acc, cases)


def test_requantizer_clamps_at_the_limits_and_the_int10_edges():
    """Rounded values just around the moved limits (qmin - zero_point, qmax - zero_point) and
    the ends of int10, reached by rounding up and by rounding down: the RTL compares the floor
    with the limits before it rounds, and the low bits only where the value lies within
    int10."""
    seed = 5150
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = 500
    # multiplier 2**30, shift 0: r = round_half_even(acc / 2), so acc = 2t + 1 is a tie
    # next to t and t + 1.
    multiplier = np.full(N, 1 << 30)
    shift = np.zeros(N, dtype=np.int64)
    acc = np.zeros((rows, N), dtype=np.int64)
    cases = []
    for row in range(rows):
        zero_point = int(rng.integers(-128, 128))
        qmin, qmax = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        targets = [qmin - zero_point, qmax - zero_point, -512, 511, -513, 512]
        for lane in range(N):
            target = int(rng.choice(targets))
            acc[row, lane] = 2 * target + int(rng.integers(-4, 5))
        cases.append(case(acc[row].astype(np.int32), multiplier, shift, zero_point, qmin,
                          qmax))
    run_requantizer(acc.astype(np.int32), cases)
