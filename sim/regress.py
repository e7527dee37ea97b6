"""``make sim``: generate the Verilog, run the cocotb regression, print a pass/fail summary.

Usage: ``python -m sim.regress [--simulator verilator|icarus|all] [--n 4 8] [--cases 100]``.
Runs the compute core at each N, the DMA, and the whole NPU at the largest N, and writes
``build/sim/report.json`` with the results, simulation speed, the compute core's cycles per
command, DMA bandwidth and the NPU's perf counters.
"""

import argparse
import json
import sys
import time

from rtl.config import NpuConfig
from sim.build import BUILD_ROOT, available_simulators, build_simulation, choose_seed, run_cocotb


def plan(sizes, cases):
    """(design, config, params, cases) of every run."""
    runs = [("compute_core", NpuConfig(n=n), {}, cases) for n in sizes]
    runs.append(("dma_copy", NpuConfig(), {"row_bytes": 8}, max(10, cases // 2)))
    runs.append(("npu_top", NpuConfig(n=max(sizes)), {}, max(4, cases // 10)))
    return runs


def print_figures(run):
    reports = run["reports"]
    if "throughput.json" in reports:
        figures = reports["throughput.json"]
        print(f"\ncompute core N={run['n']}, cycles per command (ideal = M; array fill "
              f"{figures['array_latency']} cycles)")
        print("    M   one command  util   6 back to back  util")
        for single, batch in zip(figures["single"], figures["runs"]):
            print(f"{single['m']:>5}  {single['cycles']:>11}  {single['utilization']:>5.1%}"
                  f"  {batch['cycles']:>14}  {batch['utilization']:>5.1%}")
    if "dma_bandwidth.json" in reports:
        figures = reports["dma_bandwidth.json"]
        print(f"\nDMA: {figures['bytes']} bytes copied in {figures['cycles']} cycles, "
              f"{figures['bytes_per_cycle']:.2f} bytes/cycle each way "
              f"(bus {figures['bus_bytes']} bytes)")
    if "npu_overlap.json" in reports:
        print(f"\nNPU N={run['n']}, double-buffered GEMM M=128 K={12 * run['n']}: perf counters")
        for label, counters in reports["npu_overlap.json"].items():
            cycles = counters["PERF_CYCLES"]
            print(f"  {label:<16} {cycles} cycles, array active "
                  f"{counters['PERF_ARRAY_ACTIVE'] / cycles:.1%}, LOAD busy "
                  f"{counters['PERF_LOAD_BUSY'] / cycles:.1%}, "
                  f"{counters['PERF_BYTES_READ'] / cycles:.2f} bytes read/cycle")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="verilator",
                        choices=["verilator", "icarus", "all"])
    parser.add_argument("--n", type=int, nargs="+", default=[4, 8],
                        help="array sizes of the compute core runs; the NPU runs at the largest")
    parser.add_argument("--cases", type=int, default=100,
                        help="random cases per compute-core run (default: 100)")
    args = parser.parse_args(argv)

    simulators = available_simulators() if args.simulator == "all" else [args.simulator]
    if args.simulator == "icarus" and "icarus" not in available_simulators():
        parser.error("iverilog is not on PATH (Debian/Ubuntu: apt-get install iverilog)")
    seed = choose_seed()
    print(f"seed {seed} (re-run with NPU_SEED={seed})", flush=True)
    report = {"seed": seed, "runs": []}
    for simulator in simulators:
        for design, config, params, cases in plan(args.n, args.cases):
            build = build_simulation(simulator, design, config, params)
            label = f"{simulator} {design} N={config.n}"
            print(f"[run] {label}: {cases} random cases ...", flush=True)
            started = time.monotonic()
            results = run_cocotb(build, seed=seed, extra_env={"NPU_CASES": str(cases)},
                                 run_name="regress")
            wall = time.monotonic() - started
            reports = {path.name: json.loads(path.read_text())
                       for path in results.log_file.parent.glob("*.json")}
            report["runs"].append({
                "simulator": simulator, "design": design, "n": config.n, "params": params,
                "cases": cases, "passed": results.passed, "failed": results.failed,
                "failures": results.failures, "wall_s": round(wall, 2),
                "build_s": round(build.build_seconds, 2),
                "sim_cycles_per_s": round(results.cycles_per_second), "reports": reports,
                "log": str(results.log_file)})

    print("\nsimulator  design        N   passed failed  sim cycles/s   wall s")
    for run in report["runs"]:
        print(f"{run['simulator']:<10} {run['design']:<13} {run['n']:<3} {run['passed']:>6} "
              f"{run['failed']:>6}  {run['sim_cycles_per_s']:>12,}  {run['wall_s']:>7.1f}")
    for run in report["runs"]:
        print_figures(run)
    path = BUILD_ROOT / "sim" / "report.json"
    path.write_text(json.dumps(report, indent=2))
    passed = sum(run["passed"] for run in report["runs"])
    failed = sum(run["failed"] for run in report["runs"])
    print(f"\nreport: {path}")
    print(f"sim: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
