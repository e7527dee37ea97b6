"""The AXI4-Lite register block, elaborated from the compiled SystemRDL description."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, Response
from .regmap import RegisterMap, register_map

__all__ = ["RegisterBlock"]


def _field_kind(field):
    """How a field is built: 'input' (hardware drives it), 'stored' (software writes it, the
    hardware sees it), 'pulse' (a one-cycle strobe on writing 1) or 'constant'."""
    if field.hw_write:
        if field.sw_write:
            raise ValueError(f"field {field.name}: fields both software- and hardware-written "
                             f"are not supported")
        return "input"
    if field.sw_write:
        return "pulse" if field.singlepulse else "stored"
    return "constant"


class RegisterBlock(wiring.Component):
    """AXI4-Lite subordinate holding the registers of ``rtl/regs/npu_regs.rdl``.

    One transaction at a time per direction; a write completes when both its address and
    data have arrived, a read answers three cycles after its address. Reads and writes of an
    address outside the map answer SLVERR, and so do writes to a register without a writable
    field; write strobes select bytes.

    Members
    -------
    axil : In(AXI4LiteSignature)
        The bus.
    <register> : Out(Signature)
        One member per register with hardware-facing fields, named as the register in lower
        case; each field is ``In(width)`` when the hardware drives it (status, counters,
        configuration) and ``Out(width)`` when software writes it (stored values, and one-cycle
        pulses for ``singlepulse`` fields).
    """

    def __init__(self, regmap: RegisterMap = None, *, addr_width=12):
        self._regmap = regmap or register_map()
        if self._regmap.span > 2 ** addr_width:
            raise ValueError(f"addr_width {addr_width} cannot reach the register map's "
                             f"{self._regmap.span} bytes")
        members = {"axil": In(AXI4LiteSignature(addr_width=addr_width))}
        for register in self._regmap.registers:
            ports = {}
            for field in register.fields:
                kind = _field_kind(field)
                if kind == "input":
                    ports[field.name] = In(field.width)
                elif kind in ("stored", "pulse"):
                    ports[field.name] = Out(field.width)
            if ports:
                members[register.name.lower()] = Out(wiring.Signature(ports))
        super().__init__(members)

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        bus = self.axil
        read_values = {}   # offset -> 32-bit value read by software
        writers = {}       # offset -> function(m, data, strobe) adding the write's effects

        for register in self._regmap.registers:
            ports = getattr(self, register.name.lower(), None)
            read_value = Signal(32, name=f"{register.name.lower()}_read_value")
            writable = []
            for field in register.fields:
                kind = _field_kind(field)
                bits = slice(field.lsb, field.lsb + field.width)
                if kind == "input":
                    value = getattr(ports, field.name)
                elif kind == "stored":
                    value = Signal(field.width, init=field.reset,
                                   name=f"{register.name.lower()}_{field.name}")
                    m.d.comb += getattr(ports, field.name).eq(value)
                    writable.append((field, value))
                elif kind == "pulse":
                    value = Const(0, field.width)
                    m.d.sync += getattr(ports, field.name).eq(0)  # high for one cycle only
                    writable.append((field, getattr(ports, field.name)))
                else:
                    value = Const(field.reset, field.width)
                if field.sw_read:
                    m.d.comb += read_value[bits].eq(value)
            read_values[register.offset] = read_value
            if writable:
                writers[register.offset] = writable

        # Write: take address and data together, answer on B.
        write_response = Signal(Response)
        m.d.comb += bus.bresp.eq(write_response)
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(~bus.bvalid & bus.awvalid & bus.wvalid):
            m.d.comb += [bus.awready.eq(1), bus.wready.eq(1)]
            m.d.sync += [bus.bvalid.eq(1), write_response.eq(Response.SLVERR)]
            word_address = bus.awaddr[2:]
            data = bus.wdata
            with m.Switch(word_address):
                for offset, writable in writers.items():
                    with m.Case(offset // 4):
                        m.d.sync += write_response.eq(Response.OKAY)
                        for field, target in writable:
                            for bit in range(field.width):
                                position = field.lsb + bit
                                with m.If(bus.wstrb[position // 8]):
                                    m.d.sync += target[bit].eq(data[position])

        # Read in three cycles: latch the address; select the value within its group of
        # eight words; select the group. The selection (a mux of every register, some fed by
        # status logic) so starts at registers and is split in two shallow halves.
        read_response = Signal(Response)
        m.d.comb += bus.rresp.eq(read_response)
        read_address = Signal.like(bus.araddr[2:], reset_less=True)
        address_read = Signal()    # read_address holds a read's word address
        groups = {}                # group -> {word in group: value}
        for offset, value in read_values.items():
            groups.setdefault(offset // 4 >> 3, {})[offset // 4 & 7] = value
        group_values = {group: Signal(32, name=f"read_group_{group}", reset_less=True)
                        for group in groups}
        group_hit = Signal(len(groups))   # per group: the word is a register of it
        values_read = Signal()     # group_values and group_hit hold the read's candidates

        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(~bus.rvalid & ~address_read & ~values_read & bus.arvalid):
            m.d.comb += bus.arready.eq(1)
            m.d.sync += [address_read.eq(1), read_address.eq(bus.araddr[2:])]
        with m.If(address_read):
            m.d.sync += [address_read.eq(0), values_read.eq(1), group_hit.eq(0)]
            for position, (group, words) in enumerate(groups.items()):
                m.d.sync += group_values[group].eq(0)
                with m.Switch(read_address[:3]):
                    for word, value in words.items():
                        with m.Case(word):
                            m.d.sync += [group_values[group].eq(value),
                                         group_hit[position].eq(1)]
        with m.If(values_read):
            m.d.sync += [values_read.eq(0), bus.rvalid.eq(1), bus.rdata.eq(0),
                         read_response.eq(Response.SLVERR)]
            with m.Switch(read_address >> 3):  # held: no read is accepted meanwhile
                for position, group in enumerate(groups):
                    with m.Case(group):
                        with m.If(group_hit[position]):
                            m.d.sync += [bus.rdata.eq(group_values[group]),
                                         read_response.eq(Response.OKAY)]
        return m
