"""Named access to the NPU's registers, from the generated register description.

``Registers`` wraps any pair of 32-bit read/write functions (a simulated device, a board
transport) and speaks in register and field names from ``rtl/regs/npu_regs.rdl``.
"""

from .regmap_generated import REGISTERS

__all__ = ["Registers", "RegisterError", "REGISTERS", "field_value", "encode_fields"]


class RegisterError(KeyError):
    def __str__(self):
        return self.args[0]


def _register(name):
    try:
        return REGISTERS[name]
    except KeyError:
        raise RegisterError(f"no register {name!r}; registers: {', '.join(REGISTERS)}") from None


def _field(register_name, field_name):
    fields = _register(register_name)["fields"]
    try:
        return fields[field_name]
    except KeyError:
        raise RegisterError(f"register {register_name} has no field {field_name!r}; fields: "
                            f"{', '.join(fields)}") from None


def field_value(register_name, field_name, word):
    """The value of one field in a register's 32-bit word (an enum name for encoded fields)."""
    field = _field(register_name, field_name)
    value = (word >> field["lsb"]) & ((1 << field["width"]) - 1)
    for name, encoded in field.get("enum", {}).items():
        if encoded == value:
            return name
    return value


def encode_fields(register_name, **values):
    """A 32-bit word with the named fields set (others zero); enum fields take names."""
    word = 0
    for field_name, value in values.items():
        field = _field(register_name, field_name)
        if isinstance(value, str):
            value = field.get("enum", {}).get(value)
            if value is None:
                raise ValueError(f"{register_name}.{field_name} has no value named "
                                 f"{values[field_name]!r}")
        if not 0 <= value < 2 ** field["width"]:
            raise ValueError(f"{register_name}.{field_name} is {field['width']} bits wide; "
                             f"{value!r} does not fit")
        word |= value << field["lsb"]
    return word


class Registers:
    """Register access by name over ``read32(offset)`` and ``write32(offset, value)``."""

    def __init__(self, read32, write32):
        self._read32 = read32
        self._write32 = write32

    def offset(self, name):
        return _register(name)["offset"]

    def read(self, name):
        """All fields of a register, as a dict."""
        word = self._read32(self.offset(name))
        return {field: field_value(name, field, word) for field in REGISTERS[name]["fields"]}

    def read_field(self, name, field):
        return field_value(name, field, self._read32(self.offset(name)))

    def write(self, name, **fields):
        """Write a whole register: the named fields, the others zero."""
        self._write32(self.offset(name), encode_fields(name, **fields))
