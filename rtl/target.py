"""What ``elaborate(platform)`` sees when the design is built for an FPGA family without a
board: the family name, as on an amaranth-boards platform (``platform.family``), so blocks
can instantiate the family's primitives (``rtl.multiplier``). Simulation builds pass no
platform and get portable logic."""

__all__ = ["Target"]


class Target:
    def __init__(self, family):
        self.family = family

    def __repr__(self):
        return f"Target({self.family!r})"
