"""The compiled register map: ``rtl/regs/npu_regs.rdl`` read through systemrdl-compiler.

This is the only module that compiles the SystemRDL. The register block (``rtl.registers``)
is elaborated from what it returns, and ``sw_runtime.generate`` writes the C header, the
Markdown table and the runtime's register description from the same compiled tree.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["RDL_FILE", "Field", "Register", "RegisterMap", "compile_rdl", "register_map",
           "error_codes", "config_registers"]

RDL_FILE = Path(__file__).resolve().parent / "regs" / "npu_regs.rdl"


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    sw_read: bool
    sw_write: bool
    hw_read: bool     # hardware sees the value software wrote (an output of the block)
    hw_write: bool    # hardware drives the value software reads (an input of the block)
    singlepulse: bool
    reset: int
    desc: str
    enum: tuple = ()  # ((name, value, desc), ...) when the field is encoded


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    desc: str
    fields: tuple


@dataclass(frozen=True)
class RegisterMap:
    name: str
    registers: tuple

    def __getitem__(self, name):
        for register in self.registers:
            if register.name == name:
                return register
        raise KeyError(f"no register {name!r}")

    @property
    def span(self):
        return max(register.offset for register in self.registers) + 4


@cache
def compile_rdl():
    """The elaborated systemrdl-compiler root node (cached: compiling takes ~0.1 s)."""
    from systemrdl import RDLCompiler

    compiler = RDLCompiler()
    compiler.compile_file(str(RDL_FILE))
    return compiler.elaborate()


@cache
def register_map() -> RegisterMap:
    top = compile_rdl().top
    registers = []
    for node in top.registers():
        if node.get_property("regwidth") != 32:
            raise ValueError(f"{node.inst_name}: only 32-bit registers are supported")
        fields = []
        for f in node.fields():
            encode = f.get_property("encode")
            enum = tuple((member.name, member.value, member.rdl_desc or "")
                         for member in encode) if encode else ()
            fields.append(Field(
                name=f.inst_name, lsb=f.lsb, width=f.width,
                sw_read=f.is_sw_readable, sw_write=f.is_sw_writable,
                hw_read=f.is_hw_readable, hw_write=f.is_hw_writable,
                singlepulse=bool(f.get_property("singlepulse")),
                reset=f.get_property("reset") or 0,
                desc=" ".join((f.get_property("desc") or "").split()), enum=enum))
        registers.append(Register(node.inst_name, node.absolute_address,
                                  " ".join((node.get_property("desc") or
                                            node.get_property("name") or "").split()),
                                  tuple(fields)))
    return RegisterMap(top.inst_name, tuple(registers))


@cache
def error_codes():
    """Name -> value of the ERROR_CODE.code enum: the fault codes the hardware reports."""
    (field,) = register_map()["ERROR_CODE"].fields
    return {name: value for name, value, _ in field.enum}


def config_registers(config):
    """What the CONFIG registers of a build with ``config`` (an NpuConfig) read: register name
    -> field name -> value. The RTL drives them from this, and the model answers with it."""
    return {
        "CONFIG_ARRAY": {"n": config.n, "bus_bytes": config.bus_bytes,
                         "queue_depth": config.instruction_queue_depth},
        "CONFIG_SCRATCHPAD": {"rows": config.scratchpad_depth},
        "CONFIG_ACCUMULATOR": {"rows": config.accumulator_depth},
        "CONFIG_QUANT": {"rows": config.quant_table_depth},
    }
