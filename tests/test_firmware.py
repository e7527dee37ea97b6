"""The C driver in firmware/, compiled and exercised for real: its register reads and writes
are routed (through ctypes callbacks) to the instruction-level model, which runs the
programs the compiler makes."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from sw_runtime.assembler import compute, encode_program, finish
from sw_runtime.compiler import GemmLayout, gemm_program, pack_a, pack_w, plan_gemm, unpack_c
from sw_runtime.golden import matmul_int8
from sw_runtime.model import ModelDevice
from sw_runtime.registers import REGISTERS
from sim.build import BUILD_ROOT, REPO_ROOT

FIRMWARE = REPO_ROOT / "firmware"
READ32 = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32)
WRITE32 = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)
NPU_OK, NPU_ERR_DEVICE, NPU_ERR_TIMEOUT = 0, -3, -4


class Bus(ctypes.Structure):
    _fields_ = [("read32", READ32), ("write32", WRITE32), ("context", ctypes.c_void_p)]


class Config(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in (
        "n", "bus_bytes", "queue_depth", "scratchpad_rows", "accumulator_rows", "quant_rows")]


class Counters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in (
        "cycles", "array_active", "load_busy", "store_busy", "compute_stall", "bytes_read",
        "bytes_written")]


class Npu(ctypes.Structure):
    _fields_ = [("bus", Bus), ("config", Config), ("error_code", ctypes.c_uint32),
                ("error_index", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def driver():
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is assumed (see README)"
    out = BUILD_ROOT / "firmware" / "libnpu_driver.so"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared",
                    "-fPIC", "-I", str(FIRMWARE / "include"), str(FIRMWARE / "src" /
                                                                 "npu_driver.c"),
                    "-o", str(out)], check=True)
    library = ctypes.CDLL(str(out))
    library.npu_init.argtypes = [ctypes.POINTER(Npu), Bus]
    for name, args in (("npu_run", [ctypes.c_uint32] * 3), ("npu_wait", [ctypes.c_uint32])):
        getattr(library, name).argtypes = [ctypes.POINTER(Npu)] + args
    library.npu_read_counters.argtypes = [ctypes.POINTER(Npu), ctypes.POINTER(Counters)]
    return library


def connect(driver, read32, write32):
    """An npu_t whose bus calls the given Python functions; keep the result alive."""
    callbacks = (READ32(lambda _, offset: read32(offset)),
                 WRITE32(lambda _, offset, value: write32(offset, value)))
    npu = Npu()
    assert driver.npu_init(ctypes.byref(npu), Bus(callbacks[0], callbacks[1], None)) == NPU_OK
    return npu, callbacks


def test_runs_a_compiled_gemm_and_reads_the_counters(driver, rng):
    device = ModelDevice(n=8)
    npu, _keep = connect(driver, device.read32, device.write32)
    assert (npu.config.n, npu.config.scratchpad_rows) == (8, 2048)
    hw = device.hardware_config()
    m, k, cols = 30, 40, 20
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, cols), dtype=np.int8)
    layout = GemmLayout(a=0x1000, w=0x4000, c=0x8000)
    program = gemm_program(hw, plan_gemm(hw, m, k, cols, raw=True), layout, raw=True)
    device.write_dram(layout.a, pack_a(a, 8))
    device.write_dram(layout.w, pack_w(w, 8))
    device.write_dram(0x20000, encode_program(program))
    assert driver.npu_run(ctypes.byref(npu), 0x20000, len(program), 1000) == NPU_OK
    c = unpack_c(device.read_dram(layout.c, 3 * m * 8 * 4).tobytes(), m, cols, 8, "<i4")
    np.testing.assert_array_equal(c, matmul_int8(a, w))
    counters = Counters()
    driver.npu_read_counters(ctypes.byref(npu), ctypes.byref(counters))
    assert counters.array_active == m * 5 * 3  # rows x K tiles x column tiles
    assert counters.bytes_written == 3 * m * 8 * 4
    assert counters.cycles > counters.array_active


def test_a_device_error_returns_its_code_and_index_and_resets(driver):
    device = ModelDevice(n=8)
    npu, _keep = connect(driver, device.read32, device.write32)
    program = [compute(weight_addr=0, act_addr=0, rows=1, acc_addr=0),
               compute(weight_addr=0, act_addr=2047, rows=2, acc_addr=0), finish()]
    device.write_dram(0x20000, encode_program(program))
    assert driver.npu_run(ctypes.byref(npu), 0x20000, len(program), 1000) == NPU_ERR_DEVICE
    codes = REGISTERS["ERROR_CODE"]["fields"]["code"]["enum"]
    assert (npu.error_code, npu.error_index) == (codes["SRAM_RANGE"], 1)
    assert device.registers.read("STATUS") == {"busy": 0, "done": 0, "error": 0}


def test_a_device_that_stays_busy_times_out_and_is_reset(driver):
    writes = []
    status = REGISTERS["STATUS"]["offset"]
    values = {0: REGISTERS["ID"]["fields"]["magic"]["reset"], status: 1}
    npu, _keep = connect(driver, lambda offset: values.get(offset, 0),
                         lambda offset, value: writes.append((offset, value)))
    assert driver.npu_wait(ctypes.byref(npu), 50) == NPU_ERR_TIMEOUT
    assert (REGISTERS["CTRL"]["offset"], 2) in writes  # soft_reset
