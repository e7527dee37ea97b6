"""The raw Verilator harness (``make bench``'s speed ceiling) runs the runtime's program for
real: the firmware driver over AXI4-Lite, DRAM behind the C++ AXI4 subordinate, the bytes read
back equal to the instruction-level model's and the counters equal to its counts."""

import dataclasses

import numpy as np
import pytest

from rtl.config import NpuConfig
from sim.raw_verilator import build_raw, record, run_raw
from sw_runtime.golden import matmul_int8

CONFIG = NpuConfig(n=4)


@pytest.fixture(scope="module")
def harness():
    return build_raw(CONFIG)


def test_replays_a_matmul_like_the_model(harness, rng):
    a = rng.integers(-128, 128, (16, 24), dtype=np.int8)
    b = rng.integers(-128, 128, (24, 20), dtype=np.int8)
    results = {}
    recording = record(CONFIG, lambda npu: results.update(
        product=npu.matmul(a, b), stats=npu.last_run))
    np.testing.assert_array_equal(results["product"], matmul_int8(a, b))
    figures = run_raw(harness, recording, repeats=3)  # raises if any byte read back differs
    assert figures["status"] == 0 and figures["repeats"] == 3
    for counter in ("array_active", "bytes_read", "bytes_written"):
        assert figures[counter] == getattr(results["stats"], counter), counter
    assert figures["sim_cycles"] >= 3 * figures["cycles"]
    print(f"raw verilator: {figures}")


def test_a_wrong_readback_is_caught(harness, rng):
    a = rng.integers(-128, 128, (4, 8), dtype=np.int8)
    recording = record(CONFIG, lambda npu: npu.matmul(a, a.T.copy()))
    addr, data = recording.readback[0]
    corrupted = bytearray(data)
    corrupted[0] ^= 1
    recording = dataclasses.replace(recording, readback=[(addr, bytes(corrupted))])
    with pytest.raises(AssertionError, match="differs from the model"):
        run_raw(harness, recording)
