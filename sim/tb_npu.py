"""System tests of the NPU top: programs from DRAM, registers over AXI4-Lite, golden results.

DRAM is cocotbext-axi's AxiRam and the host an AxiLiteMaster; every AXI channel pauses at
random in most cases. Programs are GEMM tiles written with the assembler: bias loaded into
the accumulator (a stride-0 LOAD repeats one row), per-channel requantization from the
quant table, K tiles double-buffered in the scratchpad with dependency tokens. Results are
compared with the numpy golden model, and guard bytes around every output must survive.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from rtl.isa import QuantParams
from sim.axi_models import Dram, set_pauses
from sim.build import CLOCK_PERIOD_NS, config_from_env, seeded_rng
from sw_runtime.assembler import compute, encode_program, finish, load, store
from sw_runtime.golden import matmul_int8, requantize
from sw_runtime.registers import REGISTERS, encode_fields, field_value

GUARD = 0x5A
PROGRAM_BASE = 0x0000_1000


class NpuTB:
    def __init__(self, dut, dram_size=2 ** 32):
        self.dut = dut
        self.config = config_from_env(os.environ["NPU_CONFIG"])
        self.n = self.config.n
        self.log = dut._log
        self.ram = Dram(dut, size=dram_size)
        self.host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                  dut.clk, dut.rst)
        for interface in (self.host.read_if, self.host.write_if):
            interface.log.setLevel(logging.WARNING)

    def set_backpressure(self, rng, enabled):
        """Random pauses on every channel of both buses (DRAM and registers)."""
        host = [self.host.write_if.aw_channel, self.host.write_if.w_channel,
                self.host.write_if.b_channel, self.host.read_if.ar_channel,
                self.host.read_if.r_channel]
        set_pauses(self.ram.channels + host, rng, enabled, probability=0.3)

    async def cycle_reset(self):
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def read_register(self, name):
        word = await self.host.read_dword(REGISTERS[name]["offset"])
        return {field: field_value(name, field, word) for field in REGISTERS[name]["fields"]}

    async def write_register(self, name, **fields):
        await self.host.write_dword(REGISTERS[name]["offset"], encode_fields(name, **fields))

    async def run(self, program, limit=2_000_000):
        """Run a program; returns STATUS once done or stopped. Fails after ``limit`` cycles."""
        blob = encode_program(program)
        self.ram.write(PROGRAM_BASE, blob)
        await self.write_register("INSN_BASE", addr=PROGRAM_BASE)
        await self.write_register("INSN_COUNT", count=len(program))
        await self.write_register("CTRL", start=1, irq_enable=1)
        waited = 0
        while True:
            await ClockCycles(self.dut.clk, 64)
            waited += 64
            status = await self.read_register("STATUS")
            if not status["busy"]:
                return status
            if waited > limit:
                raise TimeoutError(f"program still busy after {limit} cycles")

    async def counters(self):
        names = [name for name in REGISTERS if name.startswith("PERF_")]
        return {name: (await self.read_register(name))["count"] for name in names}

    async def soft_reset(self):
        await self.write_register("CTRL", soft_reset=1)
        for _ in range(1000):
            await ClockCycles(self.dut.clk, 8)
            status = await self.read_register("STATUS")
            if not status["busy"]:
                assert not status["done"] and not status["error"], status
                return
        raise TimeoutError("soft reset did not finish")




@dataclass
class Gemm:
    """C = requant(A @ W + bias) (or the raw int32 sum) with every DRAM placement chosen."""
    m: int
    k_tiles: int
    col_tiles: int
    a: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int
    raw: bool
    a_tiled: bool
    a_base: int
    a_pitch: int
    w_base: int
    w_pitch: int
    c_base: int
    c_pitch: int
    bias_base: int
    quant_base: int

    def expected(self):
        acc = (matmul_int8(self.a, self.w).astype(np.int64) + self.bias).astype(
            np.uint64).astype(np.uint32).view(np.int32)
        if self.raw:
            return acc
        return requantize(acc, self.multiplier, self.shift, self.zero_point, self.qmin,
                          self.qmax)


def random_gemm(rng, n, *, m=None, k_tiles=None, col_tiles=None, raw=None):
    m = m or int(rng.choice([1, 2, n - 1, n, n + 1, int(rng.integers(1, 48))]))
    k_tiles = k_tiles or int(rng.integers(1, 6))
    col_tiles = col_tiles or int(rng.integers(1, 4))
    k, cols = k_tiles * n, col_tiles * n
    raw = bool(rng.random() < 0.2) if raw is None else raw

    def int8(shape):
        values = rng.integers(-128, 128, size=shape, dtype=np.int8)
        if rng.random() < 0.15:
            values[:] = rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
        return values

    qmin, qmax = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    # Addresses: separate regions, random alignment and padding.
    def region(index):
        return 0x0010_0000 * (index + 1) + int(rng.integers(0, 4096))

    return Gemm(
        m=m, k_tiles=k_tiles, col_tiles=col_tiles, a=int8((m, k)), w=int8((k, cols)),
        bias=rng.integers(-(2 ** 20), 2 ** 20, size=cols).astype(np.int64),
        multiplier=rng.integers(2 ** 28, 2 ** 31, size=cols),
        shift=rng.integers(0, 12, size=cols), zero_point=int(rng.integers(-20, 20)),
        qmin=qmin, qmax=qmax, raw=raw, a_tiled=bool(rng.random() < 0.5),
        a_base=region(0), a_pitch=k + int(rng.integers(0, 9)),
        w_base=region(1), w_pitch=cols + int(rng.integers(0, 9)),
        c_base=region(2), c_pitch=(4 if raw else 1) * cols + int(rng.integers(0, 9)),
        bias_base=region(3), quant_base=region(4))


def place_gemm(tb, gemm):
    """Write the GEMM's operands to DRAM and guard bytes around its output."""
    n = tb.n
    if gemm.a_tiled:
        for t in range(gemm.k_tiles):
            tile = np.ascontiguousarray(gemm.a[:, t * n:(t + 1) * n])
            tb.ram.write(gemm.a_base + t * gemm.m * n, tile.tobytes())
    else:
        for row in range(gemm.m):
            tb.ram.write(gemm.a_base + row * gemm.a_pitch, gemm.a[row].tobytes())
    for row in range(gemm.w.shape[0]):
        tb.ram.write(gemm.w_base + row * gemm.w_pitch, gemm.w[row].tobytes())
    tb.ram.write(gemm.bias_base, gemm.bias.astype(np.int32).tobytes())
    quant = b"".join(QuantParams.const({
        "multiplier": int(gemm.multiplier[c]), "shift": int(gemm.shift[c]),
        "zero_point": gemm.zero_point, "qmin": gemm.qmin, "qmax": gemm.qmax,
    }).as_bits().to_bytes(8, "little") for c in range(gemm.col_tiles * n))
    tb.ram.write(gemm.quant_base, quant)
    span = (gemm.m - 1) * gemm.c_pitch + (4 if gemm.raw else 1) * gemm.col_tiles * n
    tb.ram.write(gemm.c_base - 64, bytes([GUARD]) * (span + 128))


def gemm_program(tb, gemm):
    """The GEMM as a program: per column tile, a double-buffered loop over the K tiles.

    Scratchpad: buffer b holds A's tile in rows [b*(M+N), b*(M+N)+M) and W's tile after it.
    Tokens: LOAD t pushes to COMPUTE t; COMPUTE t frees its buffer for LOAD t+2; the last
    COMPUTE of a tile hands the accumulator to STORE; between column tiles a zero-row
    COMPUTE relays STORE's "accumulator free" to the LOAD of the next bias.
    """
    n, m = tb.n, gemm.m
    program = []
    buffer_rows = m + n
    row_bytes_out = (4 if gemm.raw else 1) * n
    for c in range(gemm.col_tiles):
        if c > 0:
            program.append(compute(rows=0, deps={"pop_next", "push_prev"}))
        program.append(load(target="QUANT", sram_addr=0, dram_addr=gemm.quant_base + c * 8 * n,
                            bytes_per_row=8 * n, rows=1, stride=0,
                            deps={"pop_next"} if c > 0 else ()))
        program.append(load(target="ACCUMULATOR", sram_addr=0,
                            dram_addr=gemm.bias_base + c * 4 * n, bytes_per_row=4 * n,
                            rows=m, stride=0))
        for t in range(gemm.k_tiles):
            base = (t % 2) * buffer_rows
            if gemm.a_tiled:
                a_load = dict(dram_addr=gemm.a_base + t * m * n, bytes_per_row=m * n, rows=1,
                              stride=0)
            else:
                a_load = dict(dram_addr=gemm.a_base + t * n, bytes_per_row=n, rows=m,
                              stride=gemm.a_pitch)
            program.append(load(target="SCRATCHPAD", sram_addr=base, **a_load,
                                deps={"pop_next"} if t >= 2 else ()))
            program.append(load(target="SCRATCHPAD", sram_addr=base + m,
                                dram_addr=gemm.w_base + t * n * gemm.w_pitch + c * n,
                                bytes_per_row=n, rows=n, stride=gemm.w_pitch,
                                deps={"push_next"}))
            deps = {"pop_prev"}
            if t + 2 < gemm.k_tiles:
                deps.add("push_prev")
            if t == gemm.k_tiles - 1:
                deps.add("push_next")
            program.append(compute(weight_addr=base + m, act_addr=base, rows=m, acc_addr=0,
                                   accumulate=1, deps=deps))
        program.append(store(mode="RAW" if gemm.raw else "REQUANT", acc_addr=0, quant_addr=0,
                             dram_addr=gemm.c_base + c * row_bytes_out,
                             bytes_per_row=row_bytes_out, rows=m, stride=gemm.c_pitch,
                             deps={"pop_prev", "push_prev"} if c + 1 < gemm.col_tiles
                             else {"pop_prev"}))
    program.append(finish())
    return program


def check_gemm(tb, gemm, label):
    n = tb.n
    expected = gemm.expected()
    element = 4 if gemm.raw else 1
    dtype = np.int32 if gemm.raw else np.int8
    width = gemm.col_tiles * n
    span = (gemm.m - 1) * gemm.c_pitch + element * width
    window = bytearray([GUARD]) * (span + 128)
    for row in range(gemm.m):
        start = 64 + row * gemm.c_pitch
        window[start:start + element * width] = expected[row].astype(dtype).tobytes()
    got = tb.ram.read(gemm.c_base - 64, span + 128)
    if got != window:
        bad = next(i for i in range(len(got)) if got[i] != window[i])
        offset = bad - 64
        raise AssertionError(f"{label}: byte {offset} from the output start differs "
                             f"(got {got[bad]:#04x}, expected {window[bad]:#04x}); M={gemm.m} "
                             f"K={gemm.k_tiles * n} N={width} raw={gemm.raw}")


async def expect_done(tb, program, label):
    status = await tb.run(program)
    if not status["done"] or status["error"]:
        error = await tb.read_register("ERROR_CODE")
        index = await tb.read_register("ERROR_INDEX")
        raise AssertionError(f"{label}: status {status}, error {error['code']} at "
                             f"instruction {index['index']}")


@cocotb.test()
async def test_registers_describe_the_hardware(dut):
    """ID, version and CONFIG read back what the hardware was built with."""
    tb = NpuTB(dut)
    await tb.cycle_reset()
    assert (await tb.read_register("ID"))["magic"] == 0x4E505530
    array = await tb.read_register("CONFIG_ARRAY")
    assert array["n"] == tb.config.n and array["bus_bytes"] == tb.config.bus_bytes
    assert (await tb.read_register("CONFIG_SCRATCHPAD"))["rows"] == tb.config.scratchpad_depth
    assert (await tb.read_register("CONFIG_ACCUMULATOR"))["rows"] == tb.config.accumulator_depth
    assert (await tb.read_register("CONFIG_QUANT"))["rows"] == tb.config.quant_table_depth
    status = await tb.read_register("STATUS")
    assert status == {"busy": 0, "done": 0, "error": 0}


@cocotb.test()
async def test_random_gemms(dut):
    """Random GEMMs (shapes, strides, layouts, requant or raw) with backpressure."""
    tb = NpuTB(dut)
    rng = seeded_rng("test_random_gemms", cocotb.log)
    await tb.cycle_reset()
    cases = int(os.environ.get("NPU_CASES", "8"))
    for index in range(cases):
        tb.set_backpressure(rng, enabled=rng.random() < 0.75)
        gemm = random_gemm(rng, tb.n)
        place_gemm(tb, gemm)
        program = gemm_program(tb, gemm)
        await expect_done(tb, program, f"case {index}")
        assert dut.irq.value == 1, "done with irq_enable must raise the interrupt"
        check_gemm(tb, gemm, f"case {index}")
        tb.log.info(f"case {index}: M={gemm.m} K={gemm.k_tiles * tb.n} "
                    f"N={gemm.col_tiles * tb.n} raw={gemm.raw} tiled_a={gemm.a_tiled}: "
                    f"{len(program)} instructions exact")


@cocotb.test()
async def test_double_buffering_overlaps_load_and_compute(dut):
    """A long K loop: the perf counters show the array busy while the DMA loads."""
    tb = NpuTB(dut)
    rng = seeded_rng("test_double_buffering_overlaps_load_and_compute", cocotb.log)
    await tb.cycle_reset()
    report = {}
    for pausing in (False, True):
        tb.set_backpressure(rng, enabled=pausing)
        gemm = random_gemm(rng, tb.n, m=128, k_tiles=12, col_tiles=1, raw=False)
        gemm.a_tiled = True
        place_gemm(tb, gemm)
        await expect_done(tb, gemm_program(tb, gemm), "double-buffered GEMM")
        check_gemm(tb, gemm, "double-buffered GEMM")
        counters = await tb.counters()
        cycles = counters["PERF_CYCLES"]
        active = counters["PERF_ARRAY_ACTIVE"]
        loading = counters["PERF_LOAD_BUSY"]
        assert active == gemm.k_tiles * gemm.m, counters
        # Serialised, load and compute cycles would add up to at most the total.
        assert active + loading > cycles, f"no overlap: {counters}"
        label = "backpressure" if pausing else "no backpressure"
        report[label] = counters
        tb.log.info(f"{label}: {cycles} cycles, array active {active} "
                    f"({active / cycles:.1%}), LOAD busy {loading}, bytes read "
                    f"{counters['PERF_BYTES_READ']} ({counters['PERF_BYTES_READ'] / loading:.2f} "
                    f"bytes per LOAD-busy cycle, bus {tb.config.bus_bytes})")
    report_dir = os.environ.get("NPU_REPORT_DIR")
    if report_dir:
        import json
        Path(report_dir, "npu_overlap.json").write_text(json.dumps(report, indent=2))


@cocotb.test()
async def test_faults_stop_report_and_recover(dut):
    """Each fault stops the NPU with its code and index, writes nothing outside the transfers
    it was given, and a soft reset makes the next program run exactly."""
    tb = NpuTB(dut)
    rng = seeded_rng("test_faults_stop_report_and_recover", cocotb.log)
    await tb.cycle_reset()
    n = tb.n
    config = tb.config
    guard_base = 0x0090_0000
    ok_load = load(target="SCRATCHPAD", sram_addr=0, dram_addr=0x0050_0000, bytes_per_row=n,
                   rows=4, stride=n)
    cases = [
        ("ILLEGAL_INSTRUCTION", 1, None),  # a zero word: opcode 0
        ("SRAM_RANGE", 1, [ok_load, compute(weight_addr=0, act_addr=0, rows=4,
                                            acc_addr=config.accumulator_depth - 2), finish()]),
        ("SRAM_RANGE", 0, [load(target="SCRATCHPAD", sram_addr=config.scratchpad_depth - 2,
                                dram_addr=0x0050_0000, bytes_per_row=n, rows=4, stride=n),
                           finish()]),
        # Each target's range is checked by its own row counter: run past the end of each,
        # and start one row past the end (the counter is only as wide as the target).
        ("SRAM_RANGE", 0, [load(target="ACCUMULATOR", sram_addr=config.accumulator_depth - 1,
                                dram_addr=0x0050_0000, bytes_per_row=4 * n, rows=2,
                                stride=4 * n), finish()]),
        ("SRAM_RANGE", 0, [load(target="QUANT", sram_addr=config.quant_table_depth - 1,
                                dram_addr=0x0050_0000, bytes_per_row=8 * n, rows=2,
                                stride=8 * n), finish()]),
        ("SRAM_RANGE", 0, [load(target="SCRATCHPAD", sram_addr=config.scratchpad_depth,
                                dram_addr=0x0050_0000, bytes_per_row=n, rows=1, stride=n),
                           finish()]),
        ("BAD_TRANSFER", 1, [ok_load, load(target="SCRATCHPAD", sram_addr=0,
                                           dram_addr=0x0050_0000, bytes_per_row=n, rows=0,
                                           stride=0), finish()]),
        ("BAD_TRANSFER", 0, [load(target="ACCUMULATOR", sram_addr=0, dram_addr=0x0050_0000,
                                  bytes_per_row=4 * n + 1, rows=1, stride=0), finish()]),
        ("AXI_READ_ERROR", 1, [ok_load, load(target="SCRATCHPAD", sram_addr=0,
                                             dram_addr=0x00DE_0000, bytes_per_row=64 * n,
                                             rows=1, stride=0), finish()]),
        ("AXI_WRITE_ERROR", 1, [ok_load, store(mode="RAW", acc_addr=0, dram_addr=0x00DE_0000,
                                               bytes_per_row=4 * n, rows=8, stride=4 * n),
                                finish()]),
        ("BAD_TRANSFER", 0, [store(mode="RAW", acc_addr=0, dram_addr=2 ** 32 - 4 * n,
                                   bytes_per_row=4 * n, rows=2, stride=4 * n), finish()]),
        # Not whole accumulator rows: STORE finds bytes left in its unpacker at the end.
        ("BAD_TRANSFER", 0, [store(mode="RAW", acc_addr=0, dram_addr=0x00A0_0000,
                                   bytes_per_row=4 * n + 4, rows=1, stride=0), finish()]),
    ]
    tb.ram.write(0x0050_0000, bytes(range(256)) * 16)
    for code, index, program in cases:
        tb.set_backpressure(rng, enabled=rng.random() < 0.5)
        tb.ram.poisoned = [(0x00DE_0000 + 3 * n, 0x00DE_0000 + 3 * n + 1)]
        tb.ram.write(0x00DE_0000 - 64, bytes([GUARD]) * (64 * n + 128))
        tb.ram.write(guard_base, bytes([GUARD]) * 256)
        if program is None:
            blob = encode_program([ok_load]) + bytes(16) + encode_program([finish()])
            tb.ram.write(PROGRAM_BASE, blob)
            await tb.write_register("INSN_BASE", addr=PROGRAM_BASE)
            await tb.write_register("INSN_COUNT", count=3)
            await tb.write_register("CTRL", start=1)
            for _ in range(2000):
                await ClockCycles(dut.clk, 16)
                status = await tb.read_register("STATUS")
                if not status["busy"]:
                    break
        else:
            status = await tb.run(program, limit=200_000)
        assert status["error"] and not status["done"] and not status["busy"], (code, status)
        got_code = (await tb.read_register("ERROR_CODE"))["code"]
        got_index = (await tb.read_register("ERROR_INDEX"))["index"]
        assert (got_code, got_index) == (code, index), (code, index, got_code, got_index)
        assert dut.irq.value == 0
        tb.ram.poisoned = []
        # Nothing outside the faulting transfer's own range was written.
        assert tb.ram.read(0x00DE_0000 - 64, 64) == bytes([GUARD]) * 64
        assert tb.ram.read(0x00DE_0000 + 32 * n, 64) == bytes([GUARD]) * 64
        assert tb.ram.read(guard_base, 256) == bytes([GUARD]) * 256
        await tb.soft_reset()
        gemm = random_gemm(rng, n, m=int(rng.integers(1, 20)), k_tiles=2, col_tiles=2)
        place_gemm(tb, gemm)
        await expect_done(tb, gemm_program(tb, gemm), f"after {code}")
        check_gemm(tb, gemm, f"after {code}")
        tb.log.info(f"{code} at instruction {index}: reported, recovered")


@cocotb.test()
async def test_soft_reset_during_a_run(dut):
    """A soft reset in the middle of a long program drains the bus and recovers."""
    tb = NpuTB(dut)
    rng = seeded_rng("test_soft_reset_during_a_run", cocotb.log)
    await tb.cycle_reset()
    tb.set_backpressure(rng, enabled=True)
    gemm = random_gemm(rng, tb.n, m=64, k_tiles=8, col_tiles=2, raw=False)
    place_gemm(tb, gemm)
    blob = encode_program(gemm_program(tb, gemm))
    tb.ram.write(PROGRAM_BASE, blob)
    await tb.write_register("INSN_BASE", addr=PROGRAM_BASE)
    await tb.write_register("INSN_COUNT", count=len(blob) // 16)
    await tb.write_register("CTRL", start=1)
    await ClockCycles(dut.clk, int(rng.integers(50, 1500)))
    await tb.soft_reset()
    gemm = random_gemm(rng, tb.n, m=9, k_tiles=3, col_tiles=1)
    place_gemm(tb, gemm)
    await expect_done(tb, gemm_program(tb, gemm), "after soft reset")
    check_gemm(tb, gemm, "after soft reset")
