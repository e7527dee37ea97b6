"""Assembler and disassembler of NPU programs.

The encoding is ``rtl.isa``'s layouts; this module only walks them, so a field added there is
assembled, disassembled and documented without a change here.

Text form, one instruction per line (``#`` starts a comment)::

    load target=SCRATCHPAD sram_addr=0 dram_addr=0x1000 bytes_per_row=64 rows=4 stride=64 push_next
    compute weight_addr=0 act_addr=8 rows=4 acc_addr=0 pop_prev push_prev
    finish
"""

from dataclasses import dataclass, field
from enum import Enum as PyEnum  # Amaranth's enums are Python enums with a shape

from amaranth import Shape
from amaranth.lib import data

from rtl.isa import (FORBIDDEN_DEPENDENCIES, INSTRUCTION_BYTES, INSTRUCTION_LAYOUTS, Dependencies,
                     Header, Opcode)

__all__ = ["Instruction", "AssemblyError", "assemble", "disassemble", "parse", "encode_program",
           "decode_program", "load", "compute", "store", "finish", "DEPENDENCY_FLAGS"]

DEPENDENCY_FLAGS = tuple(name for name, _ in data.Layout.cast(Dependencies))


class AssemblyError(ValueError):
    """A field, flag or word that does not encode; the message names it."""


def _operand_fields(layout):
    """(name, shape) of the fields an instruction's author sets: not header, not reserved."""
    return [(name, f.shape) for name, f in data.Layout.cast(layout)
            if name != "header" and not name.startswith("reserved")]


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction: its opcode, dependency flags and operand fields."""
    opcode: Opcode
    operands: dict = field(default_factory=dict)
    deps: frozenset = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "deps", frozenset(self.deps))
        layout = INSTRUCTION_LAYOUTS[self.opcode]
        names = dict(_operand_fields(layout))
        for name in self.operands:
            if name not in names:
                raise AssemblyError(f"{self.mnemonic} has no field {name!r}; fields: "
                                    f"{', '.join(names) or 'none'}")
        operands = {}
        for name, shape in names.items():
            value = self.operands.get(name, 0)
            if isinstance(shape, type) and issubclass(shape, PyEnum):
                if isinstance(value, str):
                    try:
                        value = shape[value.upper()]
                    except KeyError:
                        raise AssemblyError(
                            f"{self.mnemonic} {name} must be one of "
                            f"{', '.join(m.name for m in shape)}, not {value!r}") from None
                elif not isinstance(value, shape):
                    value = self._enum_from_int(shape, name, value)
            else:
                width = Shape.cast(shape).width
                if not isinstance(value, int) or not 0 <= value < 2 ** width:
                    raise AssemblyError(f"{self.mnemonic} {name} must be an integer in "
                                        f"[0, {2 ** width - 1}], not {value!r}")
            operands[name] = value
        object.__setattr__(self, "operands", operands)
        for flag in self.deps:
            if flag not in DEPENDENCY_FLAGS:
                raise AssemblyError(f"unknown dependency flag {flag!r}; flags: "
                                    f"{', '.join(DEPENDENCY_FLAGS)}")
        bad = self.deps & FORBIDDEN_DEPENDENCIES[self.opcode]
        if bad:
            raise AssemblyError(f"{self.mnemonic} cannot use {', '.join(sorted(bad))}: "
                                f"that neighbour unit does not exist")

    def _enum_from_int(self, shape, name, value):
        try:
            return shape(value)
        except ValueError:
            raise AssemblyError(f"{self.mnemonic} {name} must be one of "
                                f"{', '.join(m.name for m in shape)}, not {value!r}") from None

    @property
    def mnemonic(self):
        return self.opcode.name.lower()

    def __getattr__(self, name):
        operands = self.__dict__.get("operands", {})
        if name in operands:
            return operands[name]
        raise AttributeError(name)

    def encode(self) -> int:
        layout = INSTRUCTION_LAYOUTS[self.opcode]
        header = {"opcode": self.opcode, "deps": {flag: 1 for flag in self.deps}}
        return layout.const({"header": header, **self.operands}).as_bits()

    @classmethod
    def decode(cls, word: int, index=None):
        where = "" if index is None else f" at instruction {index}"
        header = Header.from_bits(word & ((1 << Shape.cast(Header).width) - 1))
        raw_opcode = word & ((1 << Shape.cast(Opcode).width) - 1)
        if raw_opcode not in {op.value for op in Opcode}:
            raise AssemblyError(f"illegal opcode {raw_opcode}{where} (word {word:#034x})")
        opcode = Opcode(raw_opcode)
        layout = INSTRUCTION_LAYOUTS[opcode]
        view = layout.from_bits(word)
        for name, _ in data.Layout.cast(layout):
            if name.startswith("reserved") and getattr(view, name) != 0:
                raise AssemblyError(f"{opcode.name.lower()}{where}: {name} bits are not zero")
        operands = {}
        for name, shape in _operand_fields(layout):
            value = getattr(view, name)
            operands[name] = value if isinstance(value, PyEnum) else int(value)
        deps = {flag for flag in DEPENDENCY_FLAGS if getattr(header.deps, flag)}
        return cls(opcode, operands, deps)

    def __str__(self):
        parts = [self.mnemonic]
        for name, value in self.operands.items():
            if isinstance(value, PyEnum):
                parts.append(f"{name}={value.name}")
            elif name in ("dram_addr", "stride"):
                parts.append(f"{name}={value:#x}")
            else:
                parts.append(f"{name}={value}")
        parts.extend(flag for flag in DEPENDENCY_FLAGS if flag in self.deps)
        return " ".join(parts)


def _make(opcode):
    def make(deps=(), **operands):
        return Instruction(opcode, operands, frozenset(deps))
    make.__name__ = opcode.name.lower()
    make.__doc__ = (f"A {opcode.name} instruction; operands: "
                    f"{', '.join(n for n, _ in _operand_fields(INSTRUCTION_LAYOUTS[opcode]))}"
                    f"; deps: an iterable of {', '.join(DEPENDENCY_FLAGS)}.")
    return make


load = _make(Opcode.LOAD)
compute = _make(Opcode.COMPUTE)
store = _make(Opcode.STORE)
finish = _make(Opcode.FINISH)


def encode_program(instructions) -> bytes:
    """Instructions to the bytes the NPU fetches from DRAM."""
    return b"".join(insn.encode().to_bytes(INSTRUCTION_BYTES, "little")
                    for insn in instructions)


def decode_program(blob: bytes) -> list:
    """Bytes fetched from DRAM back to instructions; illegal words raise AssemblyError."""
    if len(blob) % INSTRUCTION_BYTES:
        raise AssemblyError(f"a program is a multiple of {INSTRUCTION_BYTES} bytes, "
                            f"not {len(blob)}")
    return [Instruction.decode(int.from_bytes(blob[i:i + INSTRUCTION_BYTES], "little"), i // 16)
            for i in range(0, len(blob), INSTRUCTION_BYTES)]


def parse(line: str) -> Instruction:
    """One line of assembly text to an instruction."""
    words = line.split("#", 1)[0].split()
    if not words:
        raise AssemblyError("empty line")
    mnemonic, *rest = words
    try:
        opcode = Opcode[mnemonic.upper()]
    except KeyError:
        raise AssemblyError(f"unknown mnemonic {mnemonic!r}; mnemonics: "
                            f"{', '.join(op.name.lower() for op in Opcode)}") from None
    operands, deps = {}, set()
    for word in rest:
        if "=" in word:
            name, text = word.split("=", 1)
            try:
                operands[name] = int(text, 0)
            except ValueError:
                operands[name] = text
        else:
            deps.add(word)
    return Instruction(opcode, operands, deps)


def assemble(text: str) -> list:
    """Assembly text (one instruction a line) to instructions; errors name the line."""
    program = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.split("#", 1)[0].strip():
            continue
        try:
            program.append(parse(line))
        except AssemblyError as error:
            raise AssemblyError(f"line {number}: {error}") from None
    return program


def disassemble(instructions) -> str:
    return "\n".join(str(insn) for insn in instructions) + "\n"
