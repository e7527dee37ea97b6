"""Estimate every register-to-register path of a mapped ECP5 netlist, in seconds not minutes.

nextpnr reports one critical path per place-and-route run (3 to 20 minutes here); this walks
the whole netlist that ``synth_ecp5`` wrote (``build/synth/<configuration>/top.json``) with a
rough delay model, so the paths to fix next can be seen all at once and fixed in one go:

    python -m synth.paths build/synth/npu_n8_85k/top.json [--top 30] [--over 8.0]

After place and route, ``--routed build/synth/<configuration>/report_seed1.json`` ranks the
registers by nextpnr's own routed arrival times instead (``make synth`` asks nextpnr for them
with ``--detailed-timing-report``): every register over the target at once, not only the
worst, with the estimated path into each to say where it comes from.

Delays are speed-grade-6 figures read off nextpnr's reports on this design, plus a flat
routing delay per net (routing is most of a path on the larger dies); the estimate ranks
paths, it does not replace the place-and-route figure. Paths are grouped by the named
register (or RAM, DSP) at each end.
"""

import argparse
import json
import math
import re
import sys
from collections import defaultdict

# DP16KD without its output register (REGMODE NOREG), as nextpnr-ecp5 times it; with it
# (OUTREG, rtl/block_ram.py) 0.96 ns.
CLOCK_TO_Q = {"TRELLIS_FF": 0.52, "DP16KD": 5.83, "MULT18X18D": 0.5}
DP16KD_OUTREG_CLOCK_TO_Q = 0.96
ROUTE_NS = 0.75                  # one net hop, before the fan-out term
FANOUT_NS = 0.12                 # per doubling of a net's fan-out
LUT_NS = 0.24
WIDE_MUX_NS = 0.17               # PFUMX / L6MUX21, the LUT-combining muxes
CARRY_IN_NS = 0.45               # into a CCU2C from its LUT inputs
CARRY_NS = 0.07                  # along the carry chain, per CCU2C
CARRY_OUT_NS = 0.44              # from the carry chain to a sum output
LUT_RAM_READ_NS = 0.3            # TRELLIS_DPR16X4 read address to data
MULTIPLIER_NS = 4.0              # MULT18X18D with unregistered inputs and output
# Setup of a TRELLIS_FF input as nextpnr-ecp5 adds it at a path's end (the "setup" step of
# its critical paths); the data and enable inputs have none.
FF_SETUP_NS = {"LSR": 0.42}


def cell_delay(kind, in_port, out_port):
    """Input-to-output delay of a combinational cell (None: no such arc)."""
    if kind == "LUT4":
        return LUT_NS
    if kind in ("PFUMX", "L6MUX21"):
        return WIDE_MUX_NS
    if kind == "CCU2C":
        if in_port == "CIN":
            return CARRY_NS if out_port == "COUT" else CARRY_OUT_NS
        return CARRY_IN_NS
    if kind == "TRELLIS_DPR16X4":
        return LUT_RAM_READ_NS if in_port.startswith("RAD") else None
    if kind == "MULT18X18D":
        return MULTIPLIER_NS
    return None


def is_sequential(cell):
    kind = cell["type"]
    if kind in ("TRELLIS_FF", "DP16KD"):
        return True
    if kind == "MULT18X18D":
        return any(cell["parameters"].get(p, "NONE") != "NONE"
                   for p in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"))
    return False


def clock_to_q(cell):
    """Clock to output of a sequential cell (ns)."""
    if cell["type"] == "DP16KD" and cell["parameters"].get("REGMODE_B") == "OUTREG":
        return DP16KD_OUTREG_CLOCK_TO_Q
    return CLOCK_TO_Q.get(cell["type"], 0.5)


def readable(name):
    """The design's own signal name inside a yosys-made cell or net name."""
    name = name.lstrip("\\$")
    name = re.sub(r"_TRELLIS_FF_Q.*$|_DP16KD.*$|_MULT18X18D.*$|_LUT4.*$|_CCU2C.*$|_PFUMX.*$|"
                  r"_L6MUX21.*$|\$.*$", "", name)
    return name or "?"


def analyse(netlist):
    module = next(m for m in netlist["modules"].values()
                  if m.get("attributes", {}).get("top")) if len(netlist["modules"]) > 1 \
        else next(iter(netlist["modules"].values()))
    cells = {name: cell for name, cell in module["cells"].items()
             if not cell["type"].startswith("$")}
    drivers, loads = {}, defaultdict(list)
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            direction = cell["port_directions"].get(port)
            for bit in bits:
                if isinstance(bit, str):
                    continue
                if direction == "output":
                    drivers[bit] = (name, port)
                else:
                    loads[bit].append((name, port))
    net_names = {}
    for name, net in module["netnames"].items():
        if net.get("hide_name"):
            continue
        for bit in net["bits"]:
            if not isinstance(bit, str):
                net_names.setdefault(bit, name)

    arrival, came_from = {}, {}

    def wire_delay(bit, port):
        driver = drivers.get(bit)
        if driver and cells[driver[0]]["type"] == "CCU2C" and port == "CIN":
            return 0.0   # dedicated carry wire
        return ROUTE_NS + FANOUT_NS * math.log2(max(1, len(loads[bit])))

    sys.setrecursionlimit(100000)

    def output_arrival(bit):
        """Arrival time at a net bit, and how it got there (memoised depth-first walk)."""
        if bit in arrival:
            return arrival[bit]
        driver = drivers.get(bit)
        if driver is None:
            arrival[bit] = 0.0
            return 0.0
        name, out_port = driver
        cell = cells[name]
        if is_sequential(cell):
            arrival[bit] = clock_to_q(cell)
            came_from[bit] = None
            return arrival[bit]
        arrival[bit] = 0.0      # breaks combinational loops, which a clean design has none of
        best, best_from = 0.0, None
        for in_port, bits in cell["connections"].items():
            if cell["port_directions"].get(in_port) != "input":
                continue
            delay = cell_delay(cell["type"], in_port, out_port)
            if delay is None:
                continue
            for in_bit in bits:
                if isinstance(in_bit, str):
                    continue
                t = output_arrival(in_bit) + wire_delay(in_bit, in_port) + delay
                if t > best:
                    best, best_from = t, in_bit
        arrival[bit], came_from[bit] = best, best_from
        return best

    endpoints = []
    for name, cell in cells.items():
        if not is_sequential(cell):
            continue
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) != "input" or port in ("CLK", "CLKA", "CLKB"):
                continue
            for bit in bits:
                if isinstance(bit, str) or bit not in drivers:
                    continue
                t = output_arrival(bit) + wire_delay(bit, port)
                endpoints.append((t, name, bit))

    def trace(bit):
        path = []
        while bit is not None:
            path.append(bit)
            bit = came_from.get(bit)
        return list(reversed(path))

    return cells, drivers, net_names, endpoints, trace


def _start(path, drivers):
    """The readable name of the register (or RAM, DSP) a traced path starts at."""
    return readable(drivers[path[0]][0]) if path[0] in drivers else "(top input)"


def _via(path, drivers, net_names, ends, limit):
    """The named signals a traced path runs through (not its ends), at most ``limit``."""
    through = []
    for bit in path[1:]:
        name = readable(net_names.get(bit, drivers[bit][0]))
        if name not in through and name not in ends:
            through.append(name)
    return ", ".join(through[:limit]) + (" ..." if len(through) > limit else "")


def report(netlist, top=25, over=0.0):
    """Lines of the path estimate: a summary, then the ``top`` slowest start->end groups
    over ``over`` ns, each with the named signals it runs through."""
    _, drivers, net_names, endpoints, trace = analyse(netlist)
    groups = {}
    for t, name, bit in endpoints:
        path = trace(bit)
        key = (_start(path, drivers), readable(name))
        if key not in groups or groups[key][0] < t:
            groups[key] = (t, path)
    ranked = sorted(groups.items(), key=lambda item: -item[1][0])
    slow = [g for g in ranked if g[1][0] > over]
    lines = [f"{len(endpoints)} endpoints, {len(groups)} start->end groups, "
             f"{len(slow)} over {over} ns; worst {ranked[0][1][0]:.1f} ns "
             f"({1000 / ranked[0][1][0]:.0f} MHz estimated)"]
    for (start, end), (t, path) in slow[:top]:
        lines.append(f"{t:5.1f} ns  {len(path) - 1:2d} levels  {start} -> {end}")
        through = _via(path, drivers, net_names, (start, end), 8)
        if through:
            lines.append("           via " + through)
    return lines


def clocked_critical_path_ns(timing_report):
    """The longest clock-to-clock path nextpnr timed (its critical path, setup included)."""
    lengths = [sum(step["delay"] for step in path["path"])
               for path in timing_report["critical_paths"]
               if path["from"].startswith("posedge") and path["to"].startswith("posedge")]
    return max(lengths)


def routed_arrivals(timing_report):
    """Worst routed arrival (ns) at a data, enable or reset input of each clocked cell, setup
    included, from a nextpnr report written with ``--detailed-timing-report``: {cell name:
    (ns, input port)}.

    The report lists an endpoint's arrivals from every launch without saying which is which.
    A block with its own clock domain (the NPU) gets its reset from registers in
    ``SerialIoWrapper``, so its reset (LSR) inputs are clocked paths like the others and are
    ranked too: yosys folds logic into them (a synchronous clear, a unit's reset) and their
    nets are long. Where the reset comes from a pin instead (the compute core), that untimed
    launch reaches LSR and, through a LUT that folds the reset into a data input, data pins:
    arrivals longer than the clocked critical path, which only it can make, are left out.
    """
    if "detailed_net_timings" not in timing_report:
        raise ValueError("the nextpnr report has no detailed_net_timings: run nextpnr with "
                         "--detailed-timing-report")
    longest_clocked = clocked_critical_path_ns(timing_report) + 0.01  # rounding in the report
    worst = {}
    for net in timing_report["detailed_net_timings"]:
        for endpoint in net["endpoints"]:
            if not endpoint["event"].startswith("posedge"):
                continue
            # With the input's setup, so an LSR endpoint ranks as its path does.
            arrival = max(endpoint["delay"]) + FF_SETUP_NS.get(endpoint["port"], 0.0)
            if arrival > longest_clocked:
                continue
            if endpoint["cell"] not in worst or worst[endpoint["cell"]][0] < arrival:
                worst[endpoint["cell"]] = (arrival, endpoint["port"])
    return worst


def routed_report(netlist, timing_report, top=25, over=0.0):
    """Lines ranking register groups by routed arrival, each with the estimated path into the
    group's slowest register."""
    _, drivers, net_names, endpoints, trace = analyse(netlist)
    estimated = {}
    for t, name, bit in endpoints:
        if name not in estimated or estimated[name][0] < t:
            estimated[name] = (t, bit)
    groups, counts = {}, defaultdict(int)
    for cell, (arrival, port) in routed_arrivals(timing_report).items():
        group = readable(cell)
        if group not in groups or groups[group][0] < arrival:
            groups[group] = (arrival, port, cell)
        counts[group] += arrival > over
    ranked = sorted(groups.items(), key=lambda item: -item[1][0])
    slow = [g for g in ranked if g[1][0] > over]
    lines = [f"{len(groups)} register groups routed, {len(slow)} with arrivals over {over} ns "
             f"({sum(counts.values())} cells); worst {ranked[0][1][0]:.2f} ns "
             f"({1000 / ranked[0][1][0]:.1f} MHz)"]
    for group, (arrival, port, cell) in slow[:top]:
        line = f"{arrival:5.2f} ns  {group} ({counts[group]} over, worst at {port})"
        if cell in estimated:
            path = trace(estimated[cell][1])
            start = _start(path, drivers)
            through = _via(path, drivers, net_names, (start, group), 6)
            line += f"\n           estimated from {start}" + (f" via {through}" if through else "")
        lines.append(line)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netlist")
    parser.add_argument("--top", type=int, default=25, help="path groups to print")
    parser.add_argument("--over", type=float, default=0.0, help="only paths over this (ns)")
    parser.add_argument("--routed", metavar="REPORT",
                        help="nextpnr --report JSON with --detailed-timing-report: rank by "
                             "routed arrivals instead of the estimate")
    args = parser.parse_args(argv)
    with open(args.netlist) as f:
        netlist = json.load(f)
    if args.routed:
        with open(args.routed) as f:
            lines = routed_report(netlist, json.load(f), args.top, args.over)
    else:
        lines = report(netlist, args.top, args.over)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
