"""The RTL in Amaranth's own simulator: no C++ compiler, no subprocess; slow, for small arrays.

``AmaranthDevice(n=4)`` elaborates the NPU top in this process and simulates it with
``amaranth.sim`` in a background thread. Register accesses are AXI4-Lite transactions driven
by a testbench; DRAM is a numpy array behind a cycle-level AXI4 subordinate (in-order bursts,
always ready, SLVERR beyond the end of DRAM, as unmapped space answers on a board). Simulated
time only advances inside a request, as with the Verilator and Icarus backends.
"""

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from rtl.axi import Response

from .device import DEFAULT_DRAM_SIZE, SimulatorDevice, as_dram_bytes
from .errors import BackendError
from .registers import REGISTERS, field_value

__all__ = ["AmaranthDevice", "DEFAULT_N"]

DEFAULT_N = 4  # the Python simulator runs the N=4 top at about 1,500 cycles per second
CLOCK_PERIOD_S = 1e-8
STATUS_POLL_CYCLES = 256  # cycles between STATUS reads while waiting for the end
_CLOSE = object()


@dataclass
class _Burst:
    """An accepted AXI burst: where its next beat goes and how many are left."""
    id: int
    addr: int
    beats: int
    in_range: bool

    @property
    def response(self):
        return Response.OKAY if self.in_range else Response.SLVERR


class _Dram:
    """DRAM as an AXI4 subordinate process: accepts every address at once, answers reads in
    order one beat per cycle, takes write data as it comes, one B response per burst."""

    def __init__(self, bus, memory, beat_bytes):
        self.bus = bus
        self.memory = memory
        self.beat_bytes = beat_bytes
        self.cycles = 0

    def _burst(self, axi_id, addr, axi_len):
        beats = axi_len + 1  # AxLEN counts beats minus one
        return _Burst(axi_id, addr, beats, addr + beats * self.beat_bytes <= len(self.memory))

    async def process(self, ctx):
        bus, beat = self.bus, self.beat_bytes
        reads = deque()      # read bursts with beats still to send
        writes = deque()     # write bursts whose data is still to come
        responses = deque()  # finished write bursts waiting for their B response
        ctx.set(bus.arready, 1)
        ctx.set(bus.awready, 1)
        inputs = (bus.arvalid, bus.arid, bus.araddr, bus.arlen, bus.rready,
                  bus.awvalid, bus.awid, bus.awaddr, bus.awlen,
                  bus.wvalid, bus.wdata, bus.wstrb, bus.bready)
        rvalid = bvalid = wready = False
        async for _, _, arvalid, arid, araddr, arlen, rready, awvalid, awid, awaddr, awlen, \
                wvalid, wdata, wstrb, bready in ctx.tick().sample(*inputs):
            self.cycles += 1
            # What happened at this edge.
            if arvalid:
                reads.append(self._burst(arid, araddr, arlen))
            if rvalid and rready:
                reads[0].addr += beat
                reads[0].beats -= 1
                if reads[0].beats == 0:
                    reads.popleft()
            if awvalid:
                writes.append(self._burst(awid, awaddr, awlen))
            if wready and wvalid:
                burst = writes[0]
                if burst.in_range:
                    self._write_beat(burst.addr, wdata, wstrb)
                burst.addr += beat
                burst.beats -= 1
                if burst.beats == 0:
                    responses.append(writes.popleft())
            if bvalid and bready:
                responses.popleft()
            # What the subordinate drives until the next edge.
            rvalid = bool(reads)
            ctx.set(bus.rvalid, rvalid)
            if rvalid:
                burst = reads[0]
                data = int.from_bytes(self.memory[burst.addr:burst.addr + beat].tobytes(),
                                      "little") if burst.in_range else 0
                ctx.set(bus.rid, burst.id)
                ctx.set(bus.rdata, data)
                ctx.set(bus.rresp, burst.response)
                ctx.set(bus.rlast, burst.beats == 1)
            wready = bool(writes)
            ctx.set(bus.wready, wready)
            bvalid = bool(responses)
            ctx.set(bus.bvalid, bvalid)
            if bvalid:
                ctx.set(bus.bid, responses[0].id)
                ctx.set(bus.bresp, responses[0].response)

    def _write_beat(self, addr, wdata, wstrb):
        data = wdata.to_bytes(self.beat_bytes, "little")
        for lane in range(self.beat_bytes):
            if wstrb >> lane & 1:
                self.memory[addr + lane] = data[lane]


class AmaranthDevice(SimulatorDevice):
    name = "amaranth"

    def __init__(self, *, n=None, config=None, dram_size=DEFAULT_DRAM_SIZE, log=print):
        from amaranth.sim import Simulator

        from rtl.config import NpuConfig
        from rtl.npu import NpuTop

        if config is None:
            config = NpuConfig(n=DEFAULT_N if n is None else n)
        self.config = config
        self.dram_size = dram_size
        self._memory = np.zeros(dram_size, dtype=np.uint8)  # pages appear as they are touched
        log(f"amaranth: elaborating the N={config.n} NPU top for Amaranth's simulator")
        self._top = NpuTop(config)
        self._dram = _Dram(self._top.m_axi, self._memory, config.axi_data_width // 8)
        simulator = Simulator(self._top)
        simulator.add_clock(CLOCK_PERIOD_S)
        simulator.add_process(self._dram.process)
        simulator.add_testbench(self._serve)
        self._requests, self._replies = queue.Queue(), queue.Queue()
        self._failure = None
        self._thread = threading.Thread(target=self._run, args=(simulator,), daemon=True,
                                        name="amaranth-npu")
        self._thread.start()

    # -- the simulation thread -------------------------------------------------------------

    def _run(self, simulator):
        try:
            simulator.run()
        except BaseException as error:  # report it to the waiting caller, not to stderr
            self._failure = error
            self._replies.put(("error", f"the simulation stopped: {type(error).__name__}: "
                                        f"{error}"))

    async def _serve(self, ctx):
        handlers = {"read32": self._read32, "write32": self._write32,
                    "wait_idle": self._wait_idle, "sim_cycles": self._sim_cycles}
        while True:
            request = self._requests.get()  # blocks the simulator: time stands still
            if request is _CLOSE:
                return
            name, *args = request
            try:
                self._replies.put(("ok", await handlers[name](ctx, *args)))
            except Exception as error:
                self._replies.put(("error", f"{type(error).__name__}: {error}"))

    async def _handshake(self, ctx, valid, ready):
        ctx.set(valid, 1)
        await ctx.tick().until(ready)
        ctx.set(valid, 0)

    async def _read32(self, ctx, offset):
        bus = self._top.s_axil
        ctx.set(bus.araddr, offset)
        await self._handshake(ctx, bus.arvalid, bus.arready)
        ctx.set(bus.rready, 1)
        data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        if resp != Response.OKAY:
            raise BackendError(f"register read at {offset:#x} answered {resp.name}")
        return data

    async def _write32(self, ctx, offset, value):
        bus = self._top.s_axil
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        address_done = data_done = False
        while not (address_done and data_done):
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            if awready:
                address_done = True
                ctx.set(bus.awvalid, 0)
            if wready:
                data_done = True
                ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        (resp,) = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        if resp != Response.OKAY:
            raise BackendError(f"register write at {offset:#x} answered {resp.name}")

    async def _wait_idle(self, ctx, timeout_s):
        """Run until STATUS.busy falls: True, or False after ``timeout_s`` of wall time. The
        end of a program raises irq (when enabled); faults do not, so STATUS is also polled."""
        deadline = time.monotonic() + timeout_s
        status = REGISTERS["STATUS"]["offset"]
        while True:
            if not field_value("STATUS", "busy", await self._read32(ctx, status)):
                return True
            if time.monotonic() > deadline:
                return False
            for _ in range(STATUS_POLL_CYCLES):
                _, _, irq = await ctx.tick().sample(self._top.irq)
                if irq:
                    break

    async def _sim_cycles(self, ctx):
        return self._dram.cycles

    def _call(self, *request):
        if not self._thread.is_alive():
            raise BackendError(f"the amaranth simulation is not running"
                               f"{f': {self._failure}' if self._failure else ''}")
        self._requests.put(request)
        kind, value = self._replies.get()
        if kind == "error":
            raise BackendError(f"amaranth simulation: {value}")
        return value

    # -- Device -----------------------------------------------------------------------------

    def write_dram(self, addr, data):
        data = as_dram_bytes(data)
        self.check_dram_range(addr, len(data), "write")
        self._memory[addr:addr + len(data)] = data

    def read_dram(self, addr, length):
        self.check_dram_range(addr, length, "read")
        return self._memory[addr:addr + length].copy()

    def close(self):
        if self._thread.is_alive():
            self._requests.put(_CLOSE)
            self._thread.join()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
