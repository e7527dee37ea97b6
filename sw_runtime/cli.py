"""The ``npu`` command line.

    npu info [--backend B] [--n N]        backend and the CONFIG registers it reports
    npu asm PROGRAM.s -o PROGRAM.bin      assemble text to the bytes the NPU fetches
    npu disasm PROGRAM.bin                print a binary program as text
    npu disasm --gemm M K N [--raw]       print the program the compiler makes for a GEMM
    npu demo digits [--backend B]         the int8 digits CNN (see sw_runtime/models/digits.py)
"""

import argparse
import sys
from pathlib import Path

from .assembler import AssemblyError, assemble, decode_program, disassemble, encode_program
from .errors import NpuError
from .npu import BACKENDS, Npu

__all__ = ["main"]


def _info(args):
    with Npu.open(args.backend, n=args.n) as npu:
        regs = npu.device.registers
        version = regs.read("VERSION")
        print(f"backend      {npu.backend}")
        print(f"ID           {regs.read_field('ID', 'magic'):#010x}")
        print(f"version      {version['major']}.{version['minor']}")
        hw = npu.hw
        print(f"array        {hw.n} x {hw.n} int8 MACs")
        print(f"AXI bus      {hw.bus_bytes * 8} bits")
        print(f"queues       {hw.queue_depth} instructions per unit")
        print(f"scratchpad   {hw.scratchpad_rows} rows x {hw.n} B = "
              f"{hw.scratchpad_rows * hw.n // 1024} KiB")
        print(f"accumulator  {hw.accumulator_rows} rows x {hw.n} int32 = "
              f"{hw.accumulator_rows * hw.n * 4 // 1024} KiB")
        print(f"quant table  {hw.quant_rows} rows")
        print(f"DRAM         {npu.device.dram_size // 2 ** 20} MiB")


def _asm(args):
    program = assemble(Path(args.source).read_text())
    Path(args.output).write_bytes(encode_program(program))
    print(f"{len(program)} instructions -> {args.output}")


def _disasm(args):
    if args.gemm:
        from .compiler import GemmLayout, gemm_program, plan_gemm
        from .device import HardwareConfig
        from rtl.config import NpuConfig

        hw = HardwareConfig.from_config(NpuConfig(n=args.n or 8))
        m, k, n = args.gemm
        plan = plan_gemm(hw, m, k, n, raw=args.raw)
        layout = GemmLayout(a=0x10000, w=0x100000, c=0x200000, bias=None if args.raw else
                            0x300000, quant=None if args.raw else 0x310000)
        program = gemm_program(hw, plan, layout, raw=args.raw)
        print(f"# {m} x {k} x {n} GEMM at N={hw.n}: {plan}")
    elif args.program:
        program = decode_program(Path(args.program).read_bytes())
    else:
        raise SystemExit("npu disasm: give a program file or --gemm M K N")
    sys.stdout.write(disassemble(program))


def _demo(args):
    if args.model != "digits":
        raise SystemExit(f"npu demo: unknown demo {args.model!r}; demos: digits")
    from .models import digits
    digits.demo(args.backend, n=args.n, limit=args.limit)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="npu", description="The NPU's command line.")
    commands = parser.add_subparsers(dest="command", required=True)

    def backend_options(command):
        command.add_argument("--backend", default="model", choices=BACKENDS)
        command.add_argument("--n", type=int, default=None, help="array size (default 8)")

    info = commands.add_parser("info", help="backend and CONFIG registers")
    backend_options(info)
    info.set_defaults(run=_info)
    asm = commands.add_parser("asm", help="assemble a text program")
    asm.add_argument("source")
    asm.add_argument("-o", "--output", required=True)
    asm.set_defaults(run=_asm)
    disasm = commands.add_parser("disasm", help="print a program")
    disasm.add_argument("program", nargs="?")
    disasm.add_argument("--gemm", nargs=3, type=int, metavar=("M", "K", "N"),
                        help="print the compiler's program for this GEMM instead")
    disasm.add_argument("--raw", action="store_true", help="GEMM with int32 output")
    disasm.add_argument("--n", type=int, default=None)
    disasm.set_defaults(run=_disasm)
    demo = commands.add_parser("demo", help="run a demo model")
    demo.add_argument("model", help="digits")
    backend_options(demo)
    demo.add_argument("--limit", type=int, default=None, help="test images to run")
    demo.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (NpuError, AssemblyError, OSError) as error:
        print(f"npu {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
