"""The ``npu`` command line: info, asm/disasm round trips, the compiler's programs."""

from sw_runtime.assembler import assemble, encode_program
from sw_runtime.cli import main


def test_info_reports_the_config_registers(capsys):
    assert main(["info", "--backend", "model", "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 x 4 int8 MACs" in out and "0x4e505530" in out


def test_asm_and_disasm_round_trip(tmp_path, capsys):
    text = ("load target=SCRATCHPAD sram_addr=0 dram_addr=0x1000 bytes_per_row=64 rows=1 "
            "stride=0x0 push_next\n"
            "compute weight_addr=0 act_addr=8 rows=4 acc_addr=0 accumulate=0 pop_prev\n"
            "finish\n")
    source, binary = tmp_path / "p.s", tmp_path / "p.bin"
    source.write_text(text)
    assert main(["asm", str(source), "-o", str(binary)]) == 0
    assert binary.read_bytes() == encode_program(assemble(text))
    capsys.readouterr()
    assert main(["disasm", str(binary)]) == 0
    assert assemble(capsys.readouterr().out) == assemble(text)


def test_disasm_prints_the_compilers_gemm_program(capsys):
    assert main(["disasm", "--gemm", "20", "30", "12"]) == 0
    out = capsys.readouterr().out
    program = assemble(out)
    assert program[-1].mnemonic == "finish"
    assert sum(insn.mnemonic == "compute" for insn in program) >= 4 * 2  # K tiles x col tiles


def test_errors_are_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 15)
    assert main(["disasm", str(bad)]) == 1
    assert "multiple of 16 bytes" in capsys.readouterr().err
