"""The compute core: scratchpad, systolic array, accumulator and their controller."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from .accumulator import Accumulator, accumulator_row_layout, accumulator_write_layout
from .compute_controller import ComputeController, compute_command_layout
from .config import NpuConfig
from .scratchpad import Scratchpad, scratchpad_row_layout
from .systolic_array import SystolicArray

__all__ = ["ComputeCore"]

COUNTER_WIDTH = 32


class ComputeCore(wiring.Component):
    """The datapath of the NPU without DMA: load rows in, run commands, read results out.

    Members
    -------
    spad_write : Out(WritePort.Signature)
        Scratchpad rows in (from the loader).
    acc_write : In(stream.Signature(accumulator_write_layout))
        Accumulator rows in (bias).
    acc_read : Out(ReadPort.Signature)
        Accumulator rows out (to the store path).
    command : In(stream.Signature(compute_command_layout))
        Compute commands, queued ``command_queue_depth`` deep.
    reads_done : Out(1)
        Pulse: a command that asked for it has finished reading the scratchpad.
    writes_done : Out(1)
        Pulse: a command that asked for it has written its last result to the accumulator.
    busy : Out(1)
        A command is queued, running, or still writing results.
    array_active : Out(1)
        An activation row enters the array this cycle.
    busy_cycles : Out(32)
        Cycles with ``busy`` set since reset (wraps).
    array_active_cycles : Out(32)
        Cycles in which an activation row entered the array since reset (wraps).
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        super().__init__({
            "spad_write": Out(WritePort.Signature(addr_width=config.scratchpad_addr_width,
                                                  shape=scratchpad_row_layout(config))),
            "acc_write": In(stream.Signature(accumulator_write_layout(config))),
            "acc_read": Out(ReadPort.Signature(addr_width=config.accumulator_addr_width,
                                               shape=accumulator_row_layout(config))),
            "command": In(stream.Signature(compute_command_layout(config))),
            "reads_done": Out(1),
            "writes_done": Out(1),
            "busy": Out(1),
            "array_active": Out(1),
            "busy_cycles": Out(COUNTER_WIDTH),
            "array_active_cycles": Out(COUNTER_WIDTH),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        m.submodules.scratchpad = scratchpad = Scratchpad(config)
        m.submodules.array = array = SystolicArray(config)
        m.submodules.accumulator = accumulator = Accumulator(config)
        m.submodules.controller = controller = ComputeController(config)
        command_width = Shape.cast(compute_command_layout(config)).width
        m.submodules.command_queue = queue = SyncFIFOBuffered(
            width=command_width, depth=config.command_queue_depth)

        wiring.connect(m, wiring.flipped(self.spad_write), scratchpad.write)
        wiring.connect(m, wiring.flipped(self.acc_write), accumulator.write)
        wiring.connect(m, wiring.flipped(self.acc_read), accumulator.read)
        wiring.connect(m, scratchpad.weight_read, controller.weight_read)
        wiring.connect(m, scratchpad.act_read, controller.act_read)

        m.d.comb += [
            queue.w_data.eq(self.command.payload),
            queue.w_en.eq(self.command.valid),
            self.command.ready.eq(queue.w_rdy),
            controller.command.payload.eq(queue.r_data),
            controller.command.valid.eq(queue.r_rdy),
            queue.r_en.eq(controller.command.ready),

            array.act_row.eq(scratchpad.act_read.data),
            array.act_first.eq(controller.array_act_first),
            array.weight_row.eq(scratchpad.weight_read.data),
            array.weight_row_index.eq(controller.array_weight_row_index),
            array.weight_row_load.eq(controller.array_weight_row_load),

            accumulator.update.addr.eq(controller.acc_update_addr),
            accumulator.update.row.eq(array.result_row),
            accumulator.update.accumulate.eq(controller.acc_update_accumulate),
            accumulator.update_valid.eq(controller.acc_update_valid),

            self.busy.eq((queue.level != 0) | controller.busy | accumulator.busy),
            self.reads_done.eq(controller.reads_done),
            self.array_active.eq(controller.array_act_valid),
        ]
        # The accumulator writes one cycle after it takes an update.
        m.d.sync += self.writes_done.eq(controller.command_done)
        with m.If(self.busy):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(controller.array_act_valid):
            m.d.sync += self.array_active_cycles.eq(self.array_active_cycles + 1)
        return m
