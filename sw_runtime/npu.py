"""The public API: ``Npu.open(backend)`` and int8 operators on numpy arrays.

::

    from sw_runtime import Npu
    with Npu.open("verilator", n=8) as npu:
        c = npu.matmul(a, b)          # exact int32 product of int8 matrices
        print(npu.last_run)           # cycles, utilization, bytes of that call

Every operator becomes one GEMM per group (``sw_runtime.compiler``): operands are packed into
the compiler's tiled DRAM layouts, the program runs on the device, and the result is read
back. Zero points of uint8 activations are folded into the bias; weight zero points other
than 0 (in the int8 domain) are corrected on the host from the raw int32 sums.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from rtl.isa import INSTRUCTION_BYTES

from .compiler import (ACC_BYTES, QUANT_BYTES, GemmLayout, gemm_program, im2col, out_bytes,
                       pack_a, pack_quant, pack_w, plan_gemm, unpack_c)
from .device import RunStats, run_program
from .errors import DeviceMemoryError, NpuShapeError, NpuTypeError, NpuValueError
from .golden import INT8_MAX, INT8_MIN, requantize
from .model import check_program
from .quant import (check_qlinear_params, check_quant_tensor, from_int8_domain, requant_params,
                    to_int8_domain)

__all__ = ["Npu", "BACKENDS"]

BACKENDS = ("model", "verilator", "icarus", "amaranth")
DATA_BASE = 0x1000
ALIGN = 64


@dataclass(frozen=True)
class Requant:
    """Per-column requantization of a GEMM's int32 sums to int8."""
    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int = INT8_MIN
    qmax: int = INT8_MAX


def _sum_stats(runs):
    if len(runs) == 1:
        return runs[0]
    total = {name: sum(getattr(r, name) for r in runs)
             for name in ("cycles", "array_active", "load_busy", "store_busy", "compute_stall",
                          "bytes_read", "bytes_written", "instructions", "wall_seconds")}
    return RunStats(**total)


def _measured(operator):
    """An operator whose programs' counters, summed, become ``last_run``."""
    @functools.wraps(operator)
    def measured(self, *args, **kwargs):
        self._runs = []
        result = operator(self, *args, **kwargs)
        self.last_run = _sum_stats(self._runs)
        return result
    return measured


def _open_device(backend, n, options):
    if backend == "model":
        from .model import ModelDevice
        return ModelDevice(n=n, **options)
    if backend in ("verilator", "icarus"):
        from .sim_device import SimDevice
        return SimDevice(backend, n=n, **options)
    if backend == "amaranth":
        from .amaranth_device import AmaranthDevice
        return AmaranthDevice(n=n, **options)
    raise NpuValueError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")


class Npu:
    """An NPU device and the operators that run on it."""

    def __init__(self, device, *, check_programs=None, timeout_s=600.0):
        self.device = device
        self.hw = device.hardware_config()
        # The model checks every program as it runs it; other backends check them first.
        self.check_programs = (device.name != "model") if check_programs is None \
            else check_programs
        self.timeout_s = timeout_s
        self.last_run = None
        self._runs = []

    @classmethod
    def open(cls, backend="model", *, n=None, **options):
        """Open a backend: ``"model"``, ``"verilator"``, ``"icarus"`` or ``"amaranth"``.

        ``n`` picks the array size where the backend builds hardware (default 8; the
        simulators build and cache one design per configuration)."""
        return cls(_open_device(backend, n, options))

    def close(self):
        self.device.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def backend(self):
        return self.device.name

    # -- operators ---------------------------------------------------------------------------

    @_measured
    def matmul(self, a, b):
        """Exact int32 ``a @ b`` of int8 matrices (``a`` may be a vector)."""
        a, b = np.asarray(a), np.asarray(b)
        for name, value in (("a", a), ("b", b)):
            if value.dtype != np.int8:
                raise NpuTypeError(f"matmul: {name} must have dtype int8, not {value.dtype}")
        vector = a.ndim == 1
        if vector:
            a = a[None, :]
        if a.ndim != 2 or b.ndim != 2:
            raise NpuShapeError(f"matmul: a must be 1-D or 2-D and b 2-D, not shapes "
                                f"{a.shape} and {b.shape}")
        if a.shape[1] != b.shape[0]:
            raise NpuShapeError(f"matmul: inner dimensions differ: a is {a.shape}, "
                                f"b is {b.shape}")
        result = self._gemm(a, b, None, None)
        return result[0] if vector else result

    @_measured
    def qlinear_matmul(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                       y_zero_point, *, relu=False):
        """ONNX QLinearMatMul: int8/uint8 ``a`` (..., M, K) times ``b`` (K, N) or batched
        (..., K, N); ``b_scale``/``b_zero_point`` per tensor or per output column."""
        a = check_quant_tensor("a", a)
        b = check_quant_tensor("b", b)
        if a.ndim < 1 or b.ndim < 2:
            raise NpuShapeError(f"qlinear_matmul: a must have at least 1 dimension and b 2, "
                                f"not shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise NpuShapeError(f"qlinear_matmul: inner dimensions differ: a is {a.shape}, "
                                f"b is {b.shape}")
        cols = b.shape[-1]
        a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point = \
            check_qlinear_params(("a", "b"), a, b, cols, a_scale, a_zero_point, b_scale,
                                 b_zero_point, y_scale, y_zero_point)
        lead = a.shape[:-2] if a.ndim >= 2 else ()
        batch = np.broadcast_shapes(lead, b.shape[:-2]) if b.ndim > 2 else lead
        a_rows = a.reshape(-1, a.shape[-1]) if b.ndim == 2 else None
        if b.ndim == 2:
            out = self._qgemm(a_rows, a_zero_point, b, b_zero_point, None,
                              a_scale * b_scale / y_scale, y_zero_point, relu)
            out = out.reshape(a.shape[:-1] + (cols,))
        else:
            a_b = np.broadcast_to(a if a.ndim >= 2 else a[None, :],
                                  batch + (a.shape[-2] if a.ndim >= 2 else 1, a.shape[-1]))
            b_b = np.broadcast_to(b, batch + b.shape[-2:])
            outs = [self._qgemm(x, a_zero_point, w, b_zero_point, None,
                                a_scale * b_scale / y_scale, y_zero_point, relu)
                    for x, w in zip(a_b.reshape((-1,) + a_b.shape[-2:]),
                                    b_b.reshape((-1,) + b_b.shape[-2:]))]
            out = np.stack(outs).reshape(batch + (a_b.shape[-2], cols))
            if a.ndim == 1:
                out = out[..., 0, :]
        return out

    @_measured
    def qlinear_conv(self, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
                     y_zero_point, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                     dilations=(1, 1), group=1, *, relu=False):
        """ONNX QLinearConv on NCHW tensors (2-D convolution), via im2col and the GEMM."""
        x = check_quant_tensor("x", x, 4)
        w = check_quant_tensor("w", w, 4)
        batch, channels, height, width = x.shape
        out_channels, group_channels, kernel_h, kernel_w = w.shape
        if not isinstance(group, (int, np.integer)) or group < 1 or channels % group or \
                out_channels % group:
            raise NpuShapeError(f"qlinear_conv: group={group!r} must divide the input "
                                f"channels ({channels}) and output channels ({out_channels})")
        if group_channels != channels // group:
            raise NpuShapeError(f"qlinear_conv: w has {group_channels} input channels per "
                                f"group, x has {channels} / group {group}")
        strides, dilations, pads = tuple(strides), tuple(dilations), tuple(pads)
        if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4 or \
                min(strides + dilations) < 1 or min(pads) < 0:
            raise NpuShapeError(f"qlinear_conv: strides {strides} and dilations {dilations} "
                                f"need two positive values, pads {pads} four non-negative")
        x_scale, x_zero_point, w_scale, w_zero_point, y_scale, y_zero_point = \
            check_qlinear_params(("x", "w"), x, w, out_channels, x_scale, x_zero_point, w_scale,
                                 w_zero_point, y_scale, y_zero_point)
        if bias is not None:
            bias = np.asarray(bias)
            if bias.dtype != np.int32:
                raise NpuTypeError(f"bias must have dtype int32, not {bias.dtype}")
            if bias.shape != (out_channels,):
                raise NpuShapeError(f"bias must have shape ({out_channels},), not {bias.shape}")
        top, left, bottom, right = pads
        out_h = (height + top + bottom - dilations[0] * (kernel_h - 1) - 1) // strides[0] + 1
        out_w = (width + left + right - dilations[1] * (kernel_w - 1) - 1) // strides[1] + 1
        if out_h < 1 or out_w < 1:
            raise NpuShapeError(f"qlinear_conv: the {kernel_h}x{kernel_w} kernel does not fit "
                                f"the padded {height}x{width} input")
        # Pad with the zero point: padding stands for real zeros.
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)),
                        constant_values=x_zero_point.reshape(-1)[0])
        w_scale_full = np.broadcast_to(w_scale, (out_channels,))
        w_zero_full = np.broadcast_to(w_zero_point, (out_channels,))
        per_group = out_channels // group
        outputs = []
        for g in range(group):
            channel_slice = slice(g * group_channels, (g + 1) * group_channels)
            cols = im2col(padded[:, channel_slice], kernel_h, kernel_w, strides, dilations,
                           out_h, out_w)
            out_slice = slice(g * per_group, (g + 1) * per_group)
            weights = w[out_slice].reshape(per_group, -1).T
            outputs.append(self._qgemm(
                cols, x_zero_point, weights, w_zero_full[out_slice],
                None if bias is None else bias[out_slice],
                x_scale * w_scale_full[out_slice] / y_scale, y_zero_point, relu))
        out = np.concatenate(outputs, axis=1)  # (batch * out_h * out_w, out_channels)
        return np.ascontiguousarray(
            out.reshape(batch, out_h, out_w, out_channels).transpose(0, 3, 1, 2))

    # -- GEMM -----------------------------------------------------------------------------------

    def _qgemm(self, a, a_zero_point, b, b_zero_point, bias, real_multiplier, y_zero_point,
               relu):
        """Quantized GEMM in ONNX semantics; returns the output in y_zero_point's dtype."""
        a8, a_offset = to_int8_domain(a)
        b8, b_offset = to_int8_domain(b)
        a_zero = int(np.asarray(a_zero_point).reshape(-1)[0]) - a_offset
        b_zero = np.asarray(b_zero_point).astype(np.int64).reshape(-1) - b_offset
        y_dtype = y_zero_point.dtype
        y_zero = int(y_zero_point.reshape(-1)[0]) - (128 if y_dtype == np.uint8 else 0)
        cols = b8.shape[1]
        multiplier, shift = requant_params(np.broadcast_to(real_multiplier, (cols,)))
        qmin = max(INT8_MIN, y_zero) if relu else INT8_MIN
        user_bias = np.zeros(cols, np.int64) if bias is None else bias.astype(np.int64)
        # sum_k (a - za)(b - zb) = a.b - za * colsum(b) - zb * rowsum(a) + K za zb
        col_sums = b8.astype(np.int64).sum(axis=0)
        folded = user_bias - a_zero * col_sums + a8.shape[1] * a_zero * b_zero
        if np.any(b_zero != 0):
            # A weight zero point makes a per-row term: add it to the raw sums on the host.
            acc = self._gemm(a8, b8, _wrap_int32(folded), None).astype(np.int64)
            acc -= np.outer(a8.astype(np.int64).sum(axis=1), np.broadcast_to(b_zero, (cols,)))
            out = requantize(_wrap_int32(acc), multiplier, shift, y_zero, qmin, INT8_MAX)
        else:
            out = self._gemm(a8, b8, _wrap_int32(folded),
                             Requant(multiplier, shift, y_zero, qmin, INT8_MAX))
        return from_int8_domain(out, y_dtype)

    def _gemm(self, a, w, bias, requant):
        """``requant(a @ w + bias)`` (int8) or the raw int32 sums, on the device."""
        hw = self.hw
        n = hw.n
        m, k = a.shape
        cols = w.shape[1]
        raw = requant is None
        plan = plan_gemm(hw, m, k, cols, raw=raw)
        a_tiles = pack_a(a, n)
        w_tiles = pack_w(w, n)
        col_tiles = math.ceil(cols / n)
        regions = {"a": a_tiles.nbytes, "w": w_tiles.nbytes,
                   "c": col_tiles * m * n * out_bytes(raw)}
        if bias is not None:
            regions["bias"] = col_tiles * n * ACC_BYTES
        if not raw:
            regions["quant"] = col_tiles * n * QUANT_BYTES
        addresses, end = {}, DATA_BASE
        for name, size in regions.items():
            addresses[name] = end
            end = _align(end + size)
        if end > self.device.dram_size:
            raise DeviceMemoryError(
                f"a {m} x {k} x {cols} GEMM needs {end - DATA_BASE} bytes of device DRAM, "
                f"more than the {self.device.dram_size} the {self.backend} device has")
        layout = GemmLayout(a=addresses["a"], w=addresses["w"], c=addresses["c"],
                            bias=addresses.get("bias"), quant=addresses.get("quant"))
        program = gemm_program(hw, plan, layout, raw=raw)
        program_size = len(program) * INSTRUCTION_BYTES
        if end + program_size > self.device.dram_size:
            raise DeviceMemoryError(
                f"a {m} x {k} x {cols} GEMM and its {len(program)}-instruction program need "
                f"{end + program_size - DATA_BASE} bytes of device DRAM, more than the "
                f"{self.device.dram_size} the {self.backend} device has")
        if self.check_programs:
            check_program(program, hw.npu_config())
        device = self.device
        device.write_dram(addresses["a"], a_tiles)
        device.write_dram(addresses["w"], w_tiles)
        if bias is not None:
            padded = np.zeros(col_tiles * n, np.int32)
            padded[:cols] = bias
            device.write_dram(addresses["bias"], padded.astype("<i4"))
        if not raw:
            device.write_dram(addresses["quant"], pack_quant(
                requant.multiplier, requant.shift, requant.zero_point, requant.qmin,
                requant.qmax, n))
        stats = run_program(device, program, end, timeout_s=self.timeout_s)
        self._runs.append(stats)
        out = device.read_dram(addresses["c"], regions["c"])
        return unpack_c(out.tobytes(), m, cols, n, "<i4" if raw else np.int8).astype(
            np.int32 if raw else np.int8)


def _wrap_int32(values):
    return np.asarray(values, dtype=np.int64).astype(np.uint64).astype(np.uint32).view(np.int32)


def _align(addr):
    return (addr + ALIGN - 1) // ALIGN * ALIGN
