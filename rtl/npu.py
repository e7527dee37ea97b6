"""The NPU top: registers, fetch, LOAD / COMPUTE / STORE units, the compute core, the DMA."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, AXI4Signature, AxiReadArbiter, connect_channels
from .block_ram import BlockRam
from .compute_core import ComputeCore
from .compute_unit import ComputeUnit
from .config import NpuConfig
from .dma import DmaReader, DmaWriter, engine_params
from .fetch import FetchUnit, InstructionQueue, TokenCounter
from .load_unit import LoadUnit, quant_row_layout
from .regmap import config_registers
from .pipeline import delay, replicas
from .registers import RegisterBlock
from .store_unit import StoreUnit

__all__ = ["NpuTop", "LOAD_AXI_ID", "FETCH_AXI_ID"]

LOAD_AXI_ID = 0
FETCH_AXI_ID = 1
REGISTER_ADDR_WIDTH = 12


class NpuTop(wiring.Component):
    """The whole accelerator.

    The host writes a program into DRAM, sets INSN_BASE and INSN_COUNT, and writes
    CTRL.start. Fetch streams the program in and dispatches instructions to the LOAD, COMPUTE
    and STORE units, which run concurrently and order themselves with dependency tokens.
    FINISH (or the program's end) sets STATUS.done and raises ``irq`` if enabled. The first
    fault stops everything: DMA bursts in flight drain, the units reset, and STATUS.error
    with ERROR_CODE / ERROR_INDEX tell why. CTRL.soft_reset does the same at any time and
    clears the status.

    Members
    -------
    clk, rst : In(1)
        The clock and the synchronous reset. The NPU defines its clock domain itself: the
        units' reset domains share this clock signal (see ``elaborate``).
    s_axil : In(AXI4LiteSignature)
        Registers (``rtl/regs/npu_regs.rdl``).
    m_axi : Out(AXI4Signature)
        DRAM: instruction fetch (ID 1) and LOAD (ID 0) read, STORE writes.
    irq : Out(1)
    """

    def __init__(self, config: NpuConfig = None):
        self._config = config = config or NpuConfig()
        super().__init__({
            "clk": In(1),
            "rst": In(1),
            "s_axil": In(AXI4LiteSignature(addr_width=REGISTER_ADDR_WIDTH)),
            "m_axi": Out(AXI4Signature(data_width=config.axi_data_width, id_width=1)),
            "irq": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        # The clock is the ``clk`` port itself: each unit's domain below reuses the very same
        # signal, so every flip-flop sees one clock edge (a clock copied through an
        # assignment would arrive a delta cycle late in simulation, after the registers that
        # feed the unit had already changed). In a design with a "sync" domain of its own,
        # rename this one (DomainRenamer) and drive ``clk`` and ``rst``.
        m.domains.sync = sync = ClockDomain("sync")
        sync.clk = self.clk
        sync.rst = self.rst
        m.submodules.registers = regs = RegisterBlock(addr_width=REGISTER_ADDR_WIDTH)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.axil)

        # Units are reset (after the DMA has drained) to recover from a fault or soft reset.
        # The control FSM decides ``reset_next`` and ``halt_next``; every unit gets its own
        # flip-flop copy of each, since a single register would drive one net across the
        # whole die (tens of thousands of flip-flops' resets). The reset decision is
        # registered once by the FSM before the copies, so the net that crosses the die runs
        # from a flip-flop, not from the FSM's next-state logic: a unit is in reset two
        # cycles after ``reset_next``.
        #
        # Each unit runs in a clock domain of its own whose reset is its copy alone, and the
        # chip reset reaches the units through the decision: so the copy's flip-flop drives
        # the reset pins of the unit's registers directly, where a second reset on the same
        # domain (ResetInserter) would OR the two in a LUT in front of that long net. The
        # units leave the chip reset two cycles after the rest (control, registers), which
        # start only resets them again, three cycles before FETCH is started.
        reset_next = Signal()
        reset_decided = delay(m, reset_next | self.rst, 1, "reset_decided", reset_less=True)
        halt_next = Signal()
        halts = replicas(m, halt_next, "halt", ["control", "fetch", "load", "compute", "store",
                                                "fetch_reader", "load_reader", "writer"])

        def unit(name, component):
            domain = ClockDomain(name, local=True)
            m.domains += domain
            domain.clk = self.clk
            domain.rst = replicas(m, reset_decided, "unit_reset", [name])[name]
            m.submodules[name] = DomainRenamer({"sync": name})(component)
            return component

        engine = engine_params(config)
        fetch_reader = unit("fetch_reader", DmaReader(**engine, axi_id=FETCH_AXI_ID))
        load_reader = unit("load_reader", DmaReader(**engine, axi_id=LOAD_AXI_ID))
        store = StoreUnit(config)
        writer = unit("writer", DmaWriter(**engine, axi_id=0,
                                          source_capacity=store.source_capacity))
        m.submodules.read_arbiter = arbiter = AxiReadArbiter(
            ids=[LOAD_AXI_ID, FETCH_AXI_ID], data_width=config.axi_data_width, id_width=1)
        wiring.connect(m, load_reader.axi, arbiter.managers[0])
        wiring.connect(m, fetch_reader.axi, arbiter.managers[1])
        connect_channels(m, arbiter.bus, self.m_axi)
        connect_channels(m, writer.axi, self.m_axi)

        fetch = unit("fetch", FetchUnit(config))
        load = unit("load", LoadUnit(config))
        compute = unit("compute", ComputeUnit(config))
        unit("store", store)
        core = unit("core", ComputeCore(config))
        queues = {}
        for name in ("load", "compute", "store"):
            queues[name] = unit(f"{name}_queue",
                                InstructionQueue(config.instruction_queue_depth))
        tokens = {name: unit(f"tokens_{name}", TokenCounter())
                  for name in ("load_to_compute", "compute_to_load", "compute_to_store",
                               "store_to_compute")}
        m.submodules.quant_table = quant_table = BlockRam(
            shape=quant_row_layout(config), depth=config.quant_table_depth, read_ports=1)

        # The units see their engine's busy flag (an OR of FIFO levels and counters) a cycle
        # late, from a register. Safe: a unit first looks at it two or more cycles after
        # handing its engine a transfer, by when the engine has been busy for a cycle, and
        # once idle after a transfer an engine stays idle until the unit's next one.
        def engine_busy(engine_block, name):
            return delay(m, engine_block.busy, 1, f"{name}_busy_seen")

        # Fetch and dispatch.
        wiring.connect(m, fetch.transfer, fetch_reader.transfer)
        wiring.connect(m, fetch_reader.chunk, fetch.chunk)
        m.d.comb += [
            fetch.base.eq(regs.insn_base.addr),
            fetch.count.eq(regs.insn_count.count),
            fetch.reader_busy.eq(engine_busy(fetch_reader, "fetch_reader")),
            fetch.reader_response_error.eq(fetch_reader.response_error),
            fetch.reader_wrap_error.eq(fetch_reader.wrap_error),
        ]
        for name, target in (("load", load), ("compute", compute), ("store", store)):
            wiring.connect(m, getattr(fetch, f"{name}_queue"), queues[name].w)
            wiring.connect(m, queues[name].r, target.queue)
        for name, target in (("fetch", fetch), ("load", load), ("compute", compute),
                             ("store", store)):
            m.d.comb += target.halt.eq(halts[name])

        # LOAD.
        wiring.connect(m, load.transfer, load_reader.transfer)
        wiring.connect(m, load_reader.chunk, load.chunk)
        wiring.connect(m, load.spad_write, core.spad_write)
        wiring.connect(m, load.acc_write, core.acc_write)
        wiring.connect(m, load.quant_write, quant_table.write)
        m.d.comb += [
            load.reader_busy.eq(engine_busy(load_reader, "load_reader")),
            load.reader_response_error.eq(load_reader.response_error),
            load.reader_wrap_error.eq(load_reader.wrap_error),
        ]

        # COMPUTE.
        wiring.connect(m, compute.command, core.command)

        # STORE.
        wiring.connect(m, store.transfer, writer.transfer)
        wiring.connect(m, store.acc_read, core.acc_read)
        wiring.connect(m, store.quant_read, quant_table.read[0])
        wiring.connect(m, store.writer_source, writer.source)
        m.d.comb += [
            store.writer_busy.eq(engine_busy(writer, "writer")),
            store.writer_response_error.eq(writer.response_error),
            store.writer_wrap_error.eq(writer.wrap_error),
        ]

        # Dependency tokens.
        m.d.comb += [
            tokens["load_to_compute"].give.eq(load.token_give),
            compute.load_token_available.eq(tokens["load_to_compute"].available),
            tokens["load_to_compute"].take.eq(compute.load_token_take),
            tokens["compute_to_load"].give.eq(core.reads_done),
            load.token_available.eq(tokens["compute_to_load"].available),
            tokens["compute_to_load"].take.eq(load.token_take),
            tokens["compute_to_store"].give.eq(core.writes_done),
            store.token_available.eq(tokens["compute_to_store"].available),
            tokens["compute_to_store"].take.eq(store.token_take),
            tokens["store_to_compute"].give.eq(store.token_give),
            compute.store_token_available.eq(tokens["store_to_compute"].available),
            tokens["store_to_compute"].take.eq(compute.store_token_take),
        ]

        # Every block's busy flag (an OR of FIFO levels and counters, in the block) is first
        # registered by itself, then the registers are combined into one more: the control
        # FSM and fetch see a two-cycle-old snapshot of the whole NPU, all terms from the
        # same cycle, and no OR tree spans the die in one cycle.
        def seen(name, busy):
            return delay(m, busy, 1, f"{name}_busy_seen")
        engines_busy_seen = Cat(*(seen(name, block.busy) for name, block in (
            ("fetch_reader", fetch_reader), ("load_reader", load_reader),
            ("writer", writer)))).any()
        # DRAIN waits on this register. It is sampled only while ``halt`` is up (sampled with
        # the busy flags): then no new transfer starts, so once the engines are idle they
        # stay idle and an old sample is safe.
        engines_drained = Signal()
        halt_seen = delay(m, halts["control"], 1, "halt_seen")
        m.d.sync += engines_drained.eq(halt_seen & ~engines_busy_seen)
        # fetch waits two cycles in FINISH after its last dispatch, which is in a queue by
        # then, before it looks: a two-cycle-old "all idle" never covers work still to start.
        units_busy_seen = Cat(
            *(seen(f"{name}_queue", queue.busy) for name, queue in queues.items()),
            *(seen(name, block.busy) for name, block in (
                ("load", load), ("compute", compute), ("store", store), ("core", core))),
        ).any()
        m.d.sync += fetch.all_idle.eq(~units_busy_seen & ~engines_busy_seen)

        # Control: run, stop on the first fault, drain, reset the units. The units' resets and
        # halts are registers: they fan out to every unit, so nothing but a flip-flop may
        # drive them (a decoded state, or the engines' busy flags, in front of a net that
        # reaches tens of thousands of flip-flops would be the design's slowest path).
        #
        # The first fault in program order among those raised together, registered: the
        # control FSM acts on it a cycle later (a unit that raised a fault holds it and
        # stops), so the priority choice does not run into the FSM and the error registers.
        faults = [(unit_block.fault_valid, unit_block.fault)
                  for unit_block in (fetch, load, compute, store)]
        any_fault = Signal()
        first_fault = Signal.like(fetch.fault)
        m.d.sync += any_fault.eq(Cat(*(valid for valid, _ in faults)).any())
        for valid, fault in reversed(faults):
            with m.If(valid):
                m.d.sync += first_fault.eq(fault)
        done = Signal()
        error = Signal()
        error_code = Signal(8)
        error_index = Signal(32)
        clear_status = Signal()
        running = Signal()
        with m.FSM(name="control") as control:
            with m.State("IDLE"):
                with m.If(regs.ctrl.soft_reset):
                    m.d.sync += clear_status.eq(1)
                    m.d.comb += halt_next.eq(1)
                    m.next = "DRAIN"
                with m.Elif(regs.ctrl.start):
                    # Every program starts from empty queues and zero tokens.
                    m.d.comb += reset_next.eq(1)
                    m.d.sync += [done.eq(0), error.eq(0), error_code.eq(0), error_index.eq(0)]
                    m.next = "RESET"
            with m.State("RESET"):
                m.next = "RESET_APPLY"
            with m.State("RESET_APPLY"):
                m.next = "START"  # the units are in reset this cycle
            with m.State("START"):
                m.d.comb += fetch.start.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(regs.ctrl.soft_reset):
                    m.d.sync += clear_status.eq(1)
                    m.d.comb += halt_next.eq(1)
                    m.next = "DRAIN"
                with m.Elif(any_fault):
                    m.d.sync += [error.eq(1), error_code.eq(first_fault.code),
                                 error_index.eq(first_fault.index)]
                    m.d.comb += halt_next.eq(1)
                    m.next = "DRAIN"
                with m.Elif(fetch.done):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
            with m.State("DRAIN"):
                # Bursts in flight complete (writes without strobes) before the reset.
                # The halt holds until the units are in reset.
                m.d.comb += halt_next.eq(1)
                with m.If(engines_drained):
                    m.d.comb += reset_next.eq(1)
                    with m.If(clear_status):
                        m.d.sync += [done.eq(0), error.eq(0), error_code.eq(0),
                                     error_index.eq(0), clear_status.eq(0)]
                    m.next = "RECOVER"
            with m.State("RECOVER"):
                m.d.comb += halt_next.eq(1)
                m.next = "RECOVER_APPLY"
            with m.State("RECOVER_APPLY"):
                m.next = "IDLE"  # the units are in reset this cycle
        m.d.comb += running.eq(~control.ongoing("IDLE"))
        for name, engine_block in (("fetch_reader", fetch_reader), ("load_reader", load_reader),
                                   ("writer", writer)):
            m.d.comb += engine_block.abort.eq(halts[name])

        # Performance counters, cleared by start.
        counters = {
            "perf_cycles": running,
            "perf_array_active": core.array_active,
            "perf_load_busy": load.busy,
            "perf_store_busy": store.busy,
            "perf_compute_stall": compute.stall,
        }
        # Every count's increment goes through two registers first: the conditions are late
        # handshake signals from all over the die and the counters sit by the register block,
        # so one register may sit by the source and one by the counter, with a cycle for the
        # wire between. The counts lag by two cycles, far less than software takes to read
        # them after DONE.
        for name, condition in counters.items():
            counter = Signal(32, name=name)
            counted = delay(m, condition, 2, f"{name}_counted")
            with m.If(fetch.start):
                m.d.sync += counter.eq(0)
            with m.Elif(counted):
                m.d.sync += counter.eq(counter + 1)
            m.d.comb += getattr(regs, name).count.eq(counter)
        bytes_read = Signal(32)
        bytes_written = Signal(32)
        read_now = delay(m, load.chunk_bytes, 2, "bytes_read_now")
        # The take and its count are delayed apart and combined after the delay:
        # the take arrives late (the writer's beat decision), and a Mux with 0 in front of a
        # register becomes a reset-pin (LSR) net.
        written_now = Mux(delay(m, writer.source.take, 2, "bytes_written_taken"),
                          delay(m, writer.source.take_count, 2, "bytes_written_count",
                                reset_less=True), 0)
        with m.If(fetch.start):
            m.d.sync += [bytes_read.eq(0), bytes_written.eq(0)]
        with m.Else():
            m.d.sync += [bytes_read.eq(bytes_read + read_now),
                         bytes_written.eq(bytes_written + written_now)]
        m.d.comb += [
            regs.perf_bytes_read.count.eq(bytes_read),
            regs.perf_bytes_written.count.eq(bytes_written),
        ]

        for register, fields in config_registers(config).items():
            for name, value in fields.items():
                m.d.comb += getattr(getattr(regs, register.lower()), name).eq(value)
        m.d.comb += [
            regs.status.busy.eq(running),
            regs.status.done.eq(done),
            regs.status.error.eq(error),
            regs.error_code.code.eq(error_code),
            regs.error_index.index.eq(error_index),
            self.irq.eq(done & regs.ctrl.irq_enable),
        ]
        return m
