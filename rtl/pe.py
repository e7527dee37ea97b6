"""One processing element of the weight-stationary systolic array."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .multiplier import registered_multiply

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """A multiply-accumulate cell holding one int8 weight, TPU style.

    Activations move one PE to the right per cycle, partial sums one PE down. The weight
    in use (``weight``) multiplies the incoming activation; the next tile's weight waits in
    ``weight_shadow``, so it can be written while the current tile still computes.
    A ``swap`` flag travels with the activations one cycle ahead of the first activation of a
    new tile: when it passes, ``weight`` takes the shadow's value, so every PE switches
    tiles exactly between the last activation of the old tile and the first of the new.

    Members
    -------
    act_in : In(signed(8))
        Activation from the left neighbour (or the input skew).
    swap_in : In(1)
        Swap flag from the left neighbour: latch ``weight_shadow`` into ``weight``.
    psum_in : In(signed(32))
        Partial sum from the PE above (zero for the top row).
    shadow_load : In(1)
        Write ``shadow_in`` into ``weight_shadow`` at the next edge. A swap on the same
        edge still takes the old shadow value.
    shadow_in : In(signed(8))
        Next weight.
    act_out : Out(signed(8))
        ``act_in`` delayed one cycle, to the right neighbour.
    swap_out : Out(1)
        ``swap_in`` delayed one cycle, to the right neighbour.
    psum_out : Out(signed(32))
        ``psum_in`` plus the product of the activation and weight of three cycles earlier
        (operands registered, then the product: ``rtl.multiplier``, then the product again
        beside the adder), registered, to the PE below. The PE above's ``psum_out`` is as
        many cycles behind its own activation, so they line up.

    ``lut_multiplier`` builds the product from LUTs instead of a DSP block, in the same
    number of cycles.
    """

    def __init__(self, config: NpuConfig, *, lut_multiplier=False):
        self._config = config
        self._lut_multiplier = lut_multiplier
        data = signed(config.data_width)
        acc = signed(config.acc_width)
        super().__init__({
            "act_in": In(data),
            "swap_in": In(1),
            "psum_in": In(acc),
            "shadow_load": In(1),
            "shadow_in": In(data),
            "act_out": Out(data),
            "swap_out": Out(1),
            "psum_out": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        # Data registers have no reset: what they hold after a reset is flushed before any
        # result is used, and leaving them out keeps the reset net to the control flip-flops.
        weight = Signal(signed(config.data_width), reset_less=True)
        weight_shadow = Signal(signed(config.data_width), reset_less=True)

        with m.If(self.shadow_load):
            m.d.sync += weight_shadow.eq(self.shadow_in)
        with m.If(self.swap_in):
            m.d.sync += weight.eq(weight_shadow)

        # Operands and product are registered around the multiplier (on an ECP5 in the DSP
        # block's own registers), and the product once more in the fabric, so a cycle holds
        # either a route to the DSP, the multiply, half the route from the DSP to the adder
        # (the DSPs sit in rows across the die, the adders by their neighbours' partial
        # sums: 5.6 ns of one net on seed 1 of 86607b9), or the rest of it and the 32-bit
        # add. Every row has the same delay, so the partial sums stay aligned; the array is
        # three cycles deeper than a combinational MAC.
        product = Signal(signed(2 * config.data_width), reset_less=True)
        product_staged = Signal.like(product, reset_less=True)
        act = Signal.like(self.act_out, reset_less=True)
        psum = Signal.like(self.psum_out, reset_less=True)
        registered_multiply(m, platform, self.act_in, weight, product,
                            lut=self._lut_multiplier)
        m.d.sync += [
            act.eq(self.act_in),
            self.swap_out.eq(self.swap_in),
            product_staged.eq(product),
            # Wraps modulo 2**32 like int32 arithmetic; the golden model does the same.
            psum.eq(self.psum_in + product_staged),
        ]
        m.d.comb += [self.act_out.eq(act), self.psum_out.eq(psum)]
        return m
