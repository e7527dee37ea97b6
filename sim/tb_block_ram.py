"""cocotb test of ``rtl.block_ram.BlockRam`` (``sim.harness.BlockRamHarness``): random writes
and reads on both read ports, with ``en`` often low, against a Python list of rows. A port's
data must be the row its last enabled read addressed, ``BLOCK_RAM_READ_LATENCY`` cycles on.
Reads never address the row written in the same cycle (undefined on the ECP5). Depth and
width come from ``NPU_PARAMS``."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from rtl.block_ram import BLOCK_RAM_READ_LATENCY
from sim.build import CLOCK_PERIOD_NS, seeded_rng
from sim.harness import BlockRamHarness

CYCLES = int(os.environ.get("NPU_CASES", "3000"))


@cocotb.test()
async def reads_return_the_rows_written(dut):
    rng = seeded_rng("reads_return_the_rows_written", dut._log)
    params = json.loads(os.environ["NPU_PARAMS"])
    depth, width = params["depth"], params["width"]
    ports = BlockRamHarness.READ_PORTS
    # A few hot rows as well as the whole depth, so reads often find recent writes.
    hot = [int(a) for a in rng.integers(0, depth, 4)] + [0, depth - 1]

    def address():
        return int(rng.choice(hot)) if rng.random() < 0.5 else int(rng.integers(0, depth))

    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 0
    rows = [None] * depth  # None: never written
    # Per port: what the RAM stage holds, and the data expected on each later cycle.
    ram_stage = [None] * ports
    expected = [[] for _ in range(ports)]
    checked = 0
    await FallingEdge(dut.clk)
    for cycle in range(CYCLES):
        write = rng.random() < 0.5
        write_addr, write_data = address(), int(rng.integers(0, 2 ** width))
        dut.write_addr.value, dut.write_data.value = write_addr, write_data
        dut.write_en.value = int(write)
        for port in range(ports):
            enable = rng.random() < 0.7
            read_addr = address()
            while write and read_addr == write_addr:
                read_addr = address()
            getattr(dut, f"read{port}_addr").value = read_addr
            getattr(dut, f"read{port}_en").value = int(enable)
            if enable:
                ram_stage[port] = rows[read_addr]
            # The output register takes the RAM stage at the next edge: after
            # BLOCK_RAM_READ_LATENCY edges from this read, the port shows it.
            expected[port].append(ram_stage[port])
        if write:
            rows[write_addr] = write_data
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        for port in range(ports):
            if cycle + 1 >= BLOCK_RAM_READ_LATENCY:
                want = expected[port][cycle + 1 - BLOCK_RAM_READ_LATENCY]
                if want is not None:
                    got = getattr(dut, f"read{port}_data").value.to_unsigned()
                    assert got == want, (f"cycle {cycle}, port {port}: {got:#x}, expected "
                                         f"{want:#x}")
                    checked += 1
    dut._log.info(f"{checked} reads checked ({depth} x {width} bits)")
    assert checked > CYCLES // 2
