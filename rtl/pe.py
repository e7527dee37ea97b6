"""One processing element of the weight-stationary systolic array."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig

__all__ = ["ProcessingElement", "lut_product"]


def lut_product(a, b):
    """``a * b`` of signed values as a sum of shifted partial products, with no multiply
    operator for synthesis to map onto a DSP block: it becomes LUTs and carry chains."""
    top = len(a) - 1
    terms = [Mux(a[i], b, 0) << i for i in range(top)]
    return sum(terms[1:], terms[0]) - (Mux(a[top], b, 0) << top)  # a's sign bit weighs -2**top


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
        ``psum_in`` plus the product of the activation and weight of one cycle earlier
        (``act_in * weight`` is registered first), registered, to the PE below. The PE
        above's ``psum_out`` is one cycle later than its activation too, so they line up.

    ``lut_multiplier`` builds the product from LUTs (``lut_product``) instead of a DSP block.
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

        # The product is registered before the accumulate, so a cycle holds either the
        # multiplier (a DSP block) or the 32-bit add, never both. Every row adds the same
        # cycle, so the partial sums stay aligned; the array is one cycle deeper.
        product = Signal(signed(2 * config.data_width), reset_less=True)
        act = Signal.like(self.act_out, reset_less=True)
        psum = Signal.like(self.psum_out, reset_less=True)
        m.d.sync += product.eq(lut_product(self.act_in, weight) if self._lut_multiplier
                               else self.act_in * weight)
        m.d.sync += [
            act.eq(self.act_in),
            self.swap_out.eq(self.swap_in),
            # Wraps modulo 2**32 like int32 arithmetic; the golden model does the same.
            psum.eq(self.psum_in + product),
        ]
        m.d.comb += [self.act_out.eq(act), self.psum_out.eq(psum)]
        return m
