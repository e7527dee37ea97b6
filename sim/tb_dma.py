"""cocotb tests of the DMA (reader, writer, gearboxes) against cocotbext-axi's AxiRam.

The harness copies one 2-D transfer into another through rows of ``row_bytes``. Every AXI
channel pauses at random; AxiRam itself asserts that no burst crosses a 4 KiB boundary.
Destination windows are filled with guard bytes, which must survive everything but the
destination rows.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from rtl.dma import Transfer
from sim.axi_models import Dram, set_pauses
from sim.build import CLOCK_PERIOD_NS, config_from_env, seeded_rng

GUARD = 0xA5
SOURCE_REGION = 0x0010_0000
DEST_REGION = 0x0080_0000


class DmaTB:
    def __init__(self, dut):
        self.dut = dut
        self.config = config_from_env(os.environ["NPU_CONFIG"])
        self.row_bytes = json.loads(os.environ["NPU_PARAMS"])["row_bytes"]
        self.bus_bytes = self.config.bus_bytes
        self.log = dut._log
        self.ram = Dram(dut)

    def set_backpressure(self, rng, enabled):
        set_pauses(self.ram.channels, rng, enabled, probability=0.4)

    async def cycle_reset(self):
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        dut = self.dut
        for signal in (dut.read_transfer__valid, dut.write_transfer__valid, dut.abort,
                       dut.clear):
            signal.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def send(self, port, transfer):
        valid = getattr(self.dut, f"{port}__valid")
        ready = getattr(self.dut, f"{port}__ready")
        getattr(self.dut, f"{port}__payload").value = Transfer.const(transfer).as_bits()
        valid.value = 1
        while True:
            await ReadOnly()
            accepted = bool(ready.value)
            await RisingEdge(self.dut.clk)
            if accepted:
                break
        valid.value = 0

    async def wait_idle(self, limit):
        """Cycles until busy drops; fails after ``limit``."""
        cycles = 0
        await ClockCycles(self.dut.clk, 2)
        while self.dut.busy.value:
            await ClockCycles(self.dut.clk, 4)
            cycles += 4
            if cycles > limit:
                raise TimeoutError(f"DMA still busy after {limit} cycles: {self.state()}")
        return cycles + 2

    def state(self):
        """Busy flags and gearbox levels, for a failure message."""
        dut = self.dut
        return ", ".join(f"{name}={int(handle.value)}" for name, handle in [
            ("reader.busy", dut.reader.busy), ("writer.busy", dut.writer.busy),
            ("packer.level", dut.packer.level), ("unpacker.level", dut.unpacker.source__level),
            ("arvalid", dut.m_axi__arvalid), ("rready", dut.m_axi__rready),
            ("rvalid", dut.m_axi__rvalid), ("awvalid", dut.m_axi__awvalid),
            ("wvalid", dut.m_axi__wvalid), ("wready", dut.m_axi__wready),
            ("bvalid", dut.m_axi__bvalid)])

    async def pulse(self, signal):
        signal.value = 1
        await RisingEdge(self.dut.clk)
        signal.value = 0




def transfer_shape(rng, total_rows, row_bytes, bus_bytes):
    """A 2-D shape holding total_rows memory rows: rows x bytes_per_row, with a stride."""
    divisors = [d for d in range(1, total_rows + 1) if total_rows % d == 0]
    per_dram_row = int(rng.choice(divisors))
    bytes_per_row = per_dram_row * row_bytes
    rows = total_rows // per_dram_row
    stride = bytes_per_row + int(rng.choice([0, 0, 1, bus_bytes, int(rng.integers(1, 300))]))
    return bytes_per_row, rows, stride


def row_addresses(base, bytes_per_row, rows, stride):
    return [(base + i * stride, base + i * stride + bytes_per_row) for i in range(rows)]


async def copy_case(tb, rng, total_rows, source_base, dest_base, check=True):
    r, w = tb.row_bytes, tb.bus_bytes
    s_bpr, s_rows, s_stride = transfer_shape(rng, total_rows, r, w)
    d_bpr, d_rows, d_stride = transfer_shape(rng, total_rows, r, w)
    payload = rng.integers(0, 256, total_rows * r, dtype=np.uint8).tobytes()
    for i, (start, end) in enumerate(row_addresses(source_base, s_bpr, s_rows, s_stride)):
        tb.ram.write(start, payload[i * s_bpr:(i + 1) * s_bpr])
    window = (dest_base - 64, dest_base + (d_rows - 1) * d_stride + d_bpr + 64)
    tb.ram.write(window[0], bytes([GUARD]) * (window[1] - window[0]))
    tb.log.info(f"copy {s_rows}x{s_bpr}/{s_stride} at {source_base:#x} -> "
                f"{d_rows}x{d_bpr}/{d_stride} at {dest_base:#x}")
    await tb.send("read_transfer", dict(dram_addr=source_base, bytes_per_row=s_bpr,
                                        rows=s_rows, stride=s_stride))
    await tb.send("write_transfer", dict(dram_addr=dest_base, bytes_per_row=d_bpr,
                                         rows=d_rows, stride=d_stride))
    cycles = await tb.wait_idle(limit=200 * total_rows * r // w + 5000)
    if not check:
        return cycles, len(payload)
    assert not tb.dut.read_error.value and not tb.dut.write_error.value
    expected = bytearray([GUARD]) * (window[1] - window[0])
    for i, (start, end) in enumerate(row_addresses(dest_base, d_bpr, d_rows, d_stride)):
        expected[start - window[0]:end - window[0]] = payload[i * d_bpr:(i + 1) * d_bpr]
    got = tb.ram.read(window[0], window[1] - window[0])
    if got != expected:
        bad = next(i for i in range(len(got)) if got[i] != expected[i])
        raise AssertionError(
            f"copy {s_rows}x{s_bpr}/{s_stride} -> {d_rows}x{d_bpr}/{d_stride} at "
            f"{dest_base:#x}: byte {window[0] + bad:#x} is {got[bad]:#04x}, expected "
            f"{expected[bad]:#04x}")
    return cycles, len(payload)


@cocotb.test()
async def test_random_copies(dut):
    """Random shapes, strides and alignments, with random pauses on every channel."""
    tb = DmaTB(dut)
    rng = seeded_rng("test_random_copies", cocotb.log)
    await tb.cycle_reset()
    cases = int(os.environ.get("NPU_CASES", "40"))
    for index in range(cases):
        tb.set_backpressure(rng, enabled=rng.random() < 0.8)
        large = rng.random() < 0.15
        total_rows = int(rng.integers(200, 700)) if large else int(rng.integers(1, 40))
        # Random alignment; now and then just before a 4 KiB page end.
        source = SOURCE_REGION + int(rng.integers(0, 0x8000))
        dest = DEST_REGION + int(rng.integers(0, 0x8000))
        if rng.random() < 0.3:
            dest = (dest | 0xFFF) - int(rng.integers(0, 3 * tb.bus_bytes))
        await copy_case(tb, rng, total_rows, source, dest)
    tb.log.info(f"{cases} random copies exact, guard bytes intact")


@cocotb.test()
async def test_bandwidth(dut):
    """Bytes per cycle of a long aligned copy without backpressure (reported, and bounded)."""
    tb = DmaTB(dut)
    rng = seeded_rng("test_bandwidth", cocotb.log)
    await tb.cycle_reset()
    tb.set_backpressure(rng, enabled=False)
    total_rows = max(1, 16384 // tb.row_bytes)
    r, w = tb.row_bytes, tb.bus_bytes
    payload = rng.integers(0, 256, total_rows * r, dtype=np.uint8).tobytes()
    tb.ram.write(SOURCE_REGION, payload)
    transfer = dict(bytes_per_row=len(payload), rows=1, stride=0)
    await tb.send("read_transfer", dict(dram_addr=SOURCE_REGION, **transfer))
    await tb.send("write_transfer", dict(dram_addr=DEST_REGION, **transfer))
    cycles = await tb.wait_idle(limit=100 * len(payload))
    assert tb.ram.read(DEST_REGION, len(payload)) == payload
    per_cycle = len(payload) / cycles
    tb.log.info(f"copied {len(payload)} bytes in {cycles} cycles: {per_cycle:.2f} bytes/cycle "
                f"each way (bus {w} bytes, rows {r} bytes)")
    # Reads and writes overlap; both directions move min(W, R) bytes a cycle at best.
    assert per_cycle > 0.8 * min(w, r), "the DMA should stream near the bus width"
    report_dir = os.environ.get("NPU_REPORT_DIR")
    if report_dir:
        Path(report_dir, "dma_bandwidth.json").write_text(json.dumps(
            {"bus_bytes": w, "row_bytes": r, "bytes": len(payload), "cycles": cycles,
             "bytes_per_cycle": per_cycle}))


async def recover(tb):
    """Abort, wait for the bus to drain, clear: the DMA must be usable again."""
    tb.dut.abort.value = 1
    await tb.wait_idle(limit=20_000)
    tb.dut.abort.value = 0
    await tb.pulse(tb.dut.clear)
    await RisingEdge(tb.dut.clk)
    assert not tb.dut.read_error.value and not tb.dut.write_error.value


async def wait_for(tb, signal, limit=20_000):
    for _ in range(limit):
        await RisingEdge(tb.dut.clk)
        if signal.value:
            return
    raise TimeoutError(f"{signal._name} never rose")


def guard_intact(tb, start, end):
    return tb.ram.read(start, end - start) == bytes([GUARD]) * (end - start)


@cocotb.test()
async def test_errors_and_recovery(dut):
    """SLVERR on reads and writes, wrapping transfers and aborts: flagged, drained,
    nothing written outside the transfer, and the next copy exact."""
    tb = DmaTB(dut)
    rng = seeded_rng("test_errors_and_recovery", cocotb.log)
    await tb.cycle_reset()
    r = tb.row_bytes
    size = 64 * r

    for pausing in (False, True):
        tb.set_backpressure(rng, enabled=pausing)
        # Read error in the middle of the source.
        tb.ram.poisoned = [(SOURCE_REGION + size // 2, SOURCE_REGION + size // 2 + 1)]
        tb.ram.write(DEST_REGION - 64, bytes([GUARD]) * (size + 128))
        await tb.send("read_transfer", dict(dram_addr=SOURCE_REGION, bytes_per_row=size,
                                            rows=1, stride=0))
        await tb.send("write_transfer", dict(dram_addr=DEST_REGION, bytes_per_row=size,
                                             rows=1, stride=0))
        await wait_for(tb, dut.read_error)
        await recover(tb)
        assert guard_intact(tb, DEST_REGION - 64, DEST_REGION)
        assert guard_intact(tb, DEST_REGION + size, DEST_REGION + size + 64)

        # Write error: the writer stops; the reader is aborted.
        tb.ram.poisoned = [(DEST_REGION + 3 * r, DEST_REGION + 3 * r + 1)]
        await tb.send("read_transfer", dict(dram_addr=SOURCE_REGION, bytes_per_row=size,
                                            rows=1, stride=0))
        await tb.send("write_transfer", dict(dram_addr=DEST_REGION, bytes_per_row=size,
                                             rows=1, stride=0))
        await wait_for(tb, dut.write_error)
        await recover(tb)
        assert guard_intact(tb, DEST_REGION + size, DEST_REGION + size + 64)
        tb.ram.poisoned = []

        # A write that would wrap past 2**32: the part below 2**32 may be written,
        # nothing at address 0 onwards.
        tb.ram.write(0, bytes([GUARD]) * 4096)
        await tb.send("read_transfer", dict(dram_addr=SOURCE_REGION, bytes_per_row=256 * r,
                                            rows=1, stride=0))
        await tb.send("write_transfer", dict(dram_addr=2 ** 32 - 5 * r, bytes_per_row=256 * r,
                                             rows=1, stride=0))
        await wait_for(tb, dut.write_error)
        await recover(tb)
        assert guard_intact(tb, 0, 4096)
        # A read whose second row would start past 2**32.
        await tb.send("read_transfer", dict(dram_addr=2 ** 32 - 64, bytes_per_row=r, rows=2,
                                            stride=2 ** 31))
        await wait_for(tb, dut.read_error)
        await recover(tb)
        # And one whose third row would (the planner checks that a row ahead).
        await tb.send("read_transfer", dict(dram_addr=2 ** 32 - 64 - 2 ** 30, bytes_per_row=r,
                                            rows=3, stride=2 ** 30))
        await wait_for(tb, dut.read_error)
        await recover(tb)

        # Abort in the middle of a long copy.
        await tb.send("read_transfer", dict(dram_addr=SOURCE_REGION, bytes_per_row=16 * size,
                                            rows=1, stride=0))
        await tb.send("write_transfer", dict(dram_addr=DEST_REGION, bytes_per_row=16 * size,
                                             rows=1, stride=0))
        await ClockCycles(dut.clk, int(rng.integers(5, 200)))
        await recover(tb)

        # And the DMA works again.
        await copy_case(tb, rng, 37, SOURCE_REGION + 3, DEST_REGION + 5)
    tb.log.info("errors flagged, bus drained, guards intact, recovered")
