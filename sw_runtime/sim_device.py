"""The RTL as a device: Verilator or Icarus in a subprocess, driven over a socket.

``SimDevice("verilator", n=8)`` builds the NPU top for that configuration (cached under
``build/sim/``, shared with the tests), starts ``python -m sim.serve`` and talks to the
cocotb server in ``sim/device_server.py``. Register accesses are real AXI4-Lite
transactions; DRAM reads and writes go straight into the simulated memory.
"""

import dataclasses
import json
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .device import DEFAULT_DRAM_SIZE, SimulatorDevice, as_dram_bytes
from .errors import BackendError, NpuValueError

__all__ = ["SimDevice", "send_message", "receive_message"]

CONNECT_TIMEOUT_S = 120.0  # the simulator's start; the build happens before, with progress


# The wire format between SimDevice and sim/device_server.py: each message is a 4-byte
# little-endian length and a pickled tuple (both ends are this repository's code).

def send_message(sock, message):
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("<I", len(data)) + data)


def _receive_exactly(sock, length):
    chunks, remaining = [], length
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive_message(sock):
    (length,) = struct.unpack("<I", _receive_exactly(sock, 4))
    return pickle.loads(_receive_exactly(sock, length))


class SimDevice(SimulatorDevice):
    def __init__(self, simulator="verilator", *, n=None, config=None,
                 dram_size=DEFAULT_DRAM_SIZE, log=print):
        from rtl.config import NpuConfig
        from sim.build import REPO_ROOT, available_simulators, build_simulation

        if simulator not in ("verilator", "icarus"):
            raise NpuValueError(f"simulator must be verilator or icarus, not {simulator!r}")
        if simulator not in available_simulators():
            raise BackendError(f"{simulator} is not installed (for Icarus: apt install iverilog)")
        if config is None:
            config = NpuConfig() if n is None else NpuConfig(n=n)
        self.name = simulator
        self.config = config
        self.dram_size = dram_size
        self._sock = self._process = None
        build = build_simulation(simulator, "npu_top", config, log=log)
        self._run_dir = None
        self._workdir = Path(tempfile.mkdtemp(prefix="npu-sim-"))
        path = str(self._workdir / "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(1.0)
        self._log_path = self._workdir / "server.log"
        with open(self._log_path, "w") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "sim.serve", "--simulator", simulator,
                 "--config", json.dumps(dataclasses.asdict(config)), "--socket", path,
                 "--build-dir", str(build.build_dir), "--dram-size", str(dram_size)],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self._run_dir = build.build_dir / f"serve_{self._process.pid}"
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        try:
            while True:
                try:
                    self._sock, _ = listener.accept()
                    break
                except socket.timeout:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        raise BackendError(f"the {simulator} simulation did not start: "
                                           f"{self._log_tail()}") from None
        finally:
            listener.close()
        self._sock.settimeout(None)
        kind, _ = self._receive()
        if kind != "ready":
            raise BackendError(f"{simulator} simulation: expected ready, got {kind}")

    # -- transport --------------------------------------------------------------------------

    def _log_tail(self, lines=15):
        text = ""
        for path in (self._log_path, (self._run_dir or Path("/nonexistent")) / "sim.log"):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text or "(no log)"

    def _receive(self):
        try:
            return receive_message(self._sock)
        except (ConnectionError, OSError) as error:
            raise BackendError(f"{self.name} simulation stopped: {error}\n{self._log_tail()}")

    def _call(self, *request):
        if self._sock is None:
            raise BackendError(f"the {self.name} device is closed")
        try:
            send_message(self._sock, request)
        except OSError as error:
            raise BackendError(f"{self.name} simulation stopped: {error}\n{self._log_tail()}")
        kind, value = self._receive()
        if kind == "error":
            raise BackendError(f"{self.name} simulation: {value}")
        return value

    # -- Device -----------------------------------------------------------------------------

    def write_dram(self, addr, data):
        data = as_dram_bytes(data).tobytes()
        self.check_dram_range(addr, len(data), "write")
        self._call("write_dram", addr, data)

    def read_dram(self, addr, length):
        self.check_dram_range(addr, length, "read")
        return np.frombuffer(self._call("read_dram", addr, length), dtype=np.uint8).copy()

    def close(self):
        if self._sock is not None:
            try:
                self._call("close")
            except (BackendError, OSError):
                pass
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            failed = self._process.returncode not in (0, None)
            self._process = None
            if not failed and self._run_dir is not None:
                shutil.rmtree(self._run_dir, ignore_errors=True)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
