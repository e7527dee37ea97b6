"""cocotb tests of the compute core against the numpy golden model.

Configuration comes from ``NPU_CONFIG`` and the seed from ``NPU_SEED`` (both set by
``sim.build.run_cocotb``; the seed is printed by every test and settable with ``NPU_SEED`` in
``make test`` and ``make sim``); the number of random cases from ``NPU_CASES``.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from rtl.accumulator import (ACCUMULATOR_READ_LATENCY, accumulator_row_layout,
                             accumulator_write_layout)
from rtl.compute_controller import compute_command_layout
from rtl.scratchpad import scratchpad_row_layout
from sim.build import CLOCK_PERIOD_NS, config_from_env, seeded_rng
from sw_runtime.golden import matmul_int8


class ComputeCoreTB:
    """Drives the compute core's ports; every transfer goes through the real ports."""

    def __init__(self, dut):
        self.dut = dut
        self.config = config_from_env(os.environ["NPU_CONFIG"])
        self.n = self.config.n
        self.spad_row = scratchpad_row_layout(self.config)
        self.acc_row = accumulator_row_layout(self.config)
        self.acc_write = accumulator_write_layout(self.config)
        self.command = compute_command_layout(self.config)
        self.log = dut._log

    async def cycle_reset(self):
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        dut = self.dut
        for signal in (dut.spad_write__en, dut.acc_write__valid, dut.command__valid):
            signal.value = 0
        dut.acc_read__en.value = 1
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def write_scratchpad(self, addr, rows):
        dut = self.dut
        dut.spad_write__en.value = 1
        for offset, row in enumerate(rows):
            dut.spad_write__addr.value = (addr + offset) % self.config.scratchpad_depth
            dut.spad_write__data.value = self.spad_row.const([int(v) for v in row]).as_bits()
            await RisingEdge(dut.clk)
        dut.spad_write__en.value = 0

    async def write_accumulator(self, addr, rows):
        dut = self.dut
        for offset, row in enumerate(rows):
            dut.acc_write__payload.value = self.acc_write.const({
                "addr": (addr + offset) % self.config.accumulator_depth,
                "row": [int(v) for v in row]}).as_bits()
            dut.acc_write__valid.value = 1
            await self._wait_ready(dut.acc_write__ready)
        dut.acc_write__valid.value = 0

    async def read_accumulator(self, addr, count):
        dut = self.dut
        rows = []
        # One address per cycle; row i is on the data ACCUMULATOR_READ_LATENCY edges after
        # its address.
        depth = self.config.accumulator_depth
        dut.acc_read__addr.value = addr % depth
        for cycle in range(count + ACCUMULATOR_READ_LATENCY - 1):
            await RisingEdge(dut.clk)
            dut.acc_read__addr.value = (addr + min(cycle + 1, count - 1)) % depth
            if cycle + 1 >= ACCUMULATOR_READ_LATENCY:
                await ReadOnly()
                row = self.acc_row.from_bits(int(dut.acc_read__data.value))
                rows.append([row[lane] for lane in range(self.n)])
        await RisingEdge(dut.clk)
        return np.array(rows, dtype=np.int64).astype(np.int32)

    async def _wait_ready(self, ready, limit=100_000):
        for _ in range(limit):
            await ReadOnly()
            accepted = bool(ready.value)
            await RisingEdge(self.dut.clk)
            if accepted:
                return
        raise TimeoutError(f"{ready._name} stayed low for {limit} cycles")

    async def push_commands(self, commands):
        """Queue commands as fast as the core takes them."""
        dut = self.dut
        for command in commands:
            dut.command__payload.value = self.command.const(command).as_bits()
            dut.command__valid.value = 1
            await self._wait_ready(dut.command__ready)
        dut.command__valid.value = 0

    async def wait_idle(self, limit):
        """Wait until nothing is queued, running or in flight; fail after ``limit`` cycles."""
        waited = 0
        await ClockCycles(self.dut.clk, 2)
        while self.dut.busy.value:
            if waited > limit:
                raise TimeoutError(f"compute core still busy after {limit} cycles")
            await ClockCycles(self.dut.clk, 8)
            waited += 8

    def counters(self):
        return int(self.dut.busy_cycles.value), int(self.dut.array_active_cycles.value)




def random_int8(rng, shape):
    """Uniform int8 values, with whole rows or columns at the extremes now and then."""
    values = rng.integers(-128, 128, size=shape, dtype=np.int8)
    style = rng.integers(0, 6)
    if style == 0:
        values[:] = rng.choice([-128, 127])
    elif style == 1:
        values[:] = rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
    return values


def random_rows(rng, n):
    """M for one case: 1 often, around N, and long runs."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return 1
    if kind == 1:
        return int(rng.integers(1, n + 1))
    if kind == 2:
        return int(rng.integers(n, 3 * n + 1))
    return int(rng.integers(1, 8 * n + 1))


class Case:
    """C = bias + A @ W for A (M x K), W (K x cols), run as K/N x cols/N compute commands.

    K and cols are multiples of N: padding other shapes is the compiler's job. Each column
    tile is a chain of commands over the K tiles, the first overwriting (or adding to a
    preloaded bias) and the rest accumulating; chains of different column tiles are
    interleaved at random.
    """

    def __init__(self, rng, n):
        self.n = n
        self.m = random_rows(rng, n)
        self.k_tiles = int(rng.integers(1, 5))
        self.col_tiles = int(rng.integers(1, 3))
        self.a = random_int8(rng, (self.m, self.k_tiles * n))
        self.w = random_int8(rng, (self.k_tiles * n, self.col_tiles * n))
        self.bias = None
        if rng.random() < 0.3:
            self.bias = rng.integers(-(2 ** 31), 2 ** 31, size=(self.m, self.col_tiles * n),
                                     dtype=np.int64).astype(np.int32)
        self.order = self._interleave(rng)

    def _interleave(self, rng):
        remaining = {c: list(range(self.k_tiles)) for c in range(self.col_tiles)}
        order = []
        while remaining:
            column = int(rng.choice(list(remaining)))
            order.append((column, remaining[column].pop(0)))
            if not remaining[column]:
                del remaining[column]
        return order

    def expected(self):
        product = matmul_int8(self.a, self.w).astype(np.int64)
        if self.bias is not None:
            product += self.bias
        return product.astype(np.uint64).astype(np.uint32).view(np.int32)


async def run_case(tb, case, spad_base=0, acc_base=0):
    n = tb.n
    # Scratchpad layout: K tiles of A (M rows each), then weight tiles, (k, c) at N rows each.
    act_addr = {k: spad_base + k * case.m for k in range(case.k_tiles)}
    weight_base = spad_base + case.k_tiles * case.m
    weight_addr = {(k, c): weight_base + (k * case.col_tiles + c) * n
                   for k in range(case.k_tiles) for c in range(case.col_tiles)}
    for k in range(case.k_tiles):
        await tb.write_scratchpad(act_addr[k], case.a[:, k * n:(k + 1) * n])
        for c in range(case.col_tiles):
            await tb.write_scratchpad(weight_addr[k, c],
                                      case.w[k * n:(k + 1) * n, c * n:(c + 1) * n])
    # Accumulator layout: column tile c in rows acc_base + c * M ...
    acc_addr = {c: acc_base + c * case.m for c in range(case.col_tiles)}
    if case.bias is not None:
        for c in range(case.col_tiles):
            await tb.write_accumulator(acc_addr[c], case.bias[:, c * n:(c + 1) * n])
    commands = [dict(weight_addr=weight_addr[k, c], act_addr=act_addr[k], rows=case.m,
                     acc_addr=acc_addr[c], accumulate=int(k > 0 or case.bias is not None))
                for c, k in case.order]
    await tb.push_commands(commands)
    await tb.wait_idle(limit=len(commands) * (case.m + 4 * n) + 1000)
    result = np.concatenate([await tb.read_accumulator(acc_addr[c], case.m)
                             for c in range(case.col_tiles)], axis=1)
    return result


@cocotb.test()
async def test_random_commands(dut):
    """Random shapes, chained K tiles, bias, extremes: bit-exact against the golden model."""
    tb = ComputeCoreTB(dut)
    rng = seeded_rng("test_random_commands", cocotb.log)
    await tb.cycle_reset()
    cases = int(os.environ.get("NPU_CASES", "20"))
    for index in range(cases):
        case = Case(rng, tb.n)
        result = await run_case(tb, case)
        expected = case.expected()
        if not np.array_equal(result, expected):
            bad = np.argwhere(result != expected)[0]
            raise AssertionError(
                f"case {index}: M={case.m} K={case.k_tiles * tb.n} "
                f"cols={case.col_tiles * tb.n} bias={case.bias is not None}: first mismatch "
                f"at {tuple(bad)}: got {result[tuple(bad)]}, expected {expected[tuple(bad)]}")
        tb.log.info(f"case {index}: M={case.m} K={case.k_tiles * tb.n} "
                    f"cols={case.col_tiles * tb.n} commands={len(case.order)} ok")
    tb.log.info(f"{cases} random cases match the golden model")


async def timed_run(tb, rng, rows, commands):
    """Run ``commands`` commands of ``rows`` rows back to back; (busy, active) cycles."""
    n = tb.n
    a = random_int8(rng, (rows, n))
    weights = [random_int8(rng, (n, n)) for _ in range(commands)]
    await tb.write_scratchpad(0, a)
    for index, w in enumerate(weights):
        await tb.write_scratchpad(rows + index * n, w)
    # Commands are queued one per cycle and drained one per slot (>= N cycles): the queue
    # never runs dry, so the measured cycles are the core's own.
    busy_before, active_before = tb.counters()
    await tb.push_commands([dict(weight_addr=rows + i * n, act_addr=0, rows=rows,
                                 acc_addr=0, accumulate=int(i > 0))
                            for i in range(commands)])
    await tb.wait_idle(limit=commands * (rows + 4 * n) + 1000)
    busy_after, active_after = tb.counters()
    expected = sum(matmul_int8(a, w).astype(np.int64) for w in weights)
    result = await tb.read_accumulator(0, rows)
    assert np.array_equal(result, expected.astype(np.uint64).astype(np.uint32).view(np.int32))
    return busy_after - busy_before, active_after - active_before


@cocotb.test()
async def test_back_to_back_throughput(dut):
    """Commands follow each other without a bubble; reports cycles against the ideal M."""
    tb = ComputeCoreTB(dut)
    rng = seeded_rng("test_back_to_back_throughput", cocotb.log)
    await tb.cycle_reset()
    n = tb.n
    runs = 6
    report = {"n": n, "array_latency": tb.config.array_latency, "single": [], "runs": []}
    for rows in sorted({1, n // 2, n, 16, 64, 256}):
        single_busy, single_active = await timed_run(tb, rng, rows, 1)
        busy, active = await timed_run(tb, rng, rows, runs)
        slot = max(rows, n)
        # Every command after the first costs exactly its slot: no bubble between tiles.
        assert busy - single_busy == (runs - 1) * slot, (rows, busy, single_busy)
        assert single_active == rows and active == runs * rows
        report["single"].append({"m": rows, "cycles": single_busy, "ideal": rows,
                                 "utilization": rows / single_busy})
        report["runs"].append({"m": rows, "commands": runs, "cycles": busy,
                               "ideal": runs * rows, "utilization": active / busy})
        tb.log.info(f"M={rows}: one command {single_busy} cycles (ideal {rows}); "
                    f"{runs} back to back {busy} cycles (ideal {runs * rows}, "
                    f"utilization {active / busy:.1%})")
    report_dir = os.environ.get("NPU_REPORT_DIR")
    if report_dir:
        Path(report_dir, "throughput.json").write_text(json.dumps(report, indent=2))
