"""``python -m sim.serve``: run the device server (``sim.device_server``) in a simulator.

Started by ``sw_runtime.sim_device.SimDevice`` in a subprocess, after it has built (or found
cached) the simulation in ``--build-dir``, so the build's progress shows in the user's
terminal.
"""

import argparse
import json
import os
from pathlib import Path

from rtl.config import NpuConfig
from sim.build import SimulationBuild, run_cocotb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--config", required=True, help="NpuConfig fields as JSON")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--build-dir", required=True, help="the built npu_top simulation")
    parser.add_argument("--dram-size", type=int, required=True)
    args = parser.parse_args(argv)
    config = NpuConfig(**json.loads(args.config))
    build = SimulationBuild(args.simulator, "npu_top", config, {}, Path(args.build_dir), 0.0)
    run_cocotb(build, seed=0, test_module="sim.device_server", run_name=f"serve_{os.getpid()}",
               extra_env={"NPU_SERVER_SOCKET": args.socket,
                          "NPU_DRAM_SIZE": str(args.dram_size)})


if __name__ == "__main__":
    main()
