"""Test-only top levels that put single hardware blocks on real buses."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.axi import AXI4Signature, connect_channels
from rtl.block_ram import BlockRam
from rtl.config import NpuConfig
from rtl.dma import DmaReader, DmaWriter, Transfer, engine_params
from rtl.gearbox import RowPacker, RowUnpacker
from rtl.multiplier import registered_multiply

__all__ = ["DmaCopyHarness", "MultiplierHarness", "BlockRamHarness"]


class DmaCopyHarness(wiring.Component):
    """DRAM -> DmaReader -> RowPacker -> RowUnpacker -> DmaWriter -> DRAM.

    Copies the bytes of one 2-D transfer into another of the same size through rows of
    ``row_bytes``, the path every LOAD and STORE takes, so a test can check both engines and
    both gearboxes against a RAM model.
    """

    def __init__(self, config: NpuConfig, *, row_bytes):
        self._config = config
        self._row_bytes = row_bytes
        super().__init__({
            "m_axi": Out(AXI4Signature(data_width=config.axi_data_width)),
            "read_transfer": In(stream.Signature(Transfer)),
            "write_transfer": In(stream.Signature(Transfer)),
            "busy": Out(1),
            "read_error": Out(1),
            "write_error": Out(1),
            "abort": In(1),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        w = config.bus_bytes
        engine = engine_params(config)
        m.submodules.reader = reader = DmaReader(**engine)
        packer = RowPacker(chunk_bytes=w, row_bytes=self._row_bytes)
        unpacker = RowUnpacker(chunk_bytes=w, row_bytes=self._row_bytes)
        # After an abort the gearboxes may hold bytes of the dropped transfer.
        m.submodules.packer = ResetInserter(self.clear)(packer)
        m.submodules.unpacker = ResetInserter(self.clear)(unpacker)
        m.submodules.writer = writer = DmaWriter(
            **engine, source_capacity=unpacker.capacity)

        wiring.connect(m, wiring.flipped(self.read_transfer), reader.transfer)
        wiring.connect(m, wiring.flipped(self.write_transfer), writer.transfer)
        wiring.connect(m, reader.chunk, packer.chunk)
        wiring.connect(m, packer.row, unpacker.row)
        wiring.connect(m, unpacker.source, writer.source)
        connect_channels(m, reader.axi, self.m_axi)
        connect_channels(m, writer.axi, self.m_axi)
        for engine_block in (reader, writer):
            m.d.comb += [engine_block.abort.eq(self.abort), engine_block.clear.eq(self.clear)]
        m.d.comb += [
            self.busy.eq(reader.busy | writer.busy),
            self.read_error.eq(reader.error),
            self.write_error.eq(writer.error),
        ]
        return m


class MultiplierHarness(wiring.Component):
    """``rtl.multiplier.registered_multiply`` alone: ``product`` is ``a * b`` of
    ``MULTIPLY_LATENCY`` cycles earlier, for operands of the given widths and signedness."""

    def __init__(self, config: NpuConfig, *, a_width, a_signed, b_width, b_signed):
        product_signed = bool(a_signed or b_signed)
        super().__init__({
            "a": In(Shape(a_width, bool(a_signed))),
            "b": In(Shape(b_width, bool(b_signed))),
            "product": Out(Shape(a_width + b_width, product_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        registered_multiply(m, platform, self.a, self.b, self.product)
        return m


class BlockRamHarness(wiring.Component):
    """``rtl.block_ram.BlockRam`` with two read ports, its ports flattened for cocotb:
    ``read{i}_data`` is the row at ``read{i}_addr`` ``BLOCK_RAM_READ_LATENCY`` cycles after
    ``read{i}_en``."""

    READ_PORTS = 2

    def __init__(self, config: NpuConfig, *, depth, width):
        self._ram = BlockRam(shape=unsigned(width), depth=depth, read_ports=self.READ_PORTS)
        addr_width = len(self._ram.write.addr)
        members = {"write_addr": In(addr_width), "write_data": In(width), "write_en": In(1)}
        for index in range(self.READ_PORTS):
            members.update({f"read{index}_addr": In(addr_width), f"read{index}_en": In(1),
                            f"read{index}_data": Out(width)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = self._ram
        m.d.comb += [ram.write.addr.eq(self.write_addr), ram.write.data.eq(self.write_data),
                     ram.write.en.eq(self.write_en)]
        for index, port in enumerate(ram.read):
            m.d.comb += [port.addr.eq(getattr(self, f"read{index}_addr")),
                         port.en.eq(getattr(self, f"read{index}_en")),
                         getattr(self, f"read{index}_data").eq(port.data)]
        return m
