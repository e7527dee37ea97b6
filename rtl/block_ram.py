"""A block RAM whose reads are registered twice: in the RAM and at its output.

A read's data is on the port's ``data`` ``BLOCK_RAM_READ_LATENCY`` cycles after its ``addr``
and ``en``, on every target, so the design's timing in cycles does not depend on where it is
built:

- on an ECP5 (``platform.family == "ecp5"``) DP16KD instances (36 bits wide up to 512 rows,
  else the widest configuration deep enough) with the output register on
  (REGMODE OUTREG): nextpnr times their data from that register (0.96 ns clock-to-out at
  speed 6) instead of from the RAM array (5.83 ns, which yosys' inference always gives, as it
  cannot place a register of the design in the RAM);
- elsewhere an Amaranth ``Memory`` read port with a register after it.

``en`` low holds the RAM stage (the data of the last enabled read moves on to ``data`` and
stays there); the output register always loads. A read of the address being written in the
same cycle returns undefined data on the ECP5 (the DP16KD's ports collide): users must not
rely on it (the accumulator forwards that write instead; the scratchpad and quant table are
never read and written at one row at once by a correct program).
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out

__all__ = ["BlockRam", "BLOCK_RAM_READ_LATENCY", "dp16kd_data_width"]

BLOCK_RAM_READ_LATENCY = 2
DP16KD_ADDRESS_PINS = 14
# DP16KD configurations: data width -> the address pin the word address starts at (the pins
# below it are unused, or byte enables on the write port at 18 and 36 bits). 36 bits is the
# pseudo dual-port mode: port A writes through both ports' data inputs, port B reads through
# both ports' outputs (as yosys maps PDPW16KD).
DP16KD_CONFIGURATIONS = {36: 5, 18: 4, 9: 3, 4: 2, 2: 1, 1: 0}
DP16KD_PORT_BITS = 18


def dp16kd_data_width(depth):
    """The widest DP16KD configuration with at least ``depth`` words."""
    for width, first_pin in DP16KD_CONFIGURATIONS.items():
        if depth <= 1 << (DP16KD_ADDRESS_PINS - first_pin):
            return width
    raise ValueError(f"a block RAM of {depth} words is deeper than one DP16KD (16384 words); "
                     f"cascading is not implemented")


class BlockRam(wiring.Component):
    """``depth`` rows of ``shape``, one write port and ``read_ports`` read ports.

    Members
    -------
    write : Out(WritePort.Signature)
        Written at the clock edge ending the cycle ``en`` is high.
    read : Out(ReadPort.Signature).array(read_ports)
        ``data`` is the row at ``addr`` ``BLOCK_RAM_READ_LATENCY`` cycles after ``en``.
    """

    def __init__(self, *, shape, depth, read_ports):
        self._shape = shape
        self._depth = depth
        addr_width = max(1, (depth - 1).bit_length())
        super().__init__({
            "write": Out(WritePort.Signature(addr_width=addr_width, shape=shape)),
            "read": Out(ReadPort.Signature(addr_width=addr_width,
                                           shape=shape)).array(read_ports),
        })

    def elaborate(self, platform):
        m = Module()
        if getattr(platform, "family", None) == "ecp5":
            for index, port in enumerate(self.read):
                self._ecp5_read_port(m, index, port)
            return m
        m.submodules.memory = memory = Memory(shape=self._shape, depth=self._depth, init=[])
        wiring.connect(m, wiring.flipped(self.write), memory.write_port())
        for port in self.read:
            ram_port = memory.read_port()
            m.d.comb += [ram_port.addr.eq(port.addr), ram_port.en.eq(port.en)]
            m.d.sync += port.data.eq(ram_port.data)
        return m

    def _ecp5_read_port(self, m, index, port):
        """A column of DP16KDs for one read port: each holds a slice of every row, written
        through its port A, read through its port B into the output register."""
        width = dp16kd_data_width(self._depth)
        first_pin = DP16KD_CONFIGURATIONS[width]
        write_data = Value.cast(self.write.data)
        row_bits = len(write_data)
        read_data = Signal(row_bits)
        m.d.comb += port.data.eq(read_data)
        pseudo_dual_port = width == 2 * DP16KD_PORT_BITS
        # Byte write enables: port A's lowest address pins at 18 bits (two) and 36 (four).
        byte_enables = {18: 2, 36: 4}.get(width, 0)
        for block, low in enumerate(range(0, row_bits, width)):
            slice_bits = min(width, row_bits - low)
            data_in = Cat(write_data[low:low + slice_bits], C(0, width - slice_bits))
            data_out = Signal(width, name=f"ram_{index}_{block}_out")
            m.d.comb += read_data[low:low + slice_bits].eq(data_out[:slice_bits])
            pins = {}
            for pin in range(DP16KD_ADDRESS_PINS):
                word_bit = pin - first_pin
                in_range_a = 0 <= word_bit < len(self.write.addr)
                in_range_b = 0 <= word_bit < len(port.addr)
                pins[f"i_ADA{pin}"] = self.write.addr[word_bit] if in_range_a else (
                    C(1, 1) if pin < byte_enables else C(0, 1))
                pins[f"i_ADB{pin}"] = port.addr[word_bit] if in_range_b else C(0, 1)
            for bit in range(DP16KD_PORT_BITS):
                high = bit + DP16KD_PORT_BITS
                pins[f"i_DIA{bit}"] = data_in[bit] if bit < width else C(0, 1)
                pins[f"i_DIB{bit}"] = data_in[high] if pseudo_dual_port else C(0, 1)
                if pseudo_dual_port:
                    pins[f"o_DOA{bit}"] = data_out[bit]
                    pins[f"o_DOB{bit}"] = data_out[high]
                elif bit < width:
                    pins[f"o_DOB{bit}"] = data_out[bit]
            for pin in range(3):
                pins[f"i_CSA{pin}"] = C(0, 1)
                pins[f"i_CSB{pin}"] = C(0, 1)
            m.submodules[f"ram_{index}_{block}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=width, p_DATA_WIDTH_B=width,
                # Port A's outputs carry half of the read in the pseudo dual-port mode.
                p_REGMODE_A="OUTREG" if pseudo_dual_port else "NOREG", p_REGMODE_B="OUTREG",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_GSR="DISABLED",
                i_CLKA=ClockSignal("sync"), i_CEA=self.write.en, i_OCEA=C(1, 1),
                i_WEA=self.write.en, i_RSTA=C(0, 1),
                i_CLKB=ClockSignal("sync"), i_CEB=port.en, i_OCEB=C(1, 1),
                i_WEB=C(0, 1), i_RSTB=C(0, 1),
                **pins)
