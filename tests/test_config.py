"""The configuration object validates every field and names the bad one."""

import dataclasses

import pytest

from rtl.config import ConfigError, NpuConfig


def test_defaults_are_valid():
    config = NpuConfig()
    assert config.n == 8
    assert config.scratchpad_addr_width == 11
    assert config.accumulator_addr_width == 10


def test_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NpuConfig().n = 4


@pytest.mark.parametrize("field, value", [
    ("n", 1), ("n", 65), ("n", 8.0), ("n", True),
    ("data_width", 16), ("acc_width", 24),
    ("scratchpad_depth", 1000), ("scratchpad_depth", 8), ("accumulator_depth", 0),
    ("accumulator_depth", 2 ** 17), ("command_queue_depth", 0),
    ("quant_table_depth", 3), ("axi_data_width", 48), ("axi_max_burst_beats", 257),
    ("axi_max_outstanding", 0),
])
def test_invalid_field_is_named(field, value):
    with pytest.raises(ConfigError, match=rf"^{field} must"):
        NpuConfig(**{field: value})


@pytest.mark.parametrize("n", [4, 8, 12, 16])
def test_array_sizes_accepted(n):
    assert NpuConfig(n=n).scratchpad_row_bits == 8 * n


def test_name_lists_only_what_differs_from_the_defaults():
    assert NpuConfig(n=4).name == "n4"
    assert NpuConfig(n=8, axi_data_width=128).name == "n8_axi_data_width128"
