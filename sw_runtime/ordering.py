"""What the hardware guarantees about the order of a program's instructions, as code.

The instruction-level model uses this to find races, and the compiler's program builder uses
it to place exactly the dependency tokens a program needs. The rules (docs/npu.md):

* Each unit (LOAD, COMPUTE, STORE) starts, finishes its reads and finishes its writes in
  program order: for every unit and event, instruction i's event is no later than i+1's.
  An instruction's events are START (after its pops), READS_DONE and END.
* A push gives its token at a fixed event: LOAD ``push_next`` at END; COMPUTE ``push_prev``
  at READS_DONE (scratchpad reads done) and ``push_next`` at END (accumulator written);
  STORE ``push_prev`` at READS_DONE (accumulator and quant rows read). Tokens on a channel
  are consumed in order: the k-th pop takes the k-th push.
* Each memory access completes at a fixed event of its instruction (``ACCESS_EVENT``).

Happens-before is tracked with vector clocks: a clock holds, for every (unit, event), the
highest instruction index of that unit whose event is known to have happened.
"""

from dataclasses import dataclass
from enum import Enum, IntEnum

import numpy as np

from rtl.isa import Opcode

__all__ = ["Unit", "Event", "Memory", "Channel", "UNIT_OF_OPCODE", "ACCESS_EVENT",
           "pushes_of", "pops_of", "ClockTracker", "Access", "RowTracker", "DramTracker",
           "DramPattern"]


class Unit(IntEnum):
    LOAD = 0
    COMPUTE = 1
    STORE = 2


class Event(IntEnum):
    START = 0
    READS_DONE = 1
    END = 2


class Memory(Enum):
    SCRATCHPAD = "scratchpad"
    ACCUMULATOR = "accumulator"
    QUANT = "quant table"
    DRAM = "DRAM"


class Channel(Enum):
    """Token counters, named (giver, taker)."""
    LOAD_TO_COMPUTE = (Unit.LOAD, Unit.COMPUTE)
    COMPUTE_TO_LOAD = (Unit.COMPUTE, Unit.LOAD)
    COMPUTE_TO_STORE = (Unit.COMPUTE, Unit.STORE)
    STORE_TO_COMPUTE = (Unit.STORE, Unit.COMPUTE)

    @classmethod
    def between(cls, giver, taker):
        """The channel from ``giver`` to ``taker``, or None (LOAD and STORE share none)."""
        return _CHANNELS.get((giver, taker))


_CHANNELS = {channel.value: channel for channel in Channel}
UNIT_OF_OPCODE = {Opcode.LOAD: Unit.LOAD, Opcode.COMPUTE: Unit.COMPUTE, Opcode.STORE: Unit.STORE}
_NEIGHBOURS = {Unit.LOAD: (None, Unit.COMPUTE), Unit.COMPUTE: (Unit.LOAD, Unit.STORE),
               Unit.STORE: (Unit.COMPUTE, None)}
# (unit, flag) -> the event at which the token is given.
_PUSH_EVENT = {(Unit.LOAD, "push_next"): Event.END,
               (Unit.COMPUTE, "push_prev"): Event.READS_DONE,
               (Unit.COMPUTE, "push_next"): Event.END,
               (Unit.STORE, "push_prev"): Event.READS_DONE}

# (unit, memory, is_write) -> the event by which the access has completed.
ACCESS_EVENT = {
    (Unit.LOAD, Memory.DRAM, False): Event.END,
    (Unit.LOAD, Memory.SCRATCHPAD, True): Event.END,
    (Unit.LOAD, Memory.ACCUMULATOR, True): Event.END,
    (Unit.LOAD, Memory.QUANT, True): Event.END,
    (Unit.COMPUTE, Memory.SCRATCHPAD, False): Event.READS_DONE,
    (Unit.COMPUTE, Memory.ACCUMULATOR, False): Event.END,  # accumulate: read-modify-write
    (Unit.COMPUTE, Memory.ACCUMULATOR, True): Event.END,
    (Unit.STORE, Memory.ACCUMULATOR, False): Event.READS_DONE,
    (Unit.STORE, Memory.QUANT, False): Event.READS_DONE,
    (Unit.STORE, Memory.DRAM, True): Event.END,
}


def pushes_of(unit, deps):
    """[(channel, event)] of the tokens an instruction with ``deps`` gives."""
    result = []
    previous, following = _NEIGHBOURS[unit]
    for flag, other in (("push_prev", previous), ("push_next", following)):
        if flag in deps and other is not None:
            result.append((Channel.between(unit, other), _PUSH_EVENT[(unit, flag)]))
    return result


def pops_of(unit, deps):
    """[channel] of the tokens an instruction with ``deps`` takes before it starts."""
    previous, following = _NEIGHBOURS[unit]
    return [Channel.between(other, unit)
            for flag, other in (("pop_prev", previous), ("pop_next", following))
            if flag in deps and other is not None]


def _empty_clock():
    return np.full((len(Unit), len(Event)), -1, dtype=np.int64)


class ClockTracker:
    """Vector clocks of a program's instructions, issued unit by unit in program order.

    ``issue`` takes the next instruction of a unit; its pops must match pushes already
    issued (``ready`` says whether they do). ``clock(unit, index, event)`` is then what is
    known to have happened before that event.
    """

    def __init__(self):
        self._clocks = {unit: [] for unit in Unit}  # per unit: [clock per event] per insn
        self._given = {channel: [] for channel in Channel}  # clocks of the pushes so far
        self._taken = {channel: 0 for channel in Channel}

    def issued(self, unit):
        return len(self._clocks[unit])

    def ready(self, unit, deps):
        return all(self._taken[c] < len(self._given[c]) for c in pops_of(unit, deps))

    def missing_tokens(self, unit, deps):
        return [c for c in pops_of(unit, deps) if self._taken[c] >= len(self._given[c])]

    def start_clock(self, unit, deps):
        """The clock the unit's next instruction would start with (without issuing it)."""
        clock = self._previous(unit, Event.START)
        for channel in pops_of(unit, deps):
            clock = np.maximum(clock, self._given[channel][self._taken[channel]])
        clock[unit, Event.START] = self.issued(unit)
        return clock

    def issue(self, unit, deps):
        """Issue the unit's next instruction; returns its index within the unit."""
        start = self.start_clock(unit, deps)
        for channel in pops_of(unit, deps):
            self._taken[channel] += 1
        index = self.issued(unit)
        reads = np.maximum(start, self._previous(unit, Event.READS_DONE))
        reads[unit, Event.READS_DONE] = index
        end = np.maximum(reads, self._previous(unit, Event.END))
        end[unit, Event.END] = index
        events = (start, reads, end)
        self._clocks[unit].append(events)
        for channel, event in pushes_of(unit, deps):
            self._given[channel].append(events[event])
        return index

    def add_push(self, unit, index, flag):
        """Give a push to an instruction already issued (the builder places them late).

        Only valid while no later push on that channel exists."""
        (channel, event), = pushes_of(unit, {flag})
        self._given[channel].append(self._clocks[unit][index][event])

    def clock(self, unit, index, event):
        return self._clocks[unit][index][event]

    def pending(self, channel):
        """Tokens given and not yet taken."""
        return len(self._given[channel]) - self._taken[channel]

    def _previous(self, unit, event):
        if not self._clocks[unit]:
            return _empty_clock()
        return self._clocks[unit][-1][event].copy()


@dataclass(frozen=True)
class Access:
    """An earlier access that a new one may conflict with."""
    unit: Unit
    index: int   # within its unit
    event: Event  # by which it completed
    memory: Memory
    write: bool


class RowTracker:
    """The last writer and the readers since, of every row of the on-chip memories.

    Per row it keeps the last writing unit and index, and per unit the latest reader since
    that write: units complete their own accesses in order, so the latest access of a unit
    covers its earlier ones.
    """

    def __init__(self, depths):
        self._writer_unit = {m: np.full(d, -1, dtype=np.int64) for m, d in depths.items()}
        self._writer_index = {m: np.full(d, -1, dtype=np.int64) for m, d in depths.items()}
        self._readers = {m: np.full((len(Unit), d), -1, dtype=np.int64)
                         for m, d in depths.items()}

    def conflicts(self, unit, memory, rows: slice, write):
        """Earlier accesses by other units that this access must be ordered after."""
        found = []
        writer_units = self._writer_unit[memory][rows]
        writer_indices = self._writer_index[memory][rows]
        for other in Unit:
            if other == unit:
                continue
            mine = writer_units == other
            if mine.any():
                found.append(Access(other, int(writer_indices[mine].max()),
                                    ACCESS_EVENT[(other, memory, True)], memory, True))
            if write:
                readers = self._readers[memory][other, rows]
                if (readers >= 0).any():
                    found.append(Access(other, int(readers.max()),
                                        ACCESS_EVENT[(other, memory, False)], memory, False))
        return found

    def record(self, unit, index, memory, rows: slice, write):
        if write:
            self._writer_unit[memory][rows] = unit
            self._writer_index[memory][rows] = index
            self._readers[memory][:, rows] = -1
        else:
            readers = self._readers[memory][unit, rows]
            np.maximum(readers, index, out=readers)


class DramTracker:
    """The DRAM accesses of LOAD (reads) and STORE (writes) that may still conflict.

    An access known to be ordered before some instruction of the other unit is ordered
    before all its later ones too (their clocks only grow), so it is dropped then."""

    def __init__(self):
        self._open = {Unit.LOAD: [], Unit.STORE: []}

    def conflicts(self, unit, pattern, start):
        """Earlier accesses of the other unit overlapping ``pattern`` and not ordered before
        an instruction that starts with clock ``start``."""
        other = Unit.STORE if unit == Unit.LOAD else Unit.LOAD
        write = other == Unit.STORE
        event = ACCESS_EVENT[(other, Memory.DRAM, write)]
        found, still_open = [], []
        for index, other_pattern in self._open[other]:
            if start[other, event] >= index:
                continue
            still_open.append((index, other_pattern))
            if pattern.overlaps(other_pattern):
                found.append(Access(other, index, event, Memory.DRAM, write))
        self._open[other] = still_open
        return found

    def record(self, unit, index, pattern):
        self._open[unit].append((index, pattern))


@dataclass(frozen=True)
class DramPattern:
    """The bytes of a 2-D transfer: ``rows`` rows of ``bytes_per_row`` every ``stride``."""
    addr: int
    bytes_per_row: int
    rows: int
    stride: int

    @property
    def first(self):
        return self.addr

    @property
    def last(self):
        """One past the highest byte."""
        return self.addr + (self.rows - 1) * self.stride + self.bytes_per_row

    def _intervals(self):
        starts = self.addr + np.arange(self.rows, dtype=np.int64) * self.stride
        return starts, starts + self.bytes_per_row

    def overlaps(self, other):
        if self.last <= other.first or other.last <= self.first:
            return False
        if self.rows == 1 and other.rows == 1:
            return True
        starts, ends = self._intervals()
        other_starts, other_ends = other._intervals()
        order = np.argsort(starts)
        starts, ends = starts[order], np.maximum.accumulate(ends[order])
        # For each interval of the other, the last of ours starting before its end.
        position = np.searchsorted(starts, other_ends, side="left") - 1
        valid = position >= 0
        return bool(np.any(ends[position[valid]] > other_starts[valid]))
