"""Numpy golden models of every NPU operation, bit-exact with the hardware.

These are the numeric contract of ``ARCHITECTURE.md`` written as code: tests compare the RTL
and the instruction-level model with them.
"""

import numpy as np

__all__ = ["matmul_int8", "requantize", "REQUANT_SHIFT_MIN", "REQUANT_SHIFT_MAX",
           "INT8_MIN", "INT8_MAX", "INT32_MIN", "INT32_MAX"]

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
# The total right shift 31 + shift spans 0..62, so acc * multiplier (< 2**62 in magnitude)
# always fits an int64 and a shift never discards more bits than the product has.
REQUANT_SHIFT_MIN, REQUANT_SHIFT_MAX = -31, 31


def _check_integer_array(name, value, low, high):
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, not dtype {array.dtype}")
    if array.size and (array.min() < low or array.max() > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], "
                         f"got values in [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


def matmul_int8(a, b):
    """``a @ b`` for int8 matrices, accumulated in int32 (wrapping modulo 2**32 as the array does).

    Parameters
    ----------
    a : array of int8, shape (M, K)
    b : array of int8, shape (K, N)

    Returns
    -------
    array of int32, shape (M, N)
    """
    a = np.asarray(a)
    b = np.asarray(b)
    for name, value in (("a", a), ("b", b)):
        if value.dtype != np.int8:
            raise TypeError(f"{name} must have dtype int8, not {value.dtype}")
        if value.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, not shape {value.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    # Exact in int64 for K < 2**33; then wrap to int32 like the hardware's adders.
    exact = a.astype(np.int64) @ b.astype(np.int64)
    return exact.astype(np.uint64).astype(np.uint32).view(np.int32)


def requantize(acc, multiplier, shift, zero_point, qmin=INT8_MIN, qmax=INT8_MAX):
    """int32 accumulators to int8, per output channel (the last axis).

    ``y = clamp(round_half_even(acc * multiplier / 2**(31 + shift)) + zero_point, qmin, qmax)``

    Parameters
    ----------
    acc : array of int32, shape (..., C)
    multiplier : int or array of int, shape (C,)
        Signed 32-bit fixed-point multiplier per channel.
    shift : int or array of int, shape (C,)
        Extra right shift per channel, in [-31, 31] (negative shifts left).
    zero_point : int
        Output zero point, in [-128, 127].
    qmin, qmax : int
        Output clamp, ``-128 <= qmin <= qmax <= 127`` (covers no activation, ReLU, ReLU6).

    Returns
    -------
    array of int8, shape of ``acc``
    """
    acc_array = np.asarray(acc)
    if acc_array.dtype != np.int32:
        raise TypeError(f"acc must have dtype int32, not {acc_array.dtype}")
    channels = acc_array.shape[-1] if acc_array.ndim else 1
    multiplier = _check_integer_array("multiplier", multiplier, INT32_MIN, INT32_MAX)
    shift = _check_integer_array("shift", shift, REQUANT_SHIFT_MIN, REQUANT_SHIFT_MAX)
    for name, value in (("multiplier", multiplier), ("shift", shift)):
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, channels)):
            raise ValueError(f"{name} must be a scalar or have one value per channel "
                             f"({channels}), not shape {value.shape}")
    for name, value in (("zero_point", zero_point), ("qmin", qmin), ("qmax", qmax)):
        if not isinstance(value, (int, np.integer)) or not INT8_MIN <= value <= INT8_MAX:
            raise ValueError(f"{name} must be an integer in [-128, 127], not {value!r}")
    if qmin > qmax:
        raise ValueError(f"qmin ({qmin}) must not exceed qmax ({qmax})")

    product = acc_array.astype(np.int64) * multiplier
    total_shift = 31 + shift
    floor = product >> total_shift
    remainder = product - (floor << total_shift)
    # half is 0 when there is no shift: then the remainder is 0 and nothing rounds.
    half = np.where(total_shift > 0, np.left_shift(1, np.maximum(total_shift - 1, 0)), 0)
    round_up = (remainder > half) | ((remainder == half) & (half > 0) & (floor & 1 == 1))
    rounded = floor + round_up
    return np.clip(rounded + int(zero_point), qmin, qmax).astype(np.int8)
