"""Per-channel requantization of accumulator rows: the store path's numeric core."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .isa import QuantParams

__all__ = ["Requantizer", "REQUANTIZER_LATENCY"]

REQUANTIZER_LATENCY = 3


class _Lane(Elaboratable):
    """``clamp(round_half_even(acc * multiplier / 2**(31 + shift)) + zero_point, qmin, qmax)``
    in three stages: multiply; shift and round; add the zero point and clamp."""

    def __init__(self):
        self.acc = Signal(signed(32))
        self.params = Signal(QuantParams)
        self.result = Signal(signed(8))

    def elaborate(self, platform):
        m = Module()
        # Stage 1: the full product, and the total right shift 31 + shift (0..62).
        product = Signal(signed(64))
        total_shift = Signal(range(63))
        params_1 = Signal(QuantParams)
        m.d.sync += [
            product.eq(self.acc * self.params.multiplier),
            total_shift.eq(31 + self.params.shift),
            params_1.eq(self.params),
        ]
        # Stage 2: floor(product / 2**s), then round half to even from the bit just below
        # (half) and whether any lower bit is set (sticky).
        floor = Signal(signed(64))
        half_bit = Signal()
        sticky = Signal()
        m.d.comb += floor.eq(product >> total_shift)
        half_position = Signal(range(63))  # total_shift - 1; unused when total_shift is 0
        m.d.comb += half_position.eq(total_shift - 1)
        below_half = Signal(64)
        m.d.comb += below_half.eq((Const(1, 64) << half_position) - 1)
        with m.If(total_shift != 0):
            m.d.comb += [
                half_bit.eq((product >> half_position)[0]),
                sticky.eq((product.as_unsigned() & below_half) != 0),
            ]
        rounded = Signal(signed(65))
        params_2 = Signal(QuantParams)
        m.d.sync += [
            rounded.eq(floor + (half_bit & (sticky | floor[0]))),
            params_2.eq(params_1),
        ]
        # Stage 3: zero point and clamp (the clamp also saturates to int8).
        shifted = Signal(signed(66))
        m.d.comb += shifted.eq(rounded + params_2.zero_point)
        with m.If(shifted < params_2.qmin):
            m.d.sync += self.result.eq(params_2.qmin)
        with m.Elif(shifted > params_2.qmax):
            m.d.sync += self.result.eq(params_2.qmax)
        with m.Else():
            m.d.sync += self.result.eq(shifted)
        return m


class Requantizer(wiring.Component):
    """N lanes of int32 -> int8 requantization, one row per cycle, ``REQUANTIZER_LATENCY``
    cycles deep. Bit-exact with ``sw_runtime.golden.requantize``.

    Members
    -------
    acc_row : In(ArrayLayout(signed(32), N))
    params : In(ArrayLayout(QuantParams, N))
        Lane j's parameters (held for the whole of a STORE).
    valid_in : In(1)
    result_row : Out(ArrayLayout(signed(8), N))
    valid_out : Out(1)
        ``valid_in`` delayed to match ``result_row``.
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        n = config.n
        super().__init__({
            "acc_row": In(data.ArrayLayout(signed(config.acc_width), n)),
            "params": In(data.ArrayLayout(QuantParams, n)),
            "valid_in": In(1),
            "result_row": Out(data.ArrayLayout(signed(config.data_width), n)),
            "valid_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._config.n):
            m.submodules[f"lane_{lane}"] = unit = _Lane()
            m.d.comb += [
                unit.acc.eq(self.acc_row[lane]),
                unit.params.eq(self.params[lane]),
                self.result_row[lane].eq(unit.result),
            ]
        valid = self.valid_in
        for stage in range(REQUANTIZER_LATENCY):
            delayed = Signal(name=f"valid_d{stage + 1}")
            m.d.sync += delayed.eq(valid)
            valid = delayed
        m.d.comb += self.valid_out.eq(valid)
        return m
