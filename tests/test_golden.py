"""The golden models against independent references: Python integers and exact fractions."""

from fractions import Fraction

import numpy as np
import pytest

from sw_runtime.golden import (INT32_MAX, INT32_MIN, REQUANT_SHIFT_MAX, REQUANT_SHIFT_MIN,
                               matmul_int8, requantize)


def reference_requantize(acc, multiplier, shift, zero_point, qmin, qmax):
    """One value, by exact rational arithmetic; Python's round() on a Fraction is half-even."""
    scaled = round(Fraction(int(acc) * int(multiplier), 2 ** (31 + int(shift))))
    return max(qmin, min(qmax, scaled + zero_point))


def reference_matmul(a, b):
    m, k = a.shape
    n = b.shape[1]
    out = [[sum(int(a[i, t]) * int(b[t, j]) for t in range(k)) for j in range(n)]
           for i in range(m)]
    # int32 wrap-around, written independently of the model's numpy casts.
    return [[(v + 2 ** 31) % 2 ** 32 - 2 ** 31 for v in row] for row in out]


@pytest.fixture
def rng(request):
    seed = abs(hash(request.node.name)) % 2 ** 32
    print(f"seed={seed}")
    return np.random.default_rng(seed)


def test_matmul_matches_python_integers(rng):
    for _ in range(20):
        m, k, n = rng.integers(1, 12, size=3)
        a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
        assert matmul_int8(a, b).tolist() == reference_matmul(a, b)


def test_matmul_extremes():
    a = np.full((2, 64), -128, dtype=np.int8)
    b = np.full((64, 3), -128, dtype=np.int8)
    assert (matmul_int8(a, b) == 64 * 16384).all()
    b[:, 1] = 127
    assert (matmul_int8(a, b)[:, 1] == 64 * -128 * 127).all()


def test_matmul_wraps_like_int32():
    # 2**17 products of 2**14 exceed int32: the hardware's adders wrap.
    a = np.full((1, 2 ** 17), -128, dtype=np.int8)
    b = np.full((2 ** 17, 1), -128, dtype=np.int8)
    assert matmul_int8(a, b)[0, 0] == INT32_MIN
    assert matmul_int8(a[:, : 2 ** 17 - 1], b[: 2 ** 17 - 1])[0, 0] == \
        ((2 ** 17 - 1) * 2 ** 14 + 2 ** 31) % 2 ** 32 - 2 ** 31


@pytest.mark.parametrize("bad, message", [
    (dict(a=np.zeros((2, 2), np.int16)), "a must have dtype int8"),
    (dict(b=np.zeros((2,), np.int8)), "b must be a 2-D matrix"),
    (dict(b=np.zeros((3, 2), np.int8)), "inner dimensions differ"),
])
def test_matmul_rejects_bad_input(bad, message):
    args = dict(a=np.zeros((2, 2), np.int8), b=np.zeros((2, 2), np.int8)) | bad
    with pytest.raises((TypeError, ValueError), match=message):
        matmul_int8(**args)


def check_requantize(acc, multiplier, shift, zero_point=0, qmin=-128, qmax=127):
    acc = np.asarray(acc, dtype=np.int32).reshape(-1, 1)
    got = requantize(acc, [multiplier], [shift], zero_point, qmin, qmax)
    expected = [reference_requantize(v, multiplier, shift, zero_point, qmin, qmax)
                for v in acc[:, 0]]
    assert got.dtype == np.int8
    assert got[:, 0].tolist() == expected, (multiplier, shift, zero_point, qmin, qmax)


def test_requantize_ties_round_half_to_even():
    # multiplier 2**30 with shift 0 halves: x.5 cases for every odd acc.
    acc = np.arange(-9, 10)
    got = requantize(acc.astype(np.int32).reshape(-1, 1), [2 ** 30], [0], 0)[:, 0]
    # -4.5 -4 -3.5 -3 -2.5 -2 -1.5 -1 -0.5 0 0.5 1 1.5 2 2.5 3 3.5 4 4.5
    assert got.tolist() == [-4, -4, -4, -3, -2, -2, -2, -1, 0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 4]
    check_requantize(np.arange(-50, 50), 2 ** 30, 0)
    # Quarter: ties at x.5 again through the shift.
    check_requantize(np.arange(-50, 50), 2 ** 30, 1)


def test_requantize_saturates_and_clamps():
    check_requantize([INT32_MAX, INT32_MIN, 1000, -1000, 127, -128, 128, -129], 2 ** 31 - 1, 0)
    # ReLU and ReLU6-like clamps with a zero point.
    check_requantize(np.arange(-300, 300, 7), 2 ** 30, 0, zero_point=-5, qmin=-5, qmax=127)
    check_requantize(np.arange(-300, 300, 7), 2 ** 30, 0, zero_point=3, qmin=3, qmax=50)


@pytest.mark.parametrize("multiplier", [INT32_MIN, INT32_MIN + 1, -1, 0, 1, 2 ** 30,
                                        INT32_MAX])
@pytest.mark.parametrize("shift", [REQUANT_SHIFT_MIN, -1, 0, 1, 17, REQUANT_SHIFT_MAX])
@pytest.mark.parametrize("zero_point", [-128, 0, 127])
def test_requantize_field_extremes(multiplier, shift, zero_point):
    acc = [INT32_MIN, INT32_MIN + 1, -(2 ** 20) - 1, -3, -1, 0, 1, 3, 2 ** 20 + 1,
           INT32_MAX - 1, INT32_MAX]
    check_requantize(acc, multiplier, shift, zero_point)
    check_requantize(acc, multiplier, shift, zero_point, qmin=-128, qmax=-128)
    check_requantize(acc, multiplier, shift, zero_point, qmin=127, qmax=127)


def test_requantize_random_per_channel(rng):
    for _ in range(50):
        channels = int(rng.integers(1, 17))
        acc = rng.integers(INT32_MIN, INT32_MAX, size=(5, channels), endpoint=True,
                           dtype=np.int64).astype(np.int32)
        multiplier = rng.integers(INT32_MIN, INT32_MAX, size=channels, endpoint=True)
        shift = rng.integers(REQUANT_SHIFT_MIN, REQUANT_SHIFT_MAX, size=channels,
                             endpoint=True)
        zero_point = int(rng.integers(-128, 128))
        qmin, qmax = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        got = requantize(acc, multiplier, shift, zero_point, qmin, qmax)
        for c in range(channels):
            expected = [reference_requantize(v, multiplier[c], shift[c], zero_point, qmin,
                                             qmax) for v in acc[:, c]]
            assert got[:, c].tolist() == expected


@pytest.mark.parametrize("kwargs, message", [
    (dict(acc=np.zeros((1, 2), np.int64)), "acc must have dtype int32"),
    (dict(multiplier=[2 ** 31]), r"multiplier must lie in \[-2147483648, 2147483647\]"),
    (dict(shift=[32]), r"shift must lie in \[-31, 31\]"),
    (dict(shift=[0, 0, 0]), "shift must be a scalar or have one value per channel"),
    (dict(multiplier=[1.5]), "multiplier must be an integer array"),
    (dict(zero_point=128), "zero_point must be an integer in"),
    (dict(qmin=5, qmax=4), "qmin .5. must not exceed qmax .4."),
])
def test_requantize_rejects_bad_input(kwargs, message):
    args = dict(acc=np.zeros((1, 2), np.int32), multiplier=[1], shift=[0], zero_point=0)
    with pytest.raises((TypeError, ValueError), match=message):
        requantize(**(args | kwargs))
