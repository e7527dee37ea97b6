"""Every artefact generated from the register map and the ISA is up to date and correct."""

import subprocess

import pytest

from rtl.regmap import register_map
from sw_runtime import generate
from sw_runtime.registers import Registers, RegisterError, encode_fields, field_value


def test_generated_files_are_up_to_date():
    assert generate.main(["--check"]) == 0, "run: python -m sw_runtime.generate"


def test_c_header_matches_the_register_map(tmp_path):
    regmap = register_map()
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "npu_regs.h"',
             "int main(void) {"]
    for register in regmap.registers:
        lines.append(f'printf("%zu\\n", offsetof(npu_regs_t, {register.name}));')
        for field in register.fields:
            macro = f"NPU_REGS__{register.name}__{field.name.upper()}"
            lines.append(f'printf("%d %d\\n", {macro}_bp, {macro}_bw);')
    lines.append("return 0; }")
    source = tmp_path / "check.c"
    source.write_text("\n".join(lines))
    binary = tmp_path / "check"
    subprocess.run(["cc", "-std=gnu99", "-Wall", "-Werror", "-I", str(generate.REPO_ROOT /
                    "firmware" / "include"), str(source), "-o", str(binary)], check=True)
    printed = subprocess.run([str(binary)], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    expected = []
    for register in regmap.registers:
        expected.append(str(register.offset))
        expected += [f"{field.lsb} {field.width}" for field in register.fields]
    assert printed[:-1] == expected


def test_runtime_accessors_follow_the_map():
    memory = {}
    registers = Registers(lambda offset: memory.get(offset, 0),
                          lambda offset, value: memory.__setitem__(offset, value))
    regmap = register_map()
    registers.write("CTRL", start=1, irq_enable=1)
    assert memory[regmap["CTRL"].offset] == 0b101
    memory[regmap["ERROR_CODE"].offset] = 4
    assert registers.read_field("ERROR_CODE", "code") == "AXI_READ_ERROR"
    assert field_value("STATUS", "done", 0b010) == 1
    assert encode_fields("ERROR_CODE", code="SRAM_RANGE") == 2
    with pytest.raises(RegisterError, match="no register 'STAT'"):
        registers.read("STAT")
    with pytest.raises(RegisterError, match="register CTRL has no field 'go'"):
        registers.write("CTRL", go=1)
    with pytest.raises(ValueError, match="CONFIG_ARRAY.n is 8 bits wide; 256 does not fit"):
        encode_fields("CONFIG_ARRAY", n=256)
