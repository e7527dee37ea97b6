"""The runtime API on the instruction-level model: exact matmuls of any shape, ONNX QLinear
operators within 1 LSB of ONNX's reference evaluator, and named errors for bad input.

Random operands come from the session seed (printed in the header; NPU_SEED re-runs it).
"""

import numpy as np
import pytest

from rtl.config import NpuConfig
from sw_runtime import Npu
from sw_runtime.errors import (DeviceMemoryError, NpuShapeError, NpuTypeError, NpuValueError)
from sw_runtime.golden import matmul_int8

from onnx_reference import qlinear_conv as reference_qlinear_conv
from onnx_reference import qlinear_matmul as reference_qlinear_matmul

# A small device: K and the columns outgrow the scratchpad, accumulator and quant table, so
# K is chunked, column tiles are grouped and quant rows are reloaded.
SMALL = NpuConfig(n=4, scratchpad_depth=256, accumulator_depth=64, quant_table_depth=4)


@pytest.fixture(scope="module")
def npu():
    with Npu.open("model") as device:
        yield device


@pytest.fixture(scope="module")
def small_npu():
    with Npu.open("model", config=SMALL) as device:
        yield device


def int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (1, 300, 9), (8, 8, 8), (5, 7, 3),
                                     (33, 70, 19), (300, 9, 17), (1500, 16, 8), (64, 64, 64)])
def test_matmul_is_exact(npu, rng, m, k, n):
    a, b = int8(rng, (m, k)), int8(rng, (k, n))
    np.testing.assert_array_equal(npu.matmul(a, b), matmul_int8(a, b))
    assert npu.last_run.array_active > 0 and npu.last_run.cycles > npu.last_run.array_active


@pytest.mark.parametrize("m, k, n", [(3, 700, 5), (40, 300, 37), (1, 2000, 2), (70, 9, 30)])
def test_matmul_when_operands_outgrow_the_memories(small_npu, rng, m, k, n):
    a, b = int8(rng, (m, k)), int8(rng, (k, n))
    np.testing.assert_array_equal(small_npu.matmul(a, b), matmul_int8(a, b))


def test_matmul_of_a_vector(npu, rng):
    a, b = int8(rng, (20,)), int8(rng, (20, 6))
    np.testing.assert_array_equal(npu.matmul(a, b), matmul_int8(a[None], b)[0])


def test_extreme_values_accumulate_exactly(npu):
    a = np.full((9, 1000), -128, np.int8)
    b = np.full((1000, 9), -128, np.int8)
    np.testing.assert_array_equal(npu.matmul(a, b), np.full((9, 9), 16384 * 1000, np.int32))


def quantized(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape, dtype=dtype)


def zero_point(rng, dtype, size=None):
    low, high = (-20, 20) if dtype == np.int8 else (100, 160)
    value = rng.integers(low, high, size=size)
    return np.asarray(value, dtype=dtype)


def assert_within_one(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    difference = np.abs(actual.astype(np.int32) - expected.astype(np.int32))
    assert difference.max(initial=0) <= 1, f"{(difference > 1).sum()} outputs differ by > 1"


# The type combinations ONNX runtimes implement: int8 x int8 -> int8, uint8 x (u)int8 -> uint8.
@pytest.mark.parametrize("a_dtype, b_dtype, y_dtype, per_column, b_zero", [
    (np.int8, np.int8, np.int8, False, False),
    (np.uint8, np.int8, np.uint8, True, False),
    (np.uint8, np.uint8, np.uint8, True, False),
    (np.uint8, np.uint8, np.uint8, False, True),   # weight zero point: host correction
    (np.int8, np.int8, np.int8, True, True),
])
def test_qlinear_matmul_matches_onnx_reference(npu, rng, a_dtype, b_dtype, y_dtype, per_column,
                                            b_zero):
    m, k, n = 23, 50, 13
    a, b = quantized(rng, a_dtype, (m, k)), quantized(rng, b_dtype, (k, n))
    a_scale = np.float32(rng.uniform(0.01, 0.05))
    b_scale = np.asarray(rng.uniform(0.005, 0.02, n if per_column else None), np.float32)
    y_scale = np.float32(rng.uniform(0.5, 2.0))
    a_zero = zero_point(rng, a_dtype)
    b_zero = zero_point(rng, b_dtype, n if per_column else None) if b_zero else \
        np.asarray(128 if b_dtype == np.uint8 else 0, dtype=b_dtype)
    y_zero = zero_point(rng, y_dtype)
    args = (a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero)
    assert_within_one(npu.qlinear_matmul(*args), reference_qlinear_matmul(*args))


def test_qlinear_matmul_batched_and_relu(npu, rng):
    a = quantized(rng, np.int8, (2, 3, 9, 20))
    b = quantized(rng, np.int8, (20, 11))
    args = (a, np.float32(0.03), np.int8(3), b, np.float32(0.01), np.int8(0), np.float32(0.4),
            np.int8(-5))
    expected = reference_qlinear_matmul(*args)
    assert_within_one(npu.qlinear_matmul(*args), expected)
    relu = npu.qlinear_matmul(*args, relu=True)
    assert_within_one(relu, np.maximum(expected, np.int8(-5)))


@pytest.mark.parametrize("case", [
    dict(shape=(1, 1, 8, 8), w=(4, 1, 3, 3)),
    dict(shape=(2, 3, 9, 7), w=(5, 3, 3, 3), pads=(1, 1, 1, 1), bias=True),
    dict(shape=(1, 4, 10, 10), w=(6, 4, 3, 3), strides=(2, 2), pads=(1, 0, 2, 1),
         per_channel=True, x_dtype=np.uint8, y_dtype=np.uint8, bias=True),
    dict(shape=(1, 4, 11, 9), w=(4, 2, 3, 2), dilations=(2, 1), group=2, per_channel=True),
    dict(shape=(1, 6, 7, 7), w=(6, 1, 3, 3), group=6, pads=(1, 1, 1, 1), bias=True),
    dict(shape=(1, 16, 5, 5), w=(20, 16, 1, 1), per_channel=True, x_dtype=np.uint8,
         y_dtype=np.uint8),
])
def test_qlinear_conv_matches_onnx_reference(npu, rng, case):
    # ONNX runtimes implement int8 x int8 -> int8 and uint8 x (u)int8 -> uint8.
    x_dtype = case.get("x_dtype", np.int8)
    y_dtype = case.get("y_dtype", np.int8)
    out_channels = case["w"][0]
    x = quantized(rng, x_dtype, case["shape"])
    w = quantized(rng, np.int8, case["w"])
    per_channel = out_channels if case.get("per_channel") else None
    w_scale = np.asarray(rng.uniform(0.005, 0.02, per_channel))
    bias = rng.integers(-2000, 2000, out_channels).astype(np.int32) if case.get("bias") else None
    args = (x, np.float32(0.02), zero_point(rng, x_dtype), w, w_scale.astype(np.float32),
            np.zeros(out_channels if case.get("per_channel") else (), np.int8),
            np.float32(0.3), zero_point(rng, y_dtype), bias)
    options = {key: case[key] for key in ("strides", "pads", "dilations", "group") if key in case}
    expected = reference_qlinear_conv(*args, **options)
    actual = npu.qlinear_conv(*args, **options)
    assert_within_one(actual, expected)
    assert npu.last_run.array_active > 0


# -- bad input --------------------------------------------------------------------------------

def test_wrong_dtype_is_named(npu):
    with pytest.raises(NpuTypeError, match="a must have dtype int8, not float32"):
        npu.matmul(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int8))
    with pytest.raises(NpuTypeError, match="a_zero_point must have the dtype of its tensor"):
        npu.qlinear_matmul(np.zeros((2, 2), np.uint8), 0.1, np.int8(0),
                           np.zeros((2, 2), np.int8), 0.1, np.int8(0), 0.1, np.int8(0))


def test_shape_mismatch_is_named(npu):
    with pytest.raises(NpuShapeError, match=r"inner dimensions differ: a is \(2, 3\)"):
        npu.matmul(np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8))
    with pytest.raises(NpuShapeError, match="w has 2 input channels per group"):
        npu.qlinear_conv(np.zeros((1, 3, 4, 4), np.int8), 0.1, np.int8(0),
                         np.zeros((2, 2, 3, 3), np.int8), 0.1, np.int8(0), 0.1, np.int8(0))


def test_scales_and_zero_points_of_the_wrong_size_are_named(npu):
    a, b = np.zeros((2, 3), np.int8), np.zeros((3, 4), np.int8)
    with pytest.raises(NpuShapeError, match="b_scale must be a scalar or 4 values"):
        npu.qlinear_matmul(a, 0.1, np.int8(0), b, np.ones(3) * 0.1, np.int8(0), 0.1, np.int8(0))
    with pytest.raises(NpuShapeError, match="a_scale must be a scalar"):
        npu.qlinear_matmul(a, [0.1, 0.2], np.int8(0), b, 0.1, np.int8(0), 0.1, np.int8(0))
    with pytest.raises(NpuShapeError, match="b_zero_point must be a scalar or 4 values"):
        npu.qlinear_matmul(a, 0.1, np.int8(0), b, 0.1, np.zeros(2, np.int8), 0.1, np.int8(0))
    with pytest.raises(NpuValueError, match="y_scale must be finite and positive"):
        npu.qlinear_matmul(a, 0.1, np.int8(0), b, 0.1, np.int8(0), -1.0, np.int8(0))


def test_a_tensor_too_large_for_device_memory_is_named():
    with Npu.open("model", dram_size=1 << 16) as small:
        with pytest.raises(DeviceMemoryError, match="needs .* bytes of device DRAM"):
            small.matmul(np.zeros((300, 300), np.int8), np.zeros((300, 8), np.int8))


def test_an_unknown_backend_is_named():
    with pytest.raises(NpuValueError, match="unknown backend 'gpu'"):
        Npu.open("gpu")
