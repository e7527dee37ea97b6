"""Small pipeline helpers shared by the units."""

from amaranth import *

__all__ = ["delay"]


def delay(m, signal, cycles, name, reset_less=False):
    """``signal`` delayed by ``cycles`` registers (``cycles`` may be 0), named
    ``{name}_d1`` onwards; ``reset_less`` for data, whose valid bit travels beside it."""
    for stage in range(cycles):
        delayed = Signal.like(signal, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += delayed.eq(signal)
        signal = delayed
    return signal
