"""Assembler and disassembler: round trips, encodings against the layouts, clear errors."""

import numpy as np
import pytest
from amaranth import Shape
from amaranth.lib import data

from rtl.isa import (INSTRUCTION_BITS, INSTRUCTION_LAYOUTS, LoadInstruction, LoadTarget,
                     Opcode, StoreMode)
from sw_runtime.assembler import (DEPENDENCY_FLAGS, AssemblyError, Instruction, assemble,
                                  compute, decode_program, disassemble, encode_program, finish,
                                  load, store)


def test_every_layout_is_one_instruction_wide():
    for layout in INSTRUCTION_LAYOUTS.values():
        assert Shape.cast(layout).width == INSTRUCTION_BITS


def test_load_fields_land_where_the_layout_says():
    insn = load(target="ACCUMULATOR", sram_addr=0x1234, dram_addr=0xDEADBEEF,
                bytes_per_row=0x40, rows=3, stride=0x100, deps={"push_next"})
    word = insn.encode()
    # Independent check: slice the word at the offsets the layout declares.
    fields = {name: f for name, f in data.Layout.cast(LoadInstruction)}
    def bits(name):
        return (word >> fields[name].offset) & ((1 << Shape.cast(fields[name].shape).width) - 1)
    assert word & 0b111 == Opcode.LOAD.value
    assert bits("sram_addr") == 0x1234 and bits("dram_addr") == 0xDEADBEEF
    assert bits("rows") == 3 and bits("stride") == 0x100
    assert bits("target") == LoadTarget.ACCUMULATOR.value
    # push_next is the fourth dependency flag, right after the 3-bit opcode.
    assert (word >> 3) & 0xF == 1 << DEPENDENCY_FLAGS.index("push_next")


def random_instruction(rng):
    opcode = Opcode(int(rng.choice([op.value for op in Opcode])))
    operands = {}
    for name, f in data.Layout.cast(INSTRUCTION_LAYOUTS[opcode]):
        if name == "header" or name.startswith("reserved"):
            continue
        if isinstance(f.shape, type) and issubclass(f.shape, (LoadTarget, StoreMode)):
            operands[name] = f.shape(int(rng.choice([m.value for m in f.shape])))
        else:
            operands[name] = int(rng.integers(0, 2 ** Shape.cast(f.shape).width,
                                              dtype=np.uint64))
    allowed = {Opcode.LOAD: ["pop_next", "push_next"], Opcode.STORE: ["pop_prev", "push_prev"],
               Opcode.COMPUTE: list(DEPENDENCY_FLAGS), Opcode.FINISH: []}[opcode]
    deps = {flag for flag in allowed if rng.random() < 0.5}
    return Instruction(opcode, operands, deps)


def test_round_trips_binary_and_text():
    seed = 42
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    program = [random_instruction(rng) for _ in range(300)]
    blob = encode_program(program)
    assert len(blob) == 16 * len(program)
    assert decode_program(blob) == program
    assert assemble(disassemble(program)) == program


def test_text_syntax():
    program = assemble("""
        # a comment line
        load target=scratchpad sram_addr=0 dram_addr=0x1000 bytes_per_row=64 rows=4 stride=64 push_next
        compute weight_addr=0 act_addr=8 rows=4 acc_addr=0 accumulate=1 pop_prev push_prev
        store mode=REQUANT acc_addr=0 quant_addr=2 dram_addr=0x2000 bytes_per_row=8 rows=4 stride=16
        finish
    """)
    assert [insn.opcode for insn in program] == [Opcode.LOAD, Opcode.COMPUTE, Opcode.STORE,
                                                 Opcode.FINISH]
    assert program[0].target is LoadTarget.SCRATCHPAD and program[0].dram_addr == 0x1000
    assert program[1].deps == {"pop_prev", "push_prev"} and program[1].accumulate == 1
    assert program[2].quant_addr == 2


@pytest.mark.parametrize("make, message", [
    (lambda: load(rows=2 ** 16), r"load rows must be an integer in \[0, 65535\]"),
    (lambda: load(target="DRAM"), "load target must be one of SCRATCHPAD, ACCUMULATOR, QUANT"),
    (lambda: load(colour=1), "load has no field 'colour'"),
    (lambda: load(deps={"pop_prev"}), "load cannot use pop_prev"),
    (lambda: store(deps={"push_next"}), "store cannot use push_next"),
    (lambda: compute(deps={"pop_sideways"}), "unknown dependency flag 'pop_sideways'"),
    (lambda: assemble("compute rows=1\nfrobnicate"), "line 2: unknown mnemonic 'frobnicate'"),
    (lambda: decode_program(bytes(16)), "illegal opcode 0 at instruction 0"),
    (lambda: decode_program(bytes(15)), "multiple of 16 bytes, not 15"),
    (lambda: decode_program((2 | 1 << 100).to_bytes(16, "little")),
     "compute at instruction 0: reserved_high bits are not zero"),
])
def test_errors_name_the_problem(make, message):
    with pytest.raises(AssemblyError, match=message):
        make()


def test_finish_has_no_operands():
    assert str(finish()) == "finish"
    assert finish().encode() == Opcode.FINISH.value
