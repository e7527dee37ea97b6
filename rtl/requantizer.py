"""Per-channel requantization of accumulator rows: the store path's numeric core."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .isa import QuantParams

__all__ = ["Requantizer", "REQUANTIZER_LATENCY", "MULTIPLIERS_PER_LANE"]

REQUANTIZER_LATENCY = 6
MULTIPLIERS_PER_LANE = 4  # the 16 x 16 partial products of stage 2, one DSP block each


class _Lane(Elaboratable):
    """``clamp(round_half_even(acc * multiplier / 2**(31 + shift)) + zero_point, qmin, qmax)``
    in six registered stages, short enough for FPGA DSP and carry chains:

    1. inputs (the accumulator row arrives straight from a block RAM);
    2. four 16 x 16 partial products of the 32 x 32 multiply, one DSP each;
    3. their sum, the full 64-bit product;
    4. floor of the shift, with the half and sticky bits for rounding;
    5. round half to even;
    6. zero point and clamp (which also saturates to int8).
    """

    def __init__(self):
        self.acc = Signal(signed(32))
        self.params = Signal(QuantParams)
        self.result = Signal(signed(8))

    def elaborate(self, platform):
        m = Module()
        params = [Signal(QuantParams, name=f"params_{stage}") for stage in range(1, 6)]
        m.d.sync += params[0].eq(self.params)
        for stage in range(1, 5):
            m.d.sync += params[stage].eq(params[stage - 1])

        # 1: inputs.
        acc = Signal(signed(32))
        m.d.sync += acc.eq(self.acc)
        multiplier = params[0].multiplier
        # 2: partial products; the high halves are signed, the low halves unsigned.
        acc_high, acc_low = acc[16:].as_signed(), acc[:16]
        mul_high, mul_low = multiplier[16:].as_signed(), multiplier[:16]
        high_high = Signal(signed(32))
        high_low = Signal(signed(34))
        low_high = Signal(signed(34))
        low_low = Signal(unsigned(32))
        m.d.sync += [
            high_high.eq(acc_high * mul_high),
            high_low.eq(acc_high * mul_low),
            low_high.eq(acc_low * mul_high),
            low_low.eq(acc_low * mul_low),
        ]
        # 3: the product.
        product = Signal(signed(64))
        m.d.sync += product.eq((high_high << 32) + ((high_low + low_high) << 16) + low_low)
        # 4: floor(product / 2**s) and the rounding bits, s = 31 + shift in 0..62.
        total_shift = Signal(range(63))
        m.d.comb += total_shift.eq(31 + params[2].shift)
        half_position = Signal(range(63))  # total_shift - 1; unused when total_shift is 0
        m.d.comb += half_position.eq(total_shift - 1)
        below_half = Signal(64)
        m.d.comb += below_half.eq((Const(1, 64) << half_position) - 1)
        floor = Signal(signed(64))
        half_bit = Signal()
        sticky = Signal()
        m.d.sync += floor.eq(product >> total_shift)
        with m.If(total_shift != 0):
            m.d.sync += [
                half_bit.eq((product >> half_position)[0]),
                sticky.eq((product.as_unsigned() & below_half) != 0),
            ]
        with m.Else():
            m.d.sync += [half_bit.eq(0), sticky.eq(0)]
        # 5: round half to even.
        rounded = Signal(signed(65))
        m.d.sync += rounded.eq(floor + (half_bit & (sticky | floor[0])))
        # 6: zero point and clamp.
        shifted = Signal(signed(66))
        m.d.comb += shifted.eq(rounded + params[4].zero_point)
        with m.If(shifted < params[4].qmin):
            m.d.sync += self.result.eq(params[4].qmin)
        with m.Elif(shifted > params[4].qmax):
            m.d.sync += self.result.eq(params[4].qmax)
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
