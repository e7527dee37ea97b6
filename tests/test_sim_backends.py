"""The runtime on the simulated RTL (Verilator, Amaranth's simulator; Icarus where installed),
from a plain script.

Verilator and Icarus run in a subprocess, Amaranth's simulator in a thread, as a user's
script would use them. Results must be bit-exact with the golden model and with the
instruction-level model, and the byte counters must agree with the model's; faults and hangs
come back as named exceptions and the device recovers from both.
"""

import numpy as np
import pytest

from sim.build import available_simulators
from sw_runtime import Npu
from sw_runtime.assembler import compute, finish, load
from sw_runtime.device import run_program
from sw_runtime.errors import DeviceError, DeviceTimeout, NpuValueError
from sw_runtime.golden import matmul_int8

BACKENDS = [("verilator", 8), ("icarus", 4), ("amaranth", 4)]


@pytest.fixture(scope="module", params=[b for b in BACKENDS
                        if b[0] in (*available_simulators(), "amaranth")],
                ids=lambda b: f"{b[0]}-n{b[1]}")
def pair(request):
    simulator, n = request.param
    with Npu.open(simulator, n=n) as rtl, Npu.open("model", n=n) as model:
        yield rtl, model


def int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


@pytest.mark.parametrize("m, k, n", [(1, 20, 3), (19, 33, 10), (40, 16, 24)])
def test_matmul_is_exact_and_counts_like_the_model(pair, rng, m, k, n):
    rtl, model = pair
    a, b = int8(rng, (m, k)), int8(rng, (k, n))
    result = rtl.matmul(a, b)
    np.testing.assert_array_equal(result, matmul_int8(a, b))
    np.testing.assert_array_equal(model.matmul(a, b), result)
    for counter in ("bytes_read", "bytes_written", "array_active"):
        assert getattr(rtl.last_run, counter) == getattr(model.last_run, counter), counter
    print(f"{rtl.backend} {m}x{k}x{n}: {rtl.last_run}; model estimate "
          f"{model.last_run.cycles} cycles")


def test_qlinear_conv_is_bit_exact_with_the_model(pair, rng):
    rtl, model = pair
    x = rng.integers(0, 256, (1, 3, 7, 6), dtype=np.uint8)
    w = int8(rng, (5, 3, 3, 3))
    args = (x, 0.02, np.uint8(120), w, rng.uniform(0.005, 0.02, 5), np.zeros(5, np.int8),
            0.25, np.uint8(130), rng.integers(-500, 500, 5).astype(np.int32))
    options = dict(pads=(1, 1, 1, 1), strides=(2, 1))
    np.testing.assert_array_equal(rtl.qlinear_conv(*args, **options, relu=True),
                                  model.qlinear_conv(*args, **options, relu=True))


def test_a_fault_raises_its_code_and_the_device_recovers(pair, rng):
    rtl, _ = pair
    program = [load(target="SCRATCHPAD", sram_addr=0, dram_addr=0x1000, bytes_per_row=8,
                    rows=1),
               compute(weight_addr=rtl.hw.scratchpad_rows - 1, act_addr=0, rows=1, acc_addr=0),
               finish()]
    with pytest.raises(DeviceError) as raised:
        run_program(rtl.device, program, 0x10000)
    assert (raised.value.code, raised.value.index) == ("SRAM_RANGE", 1)
    a, b = int8(rng, (3, 5)), int8(rng, (5, 2))
    np.testing.assert_array_equal(rtl.matmul(a, b), matmul_int8(a, b))


def test_a_hang_times_out_and_the_device_recovers(pair, rng):
    rtl, _ = pair
    never = [compute(weight_addr=0, act_addr=0, rows=1, acc_addr=0, deps={"pop_prev"}),
             finish()]
    with pytest.raises(DeviceTimeout, match="still busy"):
        run_program(rtl.device, never, 0x10000, timeout_s=0.5)
    a, b = int8(rng, (4, 4)), int8(rng, (4, 4))
    np.testing.assert_array_equal(rtl.matmul(a, b), matmul_int8(a, b))


def test_dram_outside_the_device_is_refused(pair):
    rtl, _ = pair
    with pytest.raises(NpuValueError, match="outside the device"):
        rtl.device.read_dram(rtl.device.dram_size - 4, 8)


def test_config_registers_are_read_from_the_hardware(pair):
    rtl, model = pair
    assert rtl.hw == model.hw
