"""The COMPUTE unit: checks COMPUTE instructions, takes their tokens, feeds the compute core."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .compute_controller import compute_command_layout
from .config import NpuConfig
from .fetch import Fault, QueueEntry, fault_raiser
from .isa import ComputeInstruction

__all__ = ["ComputeUnit"]


class ComputeUnit(wiring.Component):
    """Turns COMPUTE instructions into compute-core commands.

    An instruction waits until every token it pops is available, takes them together and
    queues its command. Its pushes happen when the core reports the command's scratchpad
    reads done (``push_prev``) and its results written (``push_next``), which the NPU top
    wires from the core to the counters. A weight tile, activation rows or accumulator rows
    outside their memory fault with SRAM_RANGE before anything runs.

    Members
    -------
    queue : In(stream.Signature(QueueEntry))
    halt : In(1)
    load_token_available, store_token_available : In(1)
    load_token_take, store_token_take : Out(1)
        The LOAD -> COMPUTE (``pop_prev``) and STORE -> COMPUTE (``pop_next``) counters.
    command : Out(stream.Signature(compute_command_layout))
    busy : Out(1)
    stall : Out(1)
        An instruction is waiting for a token (the COMPUTE stall counter).
    fault : Out(Fault), fault_valid : Out(1)
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        super().__init__({
            "queue": In(stream.Signature(QueueEntry)),
            "halt": In(1),
            "load_token_available": In(1),
            "load_token_take": Out(1),
            "store_token_available": In(1),
            "store_token_take": Out(1),
            "command": Out(stream.Signature(compute_command_layout(config))),
            "busy": Out(1),
            "stall": Out(1),
            "fault": Out(Fault),
            "fault_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        insn = Signal(ComputeInstruction)
        index = Signal(32)
        deps = insn.header.deps
        # The command leaves from registers, loaded as ISSUE takes the tokens and written
        # into the core's queue the cycle after: the queue's write enable and its level
        # logic (by the core) start from a flip-flop, not from ISSUE's decision.
        command = Signal(compute_command_layout(config), reset_less=True)
        command_valid = Signal()
        issued = [
            command.weight_addr.eq(insn.weight_addr),
            command.act_addr.eq(insn.act_addr),
            command.rows.eq(insn.rows),
            command.acc_addr.eq(insn.acc_addr),
            command.accumulate.eq(insn.accumulate),
            command.notify_reads.eq(deps.push_prev),
            command.notify_writes.eq(deps.push_next),
        ]
        m.d.comb += [self.command.payload.eq(command), self.command.valid.eq(command_valid)]
        m.d.sync += command_valid.eq(0)  # written the cycle it is valid (see command_room)
        with m.If(command_valid):
            m.d.comb += self.busy.eq(1)
        # The range check takes two cycles of its own, from the instruction's register, so
        # neither the queue's output nor ISSUE's decision meets its carry chains: SUM forms
        # the ends of the activation and accumulator rows, CHECK compares them (and the
        # weight tile's start) with constants. The core's command queue hides the cycles.
        act_end = Signal(17)
        acc_end = Signal(17)
        in_range = Signal()
        # Whether the tokens the instruction pops are there, a register a cycle behind the
        # counters: ISSUE's take (which runs to both counters) starts from flip-flops. Only
        # this unit takes these tokens, so a late view never over-reports, and it is fresh
        # again by the next ISSUE (a take is followed by IDLE, SUM and CHECK).
        tokens_ready = Signal()
        m.d.sync += tokens_ready.eq((~deps.pop_prev | self.load_token_available) &
                                    (~deps.pop_next | self.store_token_available))

        # The core's command queue has room, a register a cycle behind its ready: the take
        # below runs to both token counters, and through the queue's ready (by the core) it
        # crossed the die twice (8.6 ns into a counter on seed 3 of 1f9a92e). Exact, not
        # just safe, for the write a cycle after ISSUE: only this unit writes the queue,
        # never in two cycles within four (a take is followed by IDLE, SUM and CHECK), and
        # between writes the queue only drains.
        command_room = Signal()
        m.d.sync += command_room.eq(self.command.ready)

        raise_fault = fault_raiser(m, self, instruction_index=index)
        # The takes as ANDs with the issue decision, outside the FSM (see ``TokenCounter``).
        issuing = Signal()
        m.d.comb += [self.load_token_take.eq(issuing & deps.pop_prev),
                     self.store_token_take.eq(issuing & deps.pop_next)]
        with m.FSM(name="compute"):
            with m.State("IDLE"):
                m.d.comb += self.queue.ready.eq(~self.halt)
                # The instruction's registers load every cycle while idle, and only the
                # state waits for the handshake: their enables are the state alone, not the
                # queue's valid, which comes from the queue (placed by fetch's side).
                m.d.sync += [insn.eq(self.queue.payload.instruction),
                             index.eq(self.queue.payload.index)]
                with m.If(self.queue.valid & ~self.halt):
                    m.next = "SUM"
            with m.State("SUM"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [act_end.eq(insn.act_addr + insn.rows),
                             acc_end.eq(insn.acc_addr + insn.rows)]
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += in_range.eq((insn.weight_addr <= config.scratchpad_depth - config.n) &
                                        (act_end <= config.scratchpad_depth) &
                                        (acc_end <= config.accumulator_depth))
                m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += self.busy.eq(1)
                with m.If(~in_range):
                    raise_fault("SRAM_RANGE")
                    m.next = "STOPPED"
                with m.Elif(~self.halt):
                    m.d.comb += self.stall.eq(~tokens_ready)
                    with m.If(tokens_ready & command_room):
                        m.d.sync += [*issued, command_valid.eq(1)]
                        m.d.comb += issuing.eq(1)
                        m.next = "IDLE"
            with m.State("STOPPED"):
                # Until the NPU resets the units; busy, so the program does not look finished
                # while the fault is on its way to the control FSM.
                m.d.comb += self.busy.eq(1)
        return m
