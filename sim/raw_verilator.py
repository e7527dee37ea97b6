"""Raw Verilator: the NPU top in a plain C++ clock loop (``sim/cpp/npu_raw.cpp``), no Python.

The ceiling of simulation speed, for ``make bench``: the same program the other backends run,
recorded from the runtime on the instruction-level model (DRAM image, program address and
length, the bytes the host reads back), replayed by the C++ harness through the firmware
driver, and its output checked against the model's before its speed counts.
"""

import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.build import BUILD_ARGS, BUILD_ROOT, REPO_ROOT, generate_verilog, prepare_environment
from sw_runtime.device import DEFAULT_DRAM_SIZE, Device, as_dram_bytes
from sw_runtime.model import ModelDevice
from sw_runtime.registers import REGISTERS, field_value

__all__ = ["Recording", "build_raw", "record", "run_raw"]

HARNESS = REPO_ROOT / "sim" / "cpp" / "npu_raw.cpp"
DRIVER = REPO_ROOT / "firmware" / "src" / "npu_driver.c"
DRIVER_INCLUDE = REPO_ROOT / "firmware" / "include"
CXX_FLAGS = "-O2"


@dataclass
class Recording:
    """One program as the runtime ran it: what it wrote, started and read back."""
    image: list = field(default_factory=list)      # (address, bytes) written before the start
    program_addr: int = 0
    instructions: int = 0
    readback: list = field(default_factory=list)   # (address, bytes the model returned)


class _Recorder(Device):
    """The model device, noting the DRAM writes, the start and the reads of one program."""

    name = "recorder"

    def __init__(self, config):
        self._model = ModelDevice(config=config, dram_size=DEFAULT_DRAM_SIZE)
        self.dram_size = self._model.dram_size
        self.recording = Recording()
        self._registers = {}
        self._started = False

    def read32(self, offset):
        return self._model.read32(offset)

    def write32(self, offset, value):
        self._registers[offset] = value
        if offset == REGISTERS["CTRL"]["offset"] and field_value("CTRL", "start", value):
            if self._started:
                raise ValueError("the recorder takes one program; this operation ran more")
            self._started = True
            self.recording.program_addr = self._registers[REGISTERS["INSN_BASE"]["offset"]]
            self.recording.instructions = self._registers[REGISTERS["INSN_COUNT"]["offset"]]
        self._model.write32(offset, value)

    def write_dram(self, addr, data):
        if not self._started:
            self.recording.image.append((addr, as_dram_bytes(data).tobytes()))
        self._model.write_dram(addr, data)

    def read_dram(self, addr, length):
        data = self._model.read_dram(addr, length)
        if self._started:
            self.recording.readback.append((addr, data.tobytes()))
        return data

    def wait_idle(self, timeout_s):
        return self._model.wait_idle(timeout_s)


def record(config, operation):
    """Run ``operation(npu)`` on the model and return the ``Recording`` of its one program."""
    from sw_runtime import Npu

    recorder = _Recorder(config)
    operation(Npu(recorder, check_programs=False))  # the model checks as it runs
    if not recorder.recording.instructions:
        raise ValueError("the operation ran no program")
    return recorder.recording


def build_raw(config, log=print) -> Path:
    """Build (or reuse) the harness for ``config``; returns the executable."""
    bus_bytes = config.axi_data_width // 8
    if bus_bytes > 8:
        raise ValueError(f"the raw harness drives buses up to 64 bits, not "
                         f"{config.axi_data_width}")
    prepare_environment()
    source = generate_verilog("npu_top", config)
    cxx_flags = (f"{CXX_FLAGS} -DNPU_BUS_BYTES={bus_bytes} -DNPU_DRAM_BYTES={DEFAULT_DRAM_SIZE} "
                 f"-I{DRIVER_INCLUDE}")
    flags = [*BUILD_ARGS["verilator"], "-CFLAGS", cxx_flags]
    inputs = [source, HARNESS, DRIVER, DRIVER_INCLUDE / "npu_driver.h",
              DRIVER_INCLUDE / "npu_regs.h"]
    key = hashlib.sha256("\n".join([*(p.read_text() for p in inputs), *flags]).encode())
    build_dir = BUILD_ROOT / "sim" / "raw_verilator" / f"npu_top_{config.name}"
    executable = build_dir / "npu_raw"
    stamp = build_dir / "build.stamp"
    if executable.exists() and stamp.exists() and stamp.read_text() == key.hexdigest():
        return executable
    build_dir.mkdir(parents=True, exist_ok=True)
    log(f"[build] raw verilator: npu_top {config.name} ...", flush=True)
    started = time.monotonic()
    command = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1),
               "--top-module", "npu_top", "-Mdir", str(build_dir), "-o", "npu_raw", *flags,
               str(source), str(HARNESS), str(DRIVER)]
    with open(build_dir / "build.log", "w") as log_file:
        result = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f"raw verilator build failed; see {build_dir / 'build.log'}")
    stamp.write_text(key.hexdigest())
    log(f"[build] raw verilator: built in {time.monotonic() - started:.0f} s", flush=True)
    return executable


def run_raw(executable, recording: Recording, repeats=1):
    """Run the recorded program ``repeats`` times; checks the bytes read back against the
    model's and returns the harness's figures (``sim_cycles``, ``wall_seconds``, counters)."""
    with tempfile.TemporaryDirectory(prefix="npu-raw-") as workdir:
        workdir = Path(workdir)
        with open(workdir / "image", "wb") as image:
            for addr, data in recording.image:
                image.write(np.array([addr, len(data)], "<u8").tobytes() + data)
        with open(workdir / "dumps", "wb") as dumps:
            for addr, data in recording.readback:
                dumps.write(np.array([addr, len(data)], "<u8").tobytes())
        result = subprocess.run(
            [str(executable), str(workdir / "image"), str(recording.program_addr),
             str(recording.instructions), str(workdir / "dumps"), str(workdir / "out"),
             str(repeats)], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"npu_raw failed ({result.returncode}): "
                               f"{result.stdout}{result.stderr}")
        figures = json.loads(result.stdout)
        out = (workdir / "out").read_bytes()
    offset = 0
    for addr, expected in recording.readback:
        if out[offset:offset + len(expected)] != expected:
            raise AssertionError(f"raw verilator's DRAM at {addr:#x} differs from the model's")
        offset += len(expected)
    return figures
