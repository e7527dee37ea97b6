"""The compute controller: runs compute commands on the array, back to back."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .pipeline import delay
from .scratchpad import SCRATCHPAD_READ_LATENCY, scratchpad_row_layout

__all__ = ["ComputeController", "compute_command_layout"]


def compute_command_layout(config: NpuConfig):
    """A compute command: ``acc[acc_addr + i] (+)= spad[act_addr + i] @ W`` for i < rows.

    ``W`` is the N x N weight tile in scratchpad rows ``weight_addr .. weight_addr + N - 1``
    (row r holds ``W[r][:]``). With ``accumulate`` the results add to the accumulator rows,
    otherwise they overwrite them. ``rows == 0`` loads the weights and computes nothing.
    Addresses wrap around the end of their memory. ``notify_reads`` / ``notify_writes`` ask
    for a ``reads_done`` / ``writes_done`` pulse when the command has finished reading the
    scratchpad / writing the accumulator (the dependency tokens of COMPUTE instructions).
    """
    return data.StructLayout({
        "weight_addr": config.scratchpad_addr_width,
        "act_addr": config.scratchpad_addr_width,
        "rows": config.scratchpad_addr_width + 1,
        "acc_addr": config.accumulator_addr_width,
        "accumulate": 1,
        "notify_reads": 1,
        "notify_writes": 1,
    })


class ComputeController(wiring.Component):
    """Streams weight and activation rows from the scratchpad into the array.

    Each command occupies a slot of ``max(rows, N)`` cycles: in slot cycle ``c`` it reads
    activation row ``c`` (if ``c < rows``) and weight row ``c`` (if ``c < N``). Weight rows go
    to the array's shadow registers while the previous tile's activations still flow, so
    commands with ``rows >= N`` follow each other with no idle cycle. Result rows are matched
    to their accumulator address by a delay line as long as the array's latency.

    Members
    -------
    command : In(stream.Signature(compute_command_layout))
        Commands; the next one is taken in the last cycle of the current slot.
    weight_read, act_read : In(ReadPort.Signature)
        The scratchpad's array-side read ports.
    array_act_first, array_weight_row_index, array_weight_row_load : Out
        Control of the array, aligned with the scratchpad's read data.
    array_act_valid : Out(1)
        The array input holds an activation row (drives the ``array_active`` counter).
    acc_update_addr, acc_update_accumulate, acc_update_valid : Out
        Where the array's current result row goes, aligned with ``result_row``.
    reads_done : Out(1)
        Pulse: a command with ``notify_reads`` has issued its last scratchpad read (the data
        is in the array's pipeline, so the rows may be overwritten from the next cycle).
    command_done : Out(1)
        Pulse, aligned with ``acc_update_*``: the last result of a command with
        ``notify_writes`` is being handed to the accumulator (whose write lands one cycle
        later).
    busy : Out(1)
        A command is running or results are still in flight.
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        addr_width = config.scratchpad_addr_width
        row = scratchpad_row_layout(config)
        super().__init__({
            "command": In(stream.Signature(compute_command_layout(config))),
            "weight_read": In(ReadPort.Signature(addr_width=addr_width, shape=row)),
            "act_read": In(ReadPort.Signature(addr_width=addr_width, shape=row)),
            "array_act_first": Out(1),
            "array_act_valid": Out(1),
            "array_weight_row_index": Out(range(config.n)),
            "array_weight_row_load": Out(1),
            "acc_update_addr": Out(config.accumulator_addr_width),
            "acc_update_accumulate": Out(1),
            "acc_update_valid": Out(1),
            "reads_done": Out(1),
            "command_done": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        n = config.n

        command = Signal(compute_command_layout(config))
        running = Signal()
        slot_cycle = Signal(config.scratchpad_addr_width + 1)
        slot_last_cycle = Signal(config.scratchpad_addr_width + 1)
        # The slot's last cycle, kept as a register a cycle ahead: it enables the command
        # register and the command queue's read, so it should not start from a comparator.
        slot_ends = Signal()

        # The scratchpad's read addresses and enables are registers, kept equal to
        # ``act_addr + slot_cycle``, ``running & (slot_cycle < rows)`` and likewise for the
        # weight tile: the block RAMs' address and enable pins are fed straight from
        # flip-flops.
        act_addr = Signal.like(self.act_read.addr)
        weight_addr = Signal.like(self.weight_read.addr)
        issue_act = Signal()
        issue_weight = Signal()

        # Take the next command when idle or in the last cycle of the current slot.
        m.d.comb += self.command.ready.eq(~running | slot_ends)
        with m.If(self.command.ready):
            incoming = self.command.payload
            m.d.sync += [
                running.eq(self.command.valid),
                command.eq(incoming),
                slot_cycle.eq(0),
                slot_last_cycle.eq(Mux(incoming.rows > n, incoming.rows, n) - 1),
                act_addr.eq(incoming.act_addr),
                weight_addr.eq(incoming.weight_addr),
                issue_act.eq(self.command.valid & (incoming.rows != 0)),
                issue_weight.eq(self.command.valid),
            ]
            m.d.sync += slot_ends.eq(0)  # a slot lasts at least N >= 2 cycles
        with m.Else():
            m.d.sync += [slot_cycle.eq(slot_cycle + 1),
                         slot_ends.eq(slot_cycle + 1 == slot_last_cycle),
                         act_addr.eq(act_addr + 1),
                         weight_addr.eq(weight_addr + 1),
                         issue_act.eq(running & (slot_cycle + 1 < command.rows)),
                         issue_weight.eq(running & (slot_cycle + 1 < n))]

        m.d.comb += [
            self.act_read.addr.eq(act_addr),
            self.act_read.en.eq(issue_act),
            self.weight_read.addr.eq(weight_addr),
            self.weight_read.en.eq(issue_weight),
        ]

        # The scratchpad answers SCRATCHPAD_READ_LATENCY cycles later: align the array's
        # controls with its data.
        controls = [(self.array_act_valid, issue_act),
                    (self.array_act_first, issue_act & (slot_cycle == 0)),
                    (self.array_weight_row_load, issue_weight),
                    (self.array_weight_row_index, slot_cycle[:len(self.array_weight_row_index)])]
        for output, value in controls:
            m.d.comb += output.eq(delay(m, value, SCRATCHPAD_READ_LATENCY, output.name))

        m.d.sync += self.reads_done.eq(slot_ends & command.notify_reads)

        # Delay line: an activation row read in cycle c leaves the array at
        # c + SCRATCHPAD_READ_LATENCY + array_latency, with its accumulator address and mode.
        # The slot's last cycle also carries the command's completion marker (alone when
        # rows < N).
        in_flight = data.StructLayout({"valid": 1, "addr": config.accumulator_addr_width,
                                       "accumulate": 1, "done": 1})
        stage = Signal(in_flight)
        m.d.comb += [
            stage.valid.eq(issue_act),
            stage.addr.eq(command.acc_addr + slot_cycle),
            stage.accumulate.eq(command.accumulate),
            stage.done.eq(slot_ends & command.notify_writes),
        ]
        any_in_flight = Const(0)
        for index in range(SCRATCHPAD_READ_LATENCY + config.array_latency):
            delayed = Signal(in_flight, name=f"result_tag_d{index + 1}")
            m.d.sync += delayed.eq(stage)
            any_in_flight = any_in_flight | delayed.valid | delayed.done
            stage = delayed
        m.d.comb += [
            self.acc_update_valid.eq(stage.valid),
            self.acc_update_addr.eq(stage.addr),
            self.acc_update_accumulate.eq(stage.accumulate),
            self.command_done.eq(stage.done),
            self.busy.eq(running | any_in_flight),
        ]
        return m
