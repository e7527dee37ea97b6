"""``make bench``: utilization and simulation speed, measured on the simulated RTL.

Writes ``build/bench/report.json`` and ``build/bench/utilization.png``:

* ``matmul``: for M x K x N in {64, 256, 512}^3 and skinny shapes (M = 1, 8), the int32
  matmul on the backend (Verilator, N=8 by default), with cycles and array-active
  utilization from the performance counters, the roofline bound of the shape
  (``sw_runtime.compiler.roofline_utilization``) and the model's estimate beside them;
* ``conv``: each layer of the digits CNN (one batch of test images);
* ``sim_cycles_per_s``: simulated cycles per wall second of each backend on the same
  program (a 64 x 64 x 64 matmul), and of ``verilator_raw``, the same design and program in a
  plain C++ clock loop (``sim/raw_verilator.py``): the ceiling without Python.

``--quick`` keeps the shapes up to 256 (a few minutes instead of about twenty).
"""

import argparse
import itertools
import json
import math
import time

import numpy as np

from rtl.config import NpuConfig
from sim.build import BUILD_ROOT, available_simulators
from sim.raw_verilator import build_raw, record, run_raw
from sw_runtime import Npu
from sw_runtime.compiler import roofline_utilization

REPORT_DIR = BUILD_ROOT / "bench"
SIZES = (64, 256, 512)
SKINNY = [(1, 256, 256), (1, 512, 512), (8, 256, 256), (8, 512, 512)]
SPEED_SHAPE = (64, 64, 64)
TARGETS = {(512, 512, 512): 0.90, (256, 256, 256): 0.85}


def _operands(rng, m, k, n):
    return (rng.integers(-128, 128, (m, k), dtype=np.int8),
            rng.integers(-128, 128, (k, n), dtype=np.int8))


def bench_matmul(npu, model, shapes, rng):
    entries = []
    for index, (m, k, n) in enumerate(shapes, 1):
        a, b = _operands(rng, m, k, n)
        started = time.monotonic()
        result = npu.matmul(a, b)
        wall = time.monotonic() - started
        expected = model.matmul(a, b)
        if not np.array_equal(result, expected):
            raise AssertionError(f"{m}x{k}x{n}: {npu.backend} and the model disagree")
        run = npu.last_run
        entry = {"m": m, "k": k, "n": n, "cycles": run.cycles,
                 "utilization": round(run.utilization, 4),
                 "roofline": round(roofline_utilization(npu.hw, m, k, n, raw=True), 4),
                 "model_estimate_cycles": model.last_run.cycles,
                 "instructions": run.instructions, "bytes_read": run.bytes_read,
                 "bytes_written": run.bytes_written, "wall_seconds": round(wall, 2)}
        target = TARGETS.get((m, k, n))
        if target is not None:
            entry["target"] = target
        entries.append(entry)
        print(f"[{index}/{len(shapes)}] matmul {m}x{k}x{n}: {run.cycles} cycles, "
              f"array active {run.utilization:.1%} (roofline {entry['roofline']:.1%}"
              f"{f', target {target:.0%}' if target else ''}), {wall:.1f} s", flush=True)
    return entries


def bench_conv(npu, images=100):
    from sw_runtime.models import digits

    data = digits.load_data()
    model = digits.quantize(digits.trained_params(data), data.train_x)
    layers = {}
    digits.run_on_npu(npu, model, data.test_x[:images],
                      lambda name, stats: layers.setdefault(name, stats))
    entries = []
    height = 8
    for layer, (name, stats) in zip(model.layers, layers.items()):
        out_channels, in_channels, kernel, _ = layer.weight.shape
        out = (height + 2 * layer.pad - kernel) // layer.stride + 1
        m, k = images * out * out, in_channels * kernel * kernel
        entries.append({"layer": name, "m": m, "k": k, "n": out_channels,
                        "cycles": stats.cycles, "utilization": round(stats.utilization, 4),
                        "roofline": round(roofline_utilization(npu.hw, m, k, out_channels,
                                                               raw=False), 4)})
        print(f"conv {name} (GEMM {m}x{k}x{out_channels}): {stats.cycles} cycles, array "
              f"active {stats.utilization:.1%} (roofline {entries[-1]['roofline']:.1%})",
              flush=True)
        height = out
    return entries


def bench_speed(backends, n, rng):
    speeds = {}
    a, b = _operands(rng, *SPEED_SHAPE)
    speeds["verilator_raw"] = bench_raw_speed(n, a, b)
    for backend in backends:
        with Npu.open(backend, n=n) as npu:
            npu.matmul(a, b)  # warm up (first program, caches)
            started = time.monotonic()
            runs = 0
            while runs < 3 or time.monotonic() - started < 2.0:
                npu.matmul(a, b)
                runs += 1
            seconds = time.monotonic() - started
            speeds[backend] = round(npu.last_run.cycles * runs / seconds)
        print(f"{backend}: {speeds[backend]:,} simulated cycles/s", flush=True)
    return speeds


def bench_raw_speed(n, a, b, seconds=2.0):
    """Cycles per second of the plain C++ harness on the matmul program, its output checked."""
    config = NpuConfig(n=n)
    recording = record(config, lambda npu: npu.matmul(a, b))
    harness = build_raw(config)
    once = run_raw(harness, recording)
    repeats = max(1, math.ceil(seconds / max(once["wall_seconds"], 1e-6)))
    figures = run_raw(harness, recording, repeats=repeats)
    speed = round(figures["sim_cycles"] / figures["wall_seconds"])
    print(f"verilator_raw: {speed:,} simulated cycles/s ({repeats} runs of the program in C++)",
          flush=True)
    return speed


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = report["matmul"] + report["conv"]
    labels = [e.get("layer") or f"{e['m']}x{e['k']}x{e['n']}" for e in entries]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(14, 9),
                                         gridspec_kw={"height_ratios": [3, 1]})
    x = np.arange(len(entries))
    top.bar(x - 0.2, [e["roofline"] for e in entries], 0.4, label="roofline bound",
            color="#cccccc")
    top.bar(x + 0.2, [e["utilization"] for e in entries], 0.4, label="measured (counters)",
            color="#2a6fbb")
    top.set_xticks(x, labels, rotation=70, fontsize=8)
    top.set_ylabel("array active / cycles")
    top.set_ylim(0, 1.05)
    top.set_title(f"Utilization on {report['backend']}, N={report['n']}")
    top.legend()
    speeds = report["sim_cycles_per_s"]
    bottom.barh(list(speeds), list(speeds.values()), color="#bb6f2a")
    bottom.set_xscale("log")
    bottom.set_xlabel("simulated cycles per second")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="verilator")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="shapes up to 256 only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sizes = SIZES[:2] if args.quick else SIZES
    shapes = list(itertools.product(sizes, repeat=3)) + [
        s for s in SKINNY if not args.quick or max(s) <= 256]
    started = time.monotonic()
    with Npu.open(args.backend, n=args.n) as npu, Npu.open("model", n=args.n) as model:
        report = {"backend": args.backend, "n": args.n, "seed": args.seed,
                  "matmul": bench_matmul(npu, model, shapes, rng), "conv": bench_conv(npu)}
    speed_backends = ["model", "amaranth"] + [s for s in ("verilator", "icarus")
                                              if s in available_simulators()]
    report["sim_cycles_per_s"] = bench_speed(speed_backends, args.n, rng)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, REPORT_DIR / "utilization.png")
    print(f"wrote {REPORT_DIR / 'report.json'} and {REPORT_DIR / 'utilization.png'} "
          f"({report['wall_seconds']:.0f} s)")
    missed = [e for e in report["matmul"] if "target" in e and e["utilization"] < e["target"]]
    for e in missed:
        print(f"MISSED: {e['m']}x{e['k']}x{e['n']} {e['utilization']:.1%} < {e['target']:.0%}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
