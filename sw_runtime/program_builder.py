"""Builds programs from what each instruction touches, placing the dependency tokens it needs.

The compiler says which LOAD / COMPUTE / STORE to run and where; the builder works out,
with the ordering rules of ``sw_runtime.ordering``, which earlier accesses of other units
each one conflicts with, and sets exactly the pushes and pops (and, between LOAD and STORE,
which share no token channel, zero-row COMPUTE relays) that order them. Every pop takes a
push placed just for it, so pushes and pops always pair up in order and the program can
never deadlock. A conflict no token can order (a LOAD of bytes an earlier STORE of the same
program writes) raises ``ProgramError``: such work belongs in the next program.
"""

import numpy as np

from .assembler import compute, finish, load, store
from .errors import ProgramError
from .ordering import (Channel, ClockTracker, DramPattern, DramTracker, Memory, RowTracker,
                       Unit, pushes_of)
from rtl.isa import LOAD_LANE_BYTES, STORE_LANE_BYTES, LoadTarget, Opcode, StoreMode

__all__ = ["ProgramBuilder"]

_POP_FLAG = {Channel.LOAD_TO_COMPUTE: "pop_prev", Channel.COMPUTE_TO_LOAD: "pop_next",
             Channel.COMPUTE_TO_STORE: "pop_prev", Channel.STORE_TO_COMPUTE: "pop_next"}
_PUSH_FLAG = {Channel.LOAD_TO_COMPUTE: "push_next", Channel.COMPUTE_TO_LOAD: "push_prev",
              Channel.COMPUTE_TO_STORE: "push_next", Channel.STORE_TO_COMPUTE: "push_prev"}
_LOAD_MEMORY = {"SCRATCHPAD": Memory.SCRATCHPAD, "ACCUMULATOR": Memory.ACCUMULATOR,
                "QUANT": Memory.QUANT}


class ProgramBuilder:
    """Accumulates a program; ``program()`` returns it as a list of ``Instruction``."""

    def __init__(self, hw):
        self.hw = hw
        self._entries = []  # [opcode, operands, deps]; deps grow as later ones need them
        self._positions = {unit: [] for unit in Unit}  # unit index -> entry position
        self._clocks = ClockTracker()
        self._rows = RowTracker({Memory.SCRATCHPAD: hw.scratchpad_rows,
                                 Memory.ACCUMULATOR: hw.accumulator_rows,
                                 Memory.QUANT: hw.quant_rows})
        self._dram = DramTracker()
        self._taker = {}  # (channel, giver index) -> index of the instruction taking it
        self._last_giver = {}  # channel -> index of its latest pushing instruction

    # -- instructions -------------------------------------------------------------------------

    def load(self, target, sram_addr, dram_addr, bytes_per_row, rows, stride=0):
        row_bytes = LOAD_LANE_BYTES[LoadTarget[target]] * self.hw.n
        total = bytes_per_row * rows
        if total % row_bytes:
            raise ProgramError(f"load of {total} bytes is not whole {target} rows")
        accesses = [(_LOAD_MEMORY[target], sram_addr, total // row_bytes, True)]
        dram = DramPattern(dram_addr, bytes_per_row, rows, stride)
        self._add(Unit.LOAD, Opcode.LOAD, dict(
            target=target, sram_addr=sram_addr, dram_addr=dram_addr,
            bytes_per_row=bytes_per_row, rows=rows, stride=stride), accesses, dram)

    def compute(self, weight_addr, act_addr, rows, acc_addr, accumulate):
        accesses = [(Memory.SCRATCHPAD, weight_addr, self.hw.n, False),
                    (Memory.SCRATCHPAD, act_addr, rows, False)]
        if accumulate:
            accesses.append((Memory.ACCUMULATOR, acc_addr, rows, False))
        accesses.append((Memory.ACCUMULATOR, acc_addr, rows, True))
        self._add(Unit.COMPUTE, Opcode.COMPUTE, dict(
            weight_addr=weight_addr, act_addr=act_addr, rows=rows, acc_addr=acc_addr,
            accumulate=int(accumulate)), accesses, None)

    def store(self, acc_addr, dram_addr, bytes_per_row, rows, stride=0, *, raw,
              quant_addr=0):
        mode = StoreMode.RAW if raw else StoreMode.REQUANT
        row_bytes = STORE_LANE_BYTES[mode] * self.hw.n
        total = bytes_per_row * rows
        if total % row_bytes:
            raise ProgramError(f"store of {total} bytes is not whole accumulator rows")
        accesses = [(Memory.ACCUMULATOR, acc_addr, total // row_bytes, False)]
        if not raw:
            accesses.append((Memory.QUANT, quant_addr, 1, False))
        dram = DramPattern(dram_addr, bytes_per_row, rows, stride)
        self._add(Unit.STORE, Opcode.STORE, dict(
            mode=mode.name, quant_addr=quant_addr, acc_addr=acc_addr,
            dram_addr=dram_addr, bytes_per_row=bytes_per_row, rows=rows, stride=stride),
            accesses, dram)

    def program(self):
        makers = {Opcode.LOAD: load, Opcode.COMPUTE: compute, Opcode.STORE: store}
        program = [makers[opcode](deps=deps, **operands)
                   for opcode, operands, deps in self._entries]
        program.append(finish())
        return program

    # -- dependency placement -----------------------------------------------------------------

    def _add(self, unit, opcode, operands, accesses, dram):
        needs = []
        for memory, first, count, write in accesses:
            needs += self._rows.conflicts(unit, memory, slice(first, first + count), write)
        if dram is not None:
            needs += self._dram_conflicts(unit, dram)
        deps = set()
        self._order_after(unit, deps, needs)
        index = self._clocks.issue(unit, deps)
        self._positions[unit].append(len(self._entries))
        self._entries.append((opcode, operands, deps))
        for memory, first, count, write in accesses:
            self._rows.record(unit, index, memory, slice(first, first + count), write)
        if dram is not None:
            self._dram.record(unit, index, dram)

    def _dram_conflicts(self, unit, pattern):
        found = self._dram.conflicts(unit, pattern, self._clocks.start_clock(unit, set()))
        if found and unit == Unit.LOAD:
            raise ProgramError(
                f"a LOAD reads DRAM [{pattern.first:#x}, {pattern.last:#x}) that a STORE of the "
                f"same program writes; no token can order them: split the program")
        return found

    def _uncovered(self, unit, deps, needs):
        start = self._clocks.start_clock(unit, deps)
        return [a for a in needs if start[a.unit, a.event] < a.index]

    def _order_after(self, unit, deps, needs):
        """Add pops to ``deps`` (and pushes, relays) so every access in ``needs`` is ordered.

        Each token channel into the unit gets at most one pop, from the latest instruction
        needed: units finish in order, so it covers the earlier ones. LOAD and STORE share no
        channel: what one needs of the other comes through the COMPUTE that took (or a new
        zero-row COMPUTE that takes) a token from it."""
        uncovered = self._uncovered(unit, deps, needs)
        if not uncovered:
            return
        sources = {}  # channel into the unit -> index of the instruction to pop from
        for access in uncovered:
            channel = Channel.between(access.unit, unit)
            if channel is not None:
                sources[channel] = max(sources.get(channel, -1), access.index)
        # What those pops alone would order; LOAD <-> STORE needs left over go through COMPUTE.
        start = self._clocks.start_clock(unit, deps)
        for channel, index in sources.items():
            giver = channel.value[0]
            (_, event), = pushes_of(giver, {_PUSH_FLAG[channel]})
            start = np.maximum(start, self._clocks.clock(giver, index, event))
        relayed = [a for a in uncovered if Channel.between(a.unit, unit) is None and
                   start[a.unit, a.event] < a.index]
        if relayed:
            channel = Channel.between(Unit.COMPUTE, unit)
            taker = self._relay_taker(max(relayed, key=lambda a: a.index))
            sources[channel] = max(sources.get(channel, -1), taker)
        for channel, index in sources.items():
            self._pop(channel, index, unit, deps)
        if self._uncovered(unit, deps, needs):
            raise ProgramError(
                f"a {unit.name} must wait for writes to finish that no token signals (an "
                f"accumulator reloaded before its rows were stored?)")

    def _pop(self, channel, giver_index, taker, deps):
        """Make instruction ``giver_index`` of the giving unit push, and the new one pop."""
        pop, push = _POP_FLAG[channel], _PUSH_FLAG[channel]
        giver = channel.value[0]
        entry_deps = self._entries[self._positions[giver][giver_index]][2]
        if (pop in deps or push in entry_deps or self._clocks.pending(channel) or
                self._last_giver.get(channel, -1) >= giver_index):
            # Cannot happen by construction (see the module docstring); a bug if it does.
            raise ProgramError(f"tokens on {channel.name} would pair up out of order")
        entry_deps.add(push)
        self._clocks.add_push(giver, giver_index, push)
        self._last_giver[channel] = giver_index
        self._taker[(channel, giver_index)] = self._clocks.issued(taker)
        deps.add(pop)

    def _relay_taker(self, access):
        """The COMPUTE that takes a token from ``access`` (LOAD or STORE): the one that already
        does, or a new zero-row COMPUTE added for it. Returns its index."""
        incoming = Channel.between(access.unit, Unit.COMPUTE)
        taker = self._taker.get((incoming, access.index))
        if taker is None:
            relay_deps = set()
            self._pop(incoming, access.index, Unit.COMPUTE, relay_deps)
            taker = self._clocks.issue(Unit.COMPUTE, relay_deps)
            self._positions[Unit.COMPUTE].append(len(self._entries))
            self._entries.append((Opcode.COMPUTE, dict(weight_addr=0, act_addr=0, rows=0,
                                                       acc_addr=0, accumulate=0), relay_deps))
        return taker
