"""``make sim``: generate the Verilog, run the cocotb regression, print a pass/fail summary.

Usage: ``python -m sim.regress [--simulator verilator|icarus|all] [--n 4 8] [--cases 100]``.
Writes ``build/sim/report.json`` with the results, the simulation speed and the compute
core's cycles per command (from ``test_back_to_back_throughput``).
"""

import argparse
import json
import sys
import time

from rtl.config import NpuConfig
from sim.build import BUILD_ROOT, available_simulators, build_simulation, choose_seed, run_cocotb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="verilator",
                        choices=["verilator", "icarus", "all"])
    parser.add_argument("--n", type=int, nargs="+", default=[4, 8],
                        help="array sizes to run (default: 4 8)")
    parser.add_argument("--cases", type=int, default=100,
                        help="random command sequences per configuration (default: 100)")
    args = parser.parse_args(argv)

    simulators = available_simulators() if args.simulator == "all" else [args.simulator]
    if args.simulator == "icarus" and "icarus" not in available_simulators():
        parser.error("iverilog is not on PATH (Debian/Ubuntu: apt-get install iverilog)")
    seed = choose_seed()
    print(f"seed {seed} (re-run with NPU_SEED={seed})", flush=True)
    rows, report = [], {"seed": seed, "runs": []}
    for simulator in simulators:
        for n in args.n:
            config = NpuConfig(n=n)
            build = build_simulation(simulator, "compute_core", config)
            print(f"[run] {simulator} N={n}: {args.cases} random cases + throughput ...",
                  flush=True)
            started = time.monotonic()
            results = run_cocotb(build, seed=seed, extra_env={"NPU_CASES": str(args.cases)},
                                 run_name="regress")
            wall = time.monotonic() - started
            throughput_file = results.log_file.parent / "throughput.json"
            throughput = (json.loads(throughput_file.read_text())
                          if throughput_file.exists() else None)
            rows.append((simulator, n, results, wall))
            report["runs"].append({
                "simulator": simulator, "n": n, "cases": args.cases,
                "passed": results.passed, "failed": results.failed,
                "failures": results.failures, "wall_s": round(wall, 2),
                "build_s": round(build.build_seconds, 2),
                "sim_cycles_per_s": round(results.cycles_per_second),
                "throughput": throughput, "log": str(results.log_file)})

    print("\nsimulator  N   passed failed  sim cycles/s   wall s")
    for simulator, n, results, wall in rows:
        print(f"{simulator:<10} {n:<3} {results.passed:>6} {results.failed:>6}  "
              f"{results.cycles_per_second:>12,.0f}  {wall:>7.1f}")
    for run in report["runs"]:
        if run["throughput"]:
            print(f"\ncycles per command, {run['simulator']} N={run['n']} "
                  f"(ideal = M; the array's fill is {run['throughput']['array_latency']} cycles)")
            print("    M   one command  util   6 back to back  util")
            for single, batch in zip(run["throughput"]["single"], run["throughput"]["runs"]):
                print(f"{single['m']:>5}  {single['cycles']:>11}  {single['utilization']:>5.1%}"
                      f"  {batch['cycles']:>14}  {batch['utilization']:>5.1%}")
    path = BUILD_ROOT / "sim" / "report.json"
    path.write_text(json.dumps(report, indent=2))
    failed = sum(results.failed for _, _, results, _ in rows)
    print(f"\nreport: {path}")
    print(f"sim: {sum(r.passed for _, _, r, _ in rows)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
