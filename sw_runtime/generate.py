"""Write every file derived from the register map and the instruction set.

``python -m sw_runtime.generate`` rewrites them; ``--check`` only compares and fails on any
difference (the test suite runs that). Sources: ``rtl/regs/npu_regs.rdl`` (compiled by
``rtl.regmap``) and ``rtl/isa.py``.
"""

import argparse
import pprint
import sys
import tempfile
from enum import Enum as PyEnum
from pathlib import Path

from amaranth import Shape
from amaranth.lib import data

from rtl import isa
from rtl.regmap import RDL_FILE, compile_rdl, register_map

__all__ = ["ARTEFACTS", "generate_all", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _c_header(path: Path):
    from peakrdl_cheader.c_standards import CStandard
    from peakrdl_cheader.exporter import CHeaderExporter

    CHeaderExporter().export(compile_rdl().top, str(path), std=CStandard.gnu99)


def _registers_markdown(path: Path):
    from peakrdl_markdown import MarkdownExporter

    MarkdownExporter().export(compile_rdl().top, str(path))
    text = path.read_text()
    path.write_text(f"<!-- Generated from {RDL_FILE.relative_to(REPO_ROOT)} by "
                    f"`python -m sw_runtime.generate`; do not edit. -->\n\n" + text)


def _python_register_map(path: Path):
    regmap = register_map()
    description = {
        register.name: {
            "offset": register.offset,
            "fields": {f.name: {"lsb": f.lsb, "width": f.width, "sw_read": f.sw_read,
                                "sw_write": f.sw_write, "reset": f.reset,
                                **({"enum": {name: value for name, value, _ in f.enum}}
                                   if f.enum else {})}
                       for f in register.fields},
        } for register in regmap.registers}
    path.write_text(
        f'"""The register map for the runtime. Generated from '
        f'{RDL_FILE.relative_to(REPO_ROOT)} by\n``python -m sw_runtime.generate``; do not edit."""'
        f"\n\nREGISTERS = {pprint.pformat(description, sort_dicts=False, width=99)}\n")


def _layout_rows(layout, prefix=""):
    rows = []
    for name, f in data.Layout.cast(layout):
        full = f"{prefix}{name}"
        shape = f.shape
        if isinstance(shape, type) and issubclass(shape, data.Struct):
            for sub_name, sub_lsb, sub_width, sub_type in _layout_rows(shape, f"{full}."):
                rows.append((sub_name, f.offset + sub_lsb, sub_width, sub_type))
            continue
        width = Shape.cast(shape).width
        if isinstance(shape, type) and issubclass(shape, PyEnum):
            kind = shape.__name__
        else:
            kind = "signed" if Shape.cast(shape).signed else "unsigned"
        rows.append((full, f.offset, width, kind))
    return rows


def _layout_table(layout):
    lines = ["| bits | field | type | meaning |", "|---|---|---|---|"]
    for name, lsb, width, kind in _layout_rows(layout):
        bits = f"{lsb}" if width == 1 else f"{lsb + width - 1}:{lsb}"
        doc = isa.FIELD_DOCS.get(name, isa.FIELD_DOCS.get(name.rsplit(".", 1)[-1], ""))
        lines.append(f"| {bits} | `{name}` | {kind} | {doc} |")
    return "\n".join(lines)


def _enum_table(enum_class):
    lines = ["| value | name |", "|---|---|"]
    lines += [f"| {member.value} | `{member.name}` |" for member in enum_class]
    return "\n".join(lines)


def _isa_markdown(path: Path):
    parts = [
        "<!-- Generated from rtl/isa.py by `python -m sw_runtime.generate`; do not edit. -->",
        "",
        "# Instruction set",
        "",
        *[" ".join(paragraph.split()) + "\n" for paragraph in isa.__doc__.split("\n\n")[1:]],
        "## Opcodes",
        "",
        _enum_table(isa.Opcode),
    ]
    for opcode, layout in isa.INSTRUCTION_LAYOUTS.items():
        doc = " ".join((layout.__doc__ or "").split())
        parts += ["", f"## {opcode.name}", ""] + ([doc, ""] if doc else []) + [
            _layout_table(layout)]
    for enum_class in (isa.LoadTarget, isa.StoreMode):
        parts += ["", f"## {enum_class.__name__}", "",
                  " ".join((enum_class.__doc__ or "").split()), "", _enum_table(enum_class)]
    parts += ["", "## QuantParams (one lane of a quant table row)", "",
              " ".join(isa.QuantParams.__doc__.split()), "", _layout_table(isa.QuantParams)]
    path.write_text("\n".join(parts) + "\n")


ARTEFACTS = {
    "firmware/include/npu_regs.h": _c_header,
    "docs/registers.md": _registers_markdown,
    "sw_runtime/regmap_generated.py": _python_register_map,
    "docs/isa.md": _isa_markdown,
}


def generate_all(root: Path):
    for relative, write in ARTEFACTS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files in the repository instead of writing")
    args = parser.parse_args(argv)
    if not args.check:
        generate_all(REPO_ROOT)
        for relative in ARTEFACTS:
            print(f"wrote {relative}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        generate_all(Path(scratch))
        stale = [relative for relative in ARTEFACTS
                 if not (REPO_ROOT / relative).exists()
                 or (REPO_ROOT / relative).read_text() != (Path(scratch) / relative).read_text()]
    for relative in stale:
        print(f"out of date: {relative} (run python -m sw_runtime.generate)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
