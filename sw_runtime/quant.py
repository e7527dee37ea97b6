"""Quantization arithmetic shared by the runtime, the model importer and the tests.

ONNX's QLinear operators describe requantization with float scales; the NPU applies a
fixed-point multiplier and shift (``golden.requantize``). ``requant_params`` converts one
into the other, and the zero-point helpers move uint8 tensors into the int8 domain the
array computes in (``u - 128`` is exact, and the zero point moves with it).
"""

from typing import NamedTuple

import numpy as np

from .errors import NpuShapeError, NpuTypeError, NpuValueError
from .golden import INT32_MAX, REQUANT_SHIFT_MAX, REQUANT_SHIFT_MIN

__all__ = ["requant_params", "to_int8_domain", "from_int8_domain", "check_quant_tensor",
           "check_scale", "check_zero_point", "check_output_zero_point", "QLinearParams",
           "check_qlinear_params"]

QUANT_DTYPES = (np.int8, np.uint8)


def requant_params(real_multiplier):
    """Fixed-point (multiplier, shift) arrays with ``multiplier * 2**-(31 + shift)`` closest
    to each positive real multiplier (relative error below 2**-31)."""
    real = np.atleast_1d(np.asarray(real_multiplier, dtype=np.float64))
    if not np.all(np.isfinite(real)) or np.any(real <= 0):
        raise NpuValueError(f"requantization multipliers must be finite and positive, got "
                            f"{real.min()} .. {real.max()}")
    mantissa, exponent = np.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    multiplier = np.round(mantissa * 2.0 ** 31).astype(np.int64)
    carry = multiplier > INT32_MAX
    multiplier[carry] //= 2
    exponent = exponent + carry
    shift = -exponent
    if np.any(shift < REQUANT_SHIFT_MIN):
        raise NpuValueError(f"requantization multiplier {real.max():g} is too large "
                            f"(at most 2**31)")
    tiny = shift > REQUANT_SHIFT_MAX
    if np.any(tiny):  # below 2**-32: keep the largest shift, scale the multiplier down
        multiplier[tiny] = np.round(real[tiny] * 2.0 ** (31 + REQUANT_SHIFT_MAX)).astype(np.int64)
        shift[tiny] = REQUANT_SHIFT_MAX
    return multiplier, shift.astype(np.int64)


def check_quant_tensor(name, value, ndim=None):
    array = np.asarray(value)
    if array.dtype not in QUANT_DTYPES:
        raise NpuTypeError(f"{name} must have dtype int8 or uint8, not {array.dtype}")
    if ndim is not None and array.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise NpuShapeError(f"{name} must have {ndim} dimensions, not shape {array.shape}")
    return array


def _check_count(name, array, channels, shape):
    """A scalar, or (when ``channels`` is given) one value or one per channel."""
    if array.ndim and array.size not in ((1,) if channels is None else (1, channels)):
        expected = "a scalar" if channels is None else f"a scalar or {channels} values"
        raise NpuShapeError(f"{name} must be {expected}, not shape {shape}")


def check_scale(name, value, channels=None):
    """A positive float scale: a scalar, or one per channel when ``channels`` is given."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype,
                                                                        np.integer):
        raise NpuTypeError(f"{name} must be a number, not dtype {array.dtype}")
    array = array.astype(np.float64).reshape(-1) if array.ndim else array.astype(np.float64)
    _check_count(name, array, channels, np.shape(value))
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise NpuValueError(f"{name} must be finite and positive, not {value!r}")
    return array


def check_zero_point(name, value, dtype, channels=None):
    """A zero point of the tensor's dtype: a scalar, or one per channel when allowed."""
    array = np.asarray(value)
    if array.dtype != dtype:
        raise NpuTypeError(f"{name} must have the dtype of its tensor ({np.dtype(dtype)}), "
                           f"not {array.dtype}")
    _check_count(name, array, channels, array.shape)
    return array.reshape(-1) if array.ndim else array


def check_output_zero_point(value):
    """The output zero point: an int8 or uint8 scalar, whose dtype is the output's."""
    array = np.asarray(value)
    if array.dtype not in QUANT_DTYPES or array.size != 1:
        raise NpuTypeError(f"y_zero_point must be an int8 or uint8 scalar, not "
                           f"{array.dtype} of shape {array.shape}")
    return array


class QLinearParams(NamedTuple):
    """The checked quantization arguments of a QLinear operator."""
    input_scale: np.ndarray
    input_zero_point: np.ndarray
    weight_scale: np.ndarray
    weight_zero_point: np.ndarray
    output_scale: np.ndarray
    output_zero_point: np.ndarray


def check_qlinear_params(names, input_tensor, weight, channels, input_scale, input_zero_point,
                         weight_scale, weight_zero_point, output_scale, output_zero_point):
    """Check an ONNX QLinear operator's scales and zero points (the weight's per tensor or
    per output channel); ``names`` are the operator's for its input and weight, as in
    ``("a", "b")``, so the messages name the argument the caller passed."""
    input_name, weight_name = names
    return QLinearParams(
        check_scale(f"{input_name}_scale", input_scale),
        check_zero_point(f"{input_name}_zero_point", input_zero_point, input_tensor.dtype),
        check_scale(f"{weight_name}_scale", weight_scale, channels),
        check_zero_point(f"{weight_name}_zero_point", weight_zero_point, weight.dtype,
                         channels),
        check_scale("y_scale", output_scale),
        check_output_zero_point(output_zero_point))


def to_int8_domain(array):
    """uint8 -> int8 by subtracting 128 (int8 unchanged); returns (int8 array, offset)."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return (array.astype(np.int16) - 128).astype(np.int8), 128
    return array.astype(np.int8), 0


def from_int8_domain(array, dtype):
    if np.dtype(dtype) == np.uint8:
        return (array.astype(np.int16) + 128).astype(np.uint8)
    return array
