"""The one configuration object of the NPU hardware.

Every block takes an :class:`NpuConfig` and reads its parameters from it; nothing re-derives
a parameter by hand. Software discovers the same values from the CONFIG register.
"""

from dataclasses import dataclass, fields

__all__ = ["NpuConfig", "ConfigError"]


class ConfigError(ValueError):
    """An invalid hardware configuration; the message names the bad field."""


def _is_power_of_two(value):
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class NpuConfig:
    """Hardware parameters of one NPU build.

    Parameters
    ----------
    n : int
        Side of the square systolic array (N x N processing elements). Also the number of
        int8 lanes in a scratchpad row and of int32 lanes in an accumulator row.
    data_width : int
        Width of activations and weights; the numeric contract fixes it to 8 (int8).
    acc_width : int
        Width of partial sums and accumulator lanes; the numeric contract fixes it to 32.
    scratchpad_depth : int
        Rows in the scratchpad (power of two).
    accumulator_depth : int
        Rows in the accumulator (power of two).
    command_queue_depth : int
        Compute commands buffered ahead of the compute controller.
    instruction_queue_depth : int
        Instructions buffered ahead of each of the LOAD, COMPUTE and STORE units.
    quant_table_depth : int
        Rows in the quant table (N channels' requantization parameters each).
    axi_data_width : int
        Data width of the AXI4 master in bits: 32, 64 or 128.
    axi_max_burst_beats : int
        Longest burst the DMA issues (AXI4 allows 256).
    axi_max_outstanding : int
        Bursts the DMA keeps in flight per direction.
    lut_multiplier_rows : int
        Rows of the array (the bottom ones) whose PEs multiply with LUTs and carry chains
        instead of a DSP block, to fit an FPGA's DSP budget (e.g. N=12 on the ECP5-85F's 156
        multipliers). The arithmetic and timing in cycles are the same.
    """

    n: int = 8
    data_width: int = 8
    acc_width: int = 32
    scratchpad_depth: int = 2048
    accumulator_depth: int = 1024
    command_queue_depth: int = 4
    instruction_queue_depth: int = 8
    quant_table_depth: int = 64
    axi_data_width: int = 64
    axi_max_burst_beats: int = 32
    axi_max_outstanding: int = 4
    lut_multiplier_rows: int = 0

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{field.name} must be an integer, not {value!r}")
        if not 2 <= self.n <= 64:
            raise ConfigError(f"n must be between 2 and 64 (the array size), not {self.n!r}")
        if self.data_width != 8:
            raise ConfigError(f"data_width must be 8 (int8 numeric contract), "
                              f"not {self.data_width!r}")
        if self.acc_width != 32:
            raise ConfigError(f"acc_width must be 32 (int32 numeric contract), "
                              f"not {self.acc_width!r}")
        for name in ("scratchpad_depth", "accumulator_depth"):
            value = getattr(self, name)
            if not _is_power_of_two(value) or not 16 <= value <= 65536:
                raise ConfigError(f"{name} must be a power of two between 16 and 65536, "
                                  f"not {value!r}")
        if not 2 <= self.instruction_queue_depth <= 64:
            raise ConfigError(f"instruction_queue_depth must be between 2 and 64, "
                              f"not {self.instruction_queue_depth!r}")
        if not _is_power_of_two(self.quant_table_depth) or not 2 <= self.quant_table_depth <= 256:
            raise ConfigError(f"quant_table_depth must be a power of two between 2 and 256, "
                              f"not {self.quant_table_depth!r}")
        if self.axi_data_width not in (32, 64, 128):
            raise ConfigError(f"axi_data_width must be 32, 64 or 128, "
                              f"not {self.axi_data_width!r}")
        if not 1 <= self.axi_max_burst_beats <= 256:
            raise ConfigError(f"axi_max_burst_beats must be between 1 and 256, "
                              f"not {self.axi_max_burst_beats!r}")
        if not 1 <= self.axi_max_outstanding <= 16:
            raise ConfigError(f"axi_max_outstanding must be between 1 and 16, "
                              f"not {self.axi_max_outstanding!r}")
        if not 0 <= self.lut_multiplier_rows <= self.n:
            raise ConfigError(f"lut_multiplier_rows must be between 0 and n ({self.n}), "
                              f"not {self.lut_multiplier_rows!r}")
        if not 1 <= self.command_queue_depth <= 64:
            raise ConfigError(f"command_queue_depth must be between 1 and 64, "
                              f"not {self.command_queue_depth!r}")

    @property
    def scratchpad_addr_width(self):
        return (self.scratchpad_depth - 1).bit_length()

    @property
    def accumulator_addr_width(self):
        return (self.accumulator_depth - 1).bit_length()

    @property
    def scratchpad_row_bits(self):
        return self.n * self.data_width

    @property
    def accumulator_row_bits(self):
        return self.n * self.acc_width

    @property
    def array_latency(self):
        """Cycles from an activation row entering the array to its result row leaving it.

        The activation of array row k is skewed by k + 3 cycles (one more than the swap flag,
        so that a new weight is active when the first activation of its tile arrives, and
        one more than the weight row, which is registered before it reaches the PEs); it
        reaches column j after j more, the PE's registered operands, registered product, its
        copy beside the adder and registered sum add four, and the result of column j is
        de-skewed by N - 1 - j: for the bottom row, (N + 2) + j + 4 + (N - 1 - j) = 2N + 5
        cycles in all.
        """
        return 2 * self.n + 5

    @property
    def bus_bytes(self):
        return self.axi_data_width // 8

    @property
    def name(self):
        """A short tag for build directories and reports: the fields that differ from the
        defaults, so default configurations have short names."""
        default = NpuConfig()
        parts = [f"n{self.n}"]
        for field in fields(self):
            if field.name != "n" and getattr(self, field.name) != getattr(default, field.name):
                parts.append(f"{field.name}{getattr(self, field.name)}")
        return "_".join(parts)
