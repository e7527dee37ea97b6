"""Per-channel requantization of accumulator rows: the store path's numeric core."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .isa import QuantParams
from .multiplier import registered_multiply
from .pipeline import delay

__all__ = ["Requantizer", "requantized_row_layout", "REQUANTIZER_LATENCY",
           "MULTIPLIERS_PER_LANE"]

REQUANTIZER_LATENCY = 10
MULTIPLIERS_PER_LANE = 4  # the 16 x 16 partial products of stages 2-3, one DSP block each


class _Lane(Elaboratable):
    """``clamp(round_half_even(acc * multiplier / 2**(31 + shift)) + zero_point, qmin, qmax)``
    in ten registered stages, each at most one carry chain or a few LUT levels deep, so
    the lane keeps up with the array's clock:

    1. inputs (the accumulator row arrives straight from a block RAM);
    2. the operands of the four 16 x 16 partial products of the 32 x 32 multiply;
    3. the partial products, one DSP each (on the ECP5 stages 2 and 3 are the DSP's own
       input and output registers, ``rtl.multiplier``);
    4. the two middle partial products added;
    5. the full 64-bit product (the outer partial products do not overlap: a concatenation);
    6. coarse shift by whole bytes, keeping the byte below as a guard byte, and the sticky
       bit of everything below that;
    7. fine shift by 0..7 bits: the floor, the half bit and the rest of the sticky bit;
    8. round half to even (r); the floor's low 11 bits against the clamp's limits moved by
       the zero point, ``qmin - zero_point`` and ``qmax - zero_point`` (int10, registered in
       stage 7), once for each way of rounding;
    9. range test of r: whether it lies within int10 (an AND / OR of its high bits) and,
       chosen by the rounding, where it lies against the moved limits; and the low byte of
       r + zero_point (an 8-bit add: a value within [qmin, qmax] is an int8);
    10. clamp (which also saturates to int8): a choice.

    ``clamp(r + zero_point, qmin, qmax)`` is ``clamp(r, qmin - zero_point, qmax -
    zero_point) + zero_point``, so no 66-bit zero-point add comes before the comparisons.
    """

    def __init__(self):
        self.acc = Signal(signed(32))
        self.params = Signal(QuantParams)
        self.result = Signal(signed(8), reset_less=True)

    def elaborate(self, platform):
        m = Module()
        # The parameters hold still while rows are in the lane (a whole STORE), so every
        # stage reads them as they are: no copy travels beside the data (the nine copies were
        # about 250 flip-flops a lane). No resets: a pure data path, its valid bit travels
        # beside it in the Requantizer.
        params = self.params

        # 1: inputs.
        acc = Signal(signed(32), reset_less=True)
        m.d.sync += acc.eq(self.acc)
        multiplier = params.multiplier
        # 2-3: partial products; the high halves are signed, the low halves unsigned.
        acc_high, acc_low = acc[16:].as_signed(), acc[:16]
        mul_high, mul_low = multiplier[16:].as_signed(), multiplier[:16]
        high_high = Signal(signed(32), reset_less=True)
        high_low = Signal(signed(34), reset_less=True)
        low_high = Signal(signed(34), reset_less=True)
        low_low = Signal(unsigned(32), reset_less=True)
        for name, a, b, partial in [("high_high", acc_high, mul_high, high_high),
                                    ("high_low", acc_high, mul_low, high_low),
                                    ("low_high", acc_low, mul_high, low_high),
                                    ("low_low", acc_low, mul_low, low_low)]:
            registered_multiply(m, platform, a, b, partial, name=name)
        # 4: the middle partial products.
        middle = Signal(signed(35), reset_less=True)
        outer = Signal(signed(64), reset_less=True)
        m.d.sync += [middle.eq(high_low + low_high), outer.eq(Cat(low_low, high_high))]
        # 5: the product.
        product = Signal(signed(64), reset_less=True)
        m.d.sync += product.eq(outer + (middle << 16))
        # 6: total shift s = 31 + shift in 0..62 = 8 * coarse + fine. Shift right by whole
        # bytes with a zero guard byte below the product: the byte just below the cut stays
        # (it holds the half bit for every fine shift), the bytes below it only count for
        # the sticky bit.
        # The sum is registered beside the product (stage 5), so
        # the shifters' selects start from flip-flops: behind the adder's carry chain they
        # crossed the die (8.17 ns on seed 2 of 438e06d).
        total_shift = Signal(range(63), reset_less=True)
        m.d.sync += total_shift.eq(31 + params.shift)
        coarse, fine = total_shift[3:], total_shift[:3]
        guarded = Cat(Const(0, 8), product).as_signed()
        byte_nonzero = [guarded[8 * i:8 * i + 8] != 0 for i in range(8)]
        coarse_shifted = Signal(signed(72), reset_less=True)
        coarse_sticky = Signal(reset_less=True)
        fine_shift = Signal(3, reset_less=True)
        m.d.sync += [
            coarse_shifted.eq(guarded >> Cat(Const(0, 3), coarse)),
            # Guarded bytes 0..coarse-1 fall off; the guard byte itself is zero.
            coarse_sticky.eq(Cat(*(byte_nonzero[i] & (i < coarse) for i in range(8))).any()),
            fine_shift.eq(fine),
        ]
        # 7: floor(product / 2**s), the half bit (bit s - 1) and the sticky bit (below it).
        floor = Signal(signed(64), reset_less=True)
        half_bit = Signal(reset_less=True)
        sticky = Signal(reset_less=True)
        # Below the half bit (bit 7 + fine_shift): bits 0..6 always, bit 7 + k when
        # k < fine_shift, each a gate of its own (a mask made as 2**(fine + 7) - 1 put a
        # carry chain in front of the OR: 8.44 ns on seed 2 of 0c155df).
        below_half = Cat(coarse_shifted[7 + k] & (fine_shift > k) for k in range(7))
        m.d.sync += [
            floor.eq(coarse_shifted >> (fine_shift + 8)),
            half_bit.eq(coarse_shifted[7:15].bit_select(fine_shift, 1)),
            sticky.eq(coarse_sticky | coarse_shifted[:7].any() | below_half.any()),
        ]
        # 8: round half to even, r = floor + round_up; and r's range test against the
        # clamp's limits moved by the zero point (registered in stage 7),
        # made on the floor before the rounding adder: r > L is floor >= L if rounding up and
        # floor > L if not, both compared now and chosen by round_up in stage 9. The limits
        # are int10 and the tests matter only when r lies within int10, and then the floor
        # lies within int11: its low 11 bits meet the comparators, not the 65-bit sum (whose
        # register sits by its carry chain, far from where the comparators may be placed).
        limit_below = Signal(signed(10), reset_less=True)        # qmin - zero_point
        limit_below_less_1 = Signal(signed(10), reset_less=True)  # qmin - zero_point - 1
        limit_above = Signal(signed(10), reset_less=True)        # qmax - zero_point
        moved_qmin = params.qmin - params.zero_point
        m.d.sync += [limit_below.eq(moved_qmin), limit_below_less_1.eq(moved_qmin - 1),
                     limit_above.eq(params.qmax - params.zero_point)]
        rounded = Signal(signed(65), reset_less=True)
        round_up = half_bit & (sticky | floor[0])
        rounds_up = Signal(reset_less=True)
        floor_low = floor[:11].as_signed()
        above_if_up = Signal(reset_less=True)    # floor + 1 > limit_above
        above_if_down = Signal(reset_less=True)  # floor > limit_above
        below_if_up = Signal(reset_less=True)    # floor + 1 < limit_below
        below_if_down = Signal(reset_less=True)  # floor < limit_below
        m.d.sync += [rounded.eq(floor + round_up),
                     rounds_up.eq(round_up),
                     above_if_up.eq(floor_low >= limit_above),
                     above_if_down.eq(floor_low > limit_above),
                     below_if_up.eq(floor_low < limit_below_less_1),
                     below_if_down.eq(floor_low < limit_below)]
        # 9: range test. Whether r lies within int10 is an AND / OR of its high bits (LUTs,
        # no carry chain); within it, r's place against the limits is a choice of stage 8's
        # comparisons.
        high = rounded[9:]
        within_int10 = Signal(reset_less=True)
        negative = Signal(reset_less=True)
        low_below = Signal(reset_less=True)
        low_above = Signal(reset_less=True)
        in_range_value = Signal(signed(8), reset_less=True)
        m.d.sync += [within_int10.eq(high.all() | ~high.any()),
                     negative.eq(rounded[-1]),
                     low_below.eq(Mux(rounds_up, below_if_up, below_if_down)),
                     low_above.eq(Mux(rounds_up, above_if_up, above_if_down)),
                     in_range_value.eq(rounded[:8] + params.zero_point)]
        # 10: clamp (which saturates to int8 too).
        below = Mux(within_int10, low_below, negative)
        above = Mux(within_int10, low_above, ~negative)
        with m.If(below):
            m.d.sync += self.result.eq(params.qmin)
        with m.Elif(above):
            m.d.sync += self.result.eq(params.qmax)
        with m.Else():
            m.d.sync += self.result.eq(in_range_value)
        return m


def requantized_row_layout(config: NpuConfig):
    """One requantized row: N int8 lanes."""
    return data.ArrayLayout(signed(config.data_width), config.n)


class Requantizer(wiring.Component):
    """N lanes of int32 -> int8 requantization, one row per cycle, ``REQUANTIZER_LATENCY``
    cycles deep. Bit-exact with ``sw_runtime.golden.requantize``.

    Members
    -------
    acc_row : In(ArrayLayout(signed(32), N))
    params : In(ArrayLayout(QuantParams, N))
        Lane j's parameters. The stages read them as they are, so they must hold still
        from a row's entry until its result leaves (STORE holds them for a whole
        instruction, and drains the rows before the next).
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
            "result_row": Out(requantized_row_layout(config)),
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
        valid = delay(m, self.valid_in, REQUANTIZER_LATENCY, "valid")
        m.d.comb += self.valid_out.eq(valid)
        return m
