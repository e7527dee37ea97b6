"""The device interface every backend implements, and running a program on one.

A device is registers (32-bit reads and writes at byte offsets of ``rtl/regs/npu_regs.rdl``)
plus DRAM (byte reads and writes), whatever is behind them: the instruction-level model, an
RTL simulator in a subprocess, or a board. ``run_program`` is the one way programs run: it
writes the program, starts it, waits, turns hardware errors into ``DeviceError`` and reads
the performance counters.
"""

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from rtl.regmap import config_registers

from .assembler import encode_program
from .errors import DeviceError, DeviceTimeout, NpuValueError
from .registers import REGISTERS, Registers

__all__ = ["Device", "SimulatorDevice", "HardwareConfig", "RunStats", "run_program",
           "as_dram_bytes", "DEFAULT_DRAM_SIZE"]

DEFAULT_DRAM_SIZE = 256 * 2 ** 20
ID_MAGIC = REGISTERS["ID"]["fields"]["magic"]["reset"]


@dataclass(frozen=True)
class HardwareConfig:
    """What software needs to know of the hardware, read from the CONFIG registers."""
    n: int
    bus_bytes: int
    queue_depth: int
    scratchpad_rows: int
    accumulator_rows: int
    quant_rows: int

    @classmethod
    def from_registers(cls, values):
        """From CONFIG register values: register name -> field name -> value."""
        array = values["CONFIG_ARRAY"]
        return cls(n=array["n"], bus_bytes=array["bus_bytes"], queue_depth=array["queue_depth"],
                   scratchpad_rows=values["CONFIG_SCRATCHPAD"]["rows"],
                   accumulator_rows=values["CONFIG_ACCUMULATOR"]["rows"],
                   quant_rows=values["CONFIG_QUANT"]["rows"])

    @classmethod
    def from_config(cls, config):
        """What a build with ``config`` (an NpuConfig) reports, without asking it."""
        return cls.from_registers(config_registers(config))

    def npu_config(self):
        """An NpuConfig with these sizes (the other fields default), e.g. to check programs
        with the model: the inverse of ``from_config``."""
        from rtl.config import NpuConfig
        return NpuConfig(n=self.n, axi_data_width=8 * self.bus_bytes,
                         instruction_queue_depth=self.queue_depth,
                         scratchpad_depth=self.scratchpad_rows,
                         accumulator_depth=self.accumulator_rows,
                         quant_table_depth=self.quant_rows)


@dataclass(frozen=True)
class RunStats:
    """The performance counters of one program run."""
    cycles: int
    array_active: int
    load_busy: int
    store_busy: int
    compute_stall: int
    bytes_read: int
    bytes_written: int
    instructions: int
    wall_seconds: float

    @property
    def utilization(self):
        """Fraction of the cycles the systolic array streamed activations."""
        return self.array_active / self.cycles if self.cycles else 0.0

    def __str__(self):
        return (f"{self.cycles} cycles, array active {self.utilization:.1%}, "
                f"{self.bytes_read} B read, {self.bytes_written} B written, "
                f"{self.instructions} instructions")


class Device(ABC):
    """A device: registers, DRAM, and waiting for a program to end."""

    name = "device"
    dram_size = DEFAULT_DRAM_SIZE

    @abstractmethod
    def read32(self, offset: int) -> int: ...

    @abstractmethod
    def write32(self, offset: int, value: int) -> None: ...

    @abstractmethod
    def write_dram(self, addr: int, data) -> None: ...

    @abstractmethod
    def read_dram(self, addr: int, length: int) -> np.ndarray: ...

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until STATUS.busy falls; False on timeout. Backends may do better than polling."""
        deadline = time.monotonic() + timeout_s
        while self.registers.read_field("STATUS", "busy"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True

    def close(self):
        pass

    @property
    def registers(self):
        return Registers(self.read32, self.write32)

    def hardware_config(self) -> HardwareConfig:
        regs = self.registers
        magic = regs.read_field("ID", "magic")
        if magic != ID_MAGIC:
            raise DeviceError("NONE", -1, f"ID reads {magic:#x}, not an NPU ({ID_MAGIC:#x})")
        return HardwareConfig.from_registers(
            {name: regs.read(name) for name in REGISTERS if name.startswith("CONFIG_")})

    def check_dram_range(self, addr, length, what="access"):
        if addr < 0 or length < 0 or addr + length > self.dram_size:
            raise NpuValueError(f"DRAM {what} [{addr:#x}, {addr + length:#x}) is outside the "
                                f"device's {self.dram_size:#x} bytes")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SimulatorDevice(Device):
    """A simulated RTL that serves requests (``read32``, ``write32``, ``wait_idle``,
    ``sim_cycles``) one at a time through ``_call``; simulated time advances only inside
    them."""

    @abstractmethod
    def _call(self, request, *args): ...

    def read32(self, offset):
        return self._call("read32", offset)

    def write32(self, offset, value):
        self._call("write32", offset, value)

    def wait_idle(self, timeout_s):
        return self._call("wait_idle", timeout_s)

    def sim_cycles(self):
        """Cycles simulated since the device opened."""
        return self._call("sim_cycles")


def as_dram_bytes(data) -> np.ndarray:
    """What a DRAM write takes (bytes, or any numpy array as its raw bytes) as a uint8 view."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(bytes(data), dtype=np.uint8)


def _perf_counters(regs):
    names = {"cycles": "PERF_CYCLES", "array_active": "PERF_ARRAY_ACTIVE",
             "load_busy": "PERF_LOAD_BUSY", "store_busy": "PERF_STORE_BUSY",
             "compute_stall": "PERF_COMPUTE_STALL", "bytes_read": "PERF_BYTES_READ",
             "bytes_written": "PERF_BYTES_WRITTEN"}
    return {key: regs.read_field(name, "count") for key, name in names.items()}


def recover(device, timeout_s=5.0):
    """Soft reset: stop whatever runs, drain the bus, clear the status."""
    device.registers.write("CTRL", soft_reset=1)
    if not device.wait_idle(timeout_s):
        raise DeviceTimeout(f"{device.name}: soft reset did not finish in {timeout_s} s")


def run_program(device: Device, program, program_addr: int, *, timeout_s=60.0) -> RunStats:
    """Run ``program`` (a list of ``Instruction``) from DRAM at ``program_addr``.

    Raises ``DeviceError`` with the hardware's error code and instruction index, or
    ``DeviceTimeout``; in both cases the device is soft-reset and ready for the next program.
    """
    blob = encode_program(program)
    device.check_dram_range(program_addr, len(blob), "program")
    device.write_dram(program_addr, blob)
    regs = device.registers
    regs.write("INSN_BASE", addr=program_addr)
    regs.write("INSN_COUNT", count=len(program))
    started = time.monotonic()
    regs.write("CTRL", start=1, irq_enable=1)
    if not device.wait_idle(timeout_s):
        recover(device)
        raise DeviceTimeout(f"{device.name}: program of {len(program)} instructions still "
                            f"busy after {timeout_s} s (device reset)")
    wall = time.monotonic() - started
    status = regs.read("STATUS")
    if status["error"]:
        code = regs.read_field("ERROR_CODE", "code")
        index = regs.read_field("ERROR_INDEX", "index")
        recover(device)
        raise DeviceError(code, index, f"{program[index] if index < len(program) else ''}")
    if not status["done"]:
        raise DeviceError("NONE", -1, f"{device.name}: idle without done or error: {status}")
    return RunStats(**_perf_counters(regs), instructions=len(program), wall_seconds=wall)
