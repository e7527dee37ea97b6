"""The simulated NPU as a device: a cocotb "test" that serves a runtime over a socket.

``sw_runtime.sim_device.SimDevice`` builds the NPU top, starts the simulator in a subprocess
with this module as its test, and sends requests over a Unix socket: register reads and
writes (real AXI4-Lite transactions on the DUT), DRAM reads and writes (straight into the
DRAM model, taking no simulated time), and "run until idle". Simulated time only advances
inside requests, so the user's script is an ordinary Python program and the simulator waits
for it.

Wire format (``sw_runtime.sim_device``): length-prefixed pickled tuples; the server answers
every request with ``("ok", value)`` or ``("error", message)``.
"""

import os
import socket
import time

import cocotb
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time

from sim.build import CLOCK_PERIOD_NS
from sim.tb_npu import NpuTB
from sw_runtime.registers import REGISTERS, field_value
from sw_runtime.sim_device import receive_message, send_message

POLL_CYCLES = 64  # cycles between looks at irq while running
STATUS_EVERY = 16  # polls between STATUS reads (errors raise no irq)


class _Server(NpuTB):
    """The system testbench's DUT, DRAM and register master, answering requests."""

    def __init__(self, dut, dram_size):
        super().__init__(dut, dram_size=dram_size)
        self.ram.poisoned = [(dram_size, 2 ** 34)]  # beyond DRAM: SLVERR, as unmapped space

    async def read32(self, offset):
        return await self.host.read_dword(offset)

    async def write32(self, offset, value):
        await self.host.write_dword(offset, value)

    async def write_dram(self, addr, data):
        self.ram.write(addr, data)

    async def read_dram(self, addr, length):
        return self.ram.read(addr, length)

    async def wait_idle(self, timeout_s):
        """Run until STATUS.busy falls: True, or False after ``timeout_s`` of wall time."""
        deadline = time.monotonic() + timeout_s
        status = REGISTERS["STATUS"]["offset"]
        polls = 0
        while True:
            await ClockCycles(self.dut.clk, POLL_CYCLES)
            polls += 1
            if int(self.dut.irq.value) or polls % STATUS_EVERY == 0:
                word = await self.host.read_dword(status)
                if not field_value("STATUS", "busy", word):
                    return True
            if time.monotonic() > deadline:
                return False

    async def sim_cycles(self):
        return int(get_sim_time("ns") // CLOCK_PERIOD_NS)


@cocotb.test()
async def serve(dut):
    """Serve one runtime until it says close (or disconnects)."""
    server = _Server(dut, int(os.environ["NPU_DRAM_SIZE"]))
    await server.cycle_reset()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["NPU_SERVER_SOCKET"])
    send_message(sock, ("ready", None))
    handlers = {"read32": server.read32, "write32": server.write32,
                "write_dram": server.write_dram, "read_dram": server.read_dram,
                "wait_idle": server.wait_idle, "sim_cycles": server.sim_cycles}
    try:
        while True:
            try:
                request, *args = receive_message(sock)
            except ConnectionError:
                return
            if request == "close":
                send_message(sock, ("ok", None))
                return
            try:
                result = await handlers[request](*args)
            except Exception as error:  # the client raises it with this message
                send_message(sock, ("error", f"{type(error).__name__}: {error}"))
            else:
                send_message(sock, ("ok", result))
    finally:
        sock.close()
