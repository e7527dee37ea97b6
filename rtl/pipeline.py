"""Small pipeline helpers shared by the units."""

from amaranth import *

__all__ = ["delay", "replicas", "REPLICA_MARK"]


def delay(m, signal, cycles, name, reset_less=False):
    """``signal`` delayed by ``cycles`` registers (``cycles`` may be 0), named
    ``{name}_d1`` onwards; ``reset_less`` for data, whose valid bit travels beside it."""
    for stage in range(cycles):
        delayed = Signal.like(signal, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += delayed.eq(signal)
        signal = delayed
    return signal


# Names of flip-flops that must stay separate copies: yosys would merge registers with the
# same input, and ``synth/run.py`` marks the cells driving these names ``keep``.
REPLICA_MARK = "replica"


def replicas(m, next_value, name, consumers):
    """One register per consumer, each loaded with ``next_value``: a signal that fans out to
    the whole die starts from a flip-flop placed near each consumer instead of one net
    routed everywhere. Returns ``{consumer: register}``."""
    copies = {}
    for consumer in consumers:
        copies[consumer] = copy = Signal(name=f"{name}_{REPLICA_MARK}_{consumer}")
        m.d.sync += copy.eq(next_value)
    return copies
