"""The instruction-level model: the NPU in numpy, running the same programs as the RTL.

It is the fast backend and the program checker. It executes each instruction's effect
exactly (bit-exact with the golden models), raises the faults the hardware raises, and
checks what the hardware cannot: every access that conflicts with an access of another unit
must be ordered after it by dependency tokens (``RaceError``), and the units must never wait
for tokens nobody gives, counting the finite instruction queues in-order dispatch fills
(``DeadlockError``). Ordering rules: ``sw_runtime.ordering``.

Its cycle counts are an estimate from a simple timing model (per-unit occupancy, token
waits, the bus width), not a cycle-accurate simulation; the RTL backends count for real.
"""

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from rtl.accumulator import Accumulator
from rtl.config import NpuConfig
from rtl.isa import (INSTRUCTION_BYTES, LOAD_LANE_BYTES, STORE_LANE_BYTES, LoadTarget, Opcode,
                     QuantParams, StoreMode)
from rtl.regmap import config_registers
from rtl.scratchpad import SCRATCHPAD_READ_LATENCY

from .assembler import AssemblyError, Instruction
from .device import DEFAULT_DRAM_SIZE, ID_MAGIC, Device, as_dram_bytes
from .errors import DeadlockError, RaceError
from .golden import requantize
from .ordering import (UNIT_OF_OPCODE, ClockTracker, DramPattern, DramTracker, Event, Memory,
                       RowTracker, Unit, pops_of, pushes_of)
from .registers import REGISTERS, encode_fields, field_value

__all__ = ["ModelDevice", "check_program", "Fault"]

# Timing model (cycles): fixed costs of a DMA instruction and of the array pipeline.
DMA_OVERHEAD = 12
FETCH_LATENCY = 16
QUANT_LANE_BYTES = LOAD_LANE_BYTES[LoadTarget.QUANT]


class Fault(Exception):
    """A hardware fault inside the model: the ERROR_CODE name and the instruction index."""

    def __init__(self, code, index):
        super().__init__(f"{code} at instruction {index}")
        self.code = code
        self.index = index


@dataclass
class _Timing:
    unit_free: list = field(default_factory=lambda: [0, 0, 0])
    token_times: dict = field(default_factory=dict)  # channel -> [time of each push]
    taken: dict = field(default_factory=dict)
    end: int = 0
    array_active: int = 0
    load_busy: int = 0
    store_busy: int = 0
    compute_stall: int = 0


class _Machine:
    """Executes one program over the given memories (``data=False``: checks only)."""

    def __init__(self, config: NpuConfig, memories, dram, dram_size, data=True):
        self.config = config
        self.memories = memories
        self.dram = dram
        self.dram_size = dram_size
        self.data = data
        self.clocks = ClockTracker()
        self.rows = RowTracker({Memory.SCRATCHPAD: config.scratchpad_depth,
                                Memory.ACCUMULATOR: config.accumulator_depth,
                                Memory.QUANT: config.quant_table_depth})
        self.dram_accesses = DramTracker()
        self.timing = _Timing()
        self.bytes_read = 0
        self.bytes_written = 0
        self.program_index = {unit: [] for unit in Unit}  # unit index -> program index

    # -- scheduling -------------------------------------------------------------------------

    def run(self, fetch, count):
        """Run ``count`` instructions from ``fetch(i)`` (an Instruction; AssemblyError when
        the word is illegal)."""
        capacity = self.config.instruction_queue_depth
        queues = {unit: deque() for unit in Unit}
        dispatched, ended = 0, False
        while True:
            progressed = False
            while not ended and dispatched < count:
                try:
                    insn = fetch(dispatched)
                except AssemblyError:
                    raise Fault("ILLEGAL_INSTRUCTION", dispatched)
                if insn.opcode == Opcode.FINISH:
                    ended = True
                    break
                unit = UNIT_OF_OPCODE[insn.opcode]
                if len(queues[unit]) >= capacity:
                    break
                queues[unit].append((dispatched, insn))
                dispatched += 1
                progressed = True
            for unit in Unit:
                while queues[unit] and self.clocks.ready(unit, queues[unit][0][1].deps):
                    index, insn = queues[unit].popleft()
                    self._execute(unit, index, insn)
                    progressed = True
            if not any(queues.values()) and (ended or dispatched == count):
                return
            if not progressed:
                self._deadlock(queues, dispatched, count)

    def _deadlock(self, queues, dispatched, count):
        waiting = []
        for unit, queue in queues.items():
            if queue:
                index, insn = queue[0]
                missing = self.clocks.missing_tokens(unit, insn.deps)
                waiting.append(f"instruction {index} ({insn.mnemonic}) waits for a "
                               f"{' and a '.join(c.name for c in missing)} token")
        blocked = ""
        if dispatched < count:
            blocked = (f"; dispatch is stuck at instruction {dispatched} behind a full "
                       f"queue of {self.config.instruction_queue_depth}")
        raise DeadlockError("the program can never finish: " + "; ".join(waiting) + blocked)

    # -- ordering checks --------------------------------------------------------------------

    def _check_rows(self, unit, index, start, insn, program_index, memory, first, count,
                    write):
        rows = slice(first, first + count)
        for access in self.rows.conflicts(unit, memory, rows, write):
            if start[access.unit, access.event] < access.index:
                other = self.program_index[access.unit][access.index]
                kind = "writes" if write else "reads"
                raise RaceError(
                    f"instruction {program_index} ({insn.mnemonic}) {kind} {memory.value} rows "
                    f"[{first}, {first + count}) that instruction {other} "
                    f"({access.unit.name.lower()}) {'writes' if access.write else 'reads'}, "
                    f"with no dependency token ordering them")
        self.rows.record(unit, index, memory, rows, write)

    def _check_dram(self, unit, index, start, insn, program_index, pattern):
        for access in self.dram_accesses.conflicts(unit, pattern, start):
            other = self.program_index[access.unit][access.index]
            raise RaceError(
                f"instruction {program_index} ({insn.mnemonic}) and instruction {other} "
                f"({access.unit.name.lower()}) access the same DRAM bytes with no dependency "
                f"token ordering them (a STORE's writes can only be read by a later program)")
        self.dram_accesses.record(unit, index, pattern)

    # -- execution --------------------------------------------------------------------------

    def _execute(self, unit, program_index, insn):
        start = self.clocks.start_clock(unit, insn.deps)
        index = self.clocks.issued(unit)
        self.program_index[unit].append(program_index)
        {Unit.LOAD: self._load, Unit.COMPUTE: self._compute, Unit.STORE: self._store}[unit](
            index, start, insn, program_index)
        self._time(unit, insn)
        self.clocks.issue(unit, insn.deps)

    def _dram_pattern(self, insn, program_index, error):
        if insn.rows == 0 or insn.bytes_per_row == 0:
            raise Fault("BAD_TRANSFER", program_index)
        pattern = DramPattern(insn.dram_addr, insn.bytes_per_row, insn.rows, insn.stride)
        if pattern.last > 2 ** 32:
            raise Fault("BAD_TRANSFER", program_index)
        if pattern.last > self.dram_size:
            raise Fault(error, program_index)
        return pattern

    def _gather(self, pattern):
        starts = pattern.addr + np.arange(pattern.rows, dtype=np.int64) * pattern.stride
        offsets = starts[:, None] + np.arange(pattern.bytes_per_row, dtype=np.int64)
        return offsets.reshape(-1)

    def _load(self, index, start, insn, program_index):
        n = self.config.n
        target = insn.target
        memory, depth = {
            LoadTarget.SCRATCHPAD: (Memory.SCRATCHPAD, self.config.scratchpad_depth),
            LoadTarget.ACCUMULATOR: (Memory.ACCUMULATOR, self.config.accumulator_depth),
            LoadTarget.QUANT: (Memory.QUANT, self.config.quant_table_depth),
        }[target]
        row_bytes = LOAD_LANE_BYTES[target] * n
        pattern = self._dram_pattern(insn, program_index, "AXI_READ_ERROR")
        total = insn.rows * insn.bytes_per_row
        whole_rows = total // row_bytes
        if insn.sram_addr + whole_rows > depth:
            raise Fault("SRAM_RANGE", program_index)
        if total % row_bytes:
            raise Fault("BAD_TRANSFER", program_index)
        self._check_dram(Unit.LOAD, index, start, insn, program_index, pattern)
        self._check_rows(Unit.LOAD, index, start, insn, program_index, memory, insn.sram_addr,
                         whole_rows, True)
        self.bytes_read += total
        if self.data:
            raw = self.dram[self._gather(pattern)]
            rows = slice(insn.sram_addr, insn.sram_addr + whole_rows)
            if memory == Memory.SCRATCHPAD:
                self.memories.scratchpad[rows] = raw.view(np.int8).reshape(-1, n)
            elif memory == Memory.ACCUMULATOR:
                self.memories.accumulator[rows] = raw.view("<i4").reshape(-1, n)
            else:
                self.memories.quant[rows] = raw.reshape(-1, row_bytes)

    def _compute(self, index, start, insn, program_index):
        n, config = self.config.n, self.config
        if (insn.weight_addr + n > config.scratchpad_depth or
                insn.act_addr + insn.rows > config.scratchpad_depth or
                insn.acc_addr + insn.rows > config.accumulator_depth):
            raise Fault("SRAM_RANGE", program_index)
        if insn.rows == 0:
            return  # relays tokens only
        check = lambda *args: self._check_rows(Unit.COMPUTE, index, start, insn,  # noqa: E731
                                               program_index, *args)
        check(Memory.SCRATCHPAD, insn.weight_addr, n, False)
        check(Memory.SCRATCHPAD, insn.act_addr, insn.rows, False)
        if insn.accumulate:
            check(Memory.ACCUMULATOR, insn.acc_addr, insn.rows, False)
        check(Memory.ACCUMULATOR, insn.acc_addr, insn.rows, True)
        if self.data:
            memories = self.memories
            weights = memories.scratchpad[insn.weight_addr:insn.weight_addr + n].astype(np.int64)
            acts = memories.scratchpad[insn.act_addr:insn.act_addr + insn.rows].astype(np.int64)
            result = acts @ weights
            rows = slice(insn.acc_addr, insn.acc_addr + insn.rows)
            if insn.accumulate:
                result += memories.accumulator[rows]
            memories.accumulator[rows] = result.astype(np.uint64).astype(np.uint32).view(
                np.int32)

    def _store(self, index, start, insn, program_index):
        n = self.config.n
        raw = insn.mode == StoreMode.RAW
        if insn.rows == 0 or insn.bytes_per_row == 0:
            raise Fault("BAD_TRANSFER", program_index)
        if not raw and insn.quant_addr >= self.config.quant_table_depth:
            raise Fault("SRAM_RANGE", program_index)
        row_bytes = STORE_LANE_BYTES[insn.mode] * n
        total = insn.rows * insn.bytes_per_row
        acc_rows = math.ceil(total / row_bytes)
        if insn.acc_addr + acc_rows > self.config.accumulator_depth:
            raise Fault("SRAM_RANGE", program_index)
        if total % row_bytes:
            raise Fault("BAD_TRANSFER", program_index)
        pattern = self._dram_pattern(insn, program_index, "AXI_WRITE_ERROR")
        self._check_rows(Unit.STORE, index, start, insn, program_index, Memory.ACCUMULATOR,
                         insn.acc_addr, acc_rows, False)
        if not raw:
            self._check_rows(Unit.STORE, index, start, insn, program_index, Memory.QUANT,
                             insn.quant_addr, 1, False)
        self._check_dram(Unit.STORE, index, start, insn, program_index, pattern)
        self.bytes_written += total
        if self.data:
            acc = self.memories.accumulator[insn.acc_addr:insn.acc_addr + acc_rows]
            if raw:
                out = acc.astype("<i4").view(np.uint8).reshape(-1)
            else:
                out = self._requantize(acc, self.memories.quant[insn.quant_addr]).view(
                    np.uint8).reshape(-1)
            self.dram[self._gather(pattern)] = out

    def _requantize(self, acc, quant_row):
        out = np.empty(acc.shape, dtype=np.int8)
        for lane, params in enumerate(decode_quant_row(quant_row, self.config.n)):
            out[:, lane] = requantize(acc[:, lane:lane + 1], params["multiplier"],
                                      params["shift"], params["zero_point"], params["qmin"],
                                      params["qmax"])[:, 0]
        return out

    # -- timing estimate --------------------------------------------------------------------

    def _time(self, unit, insn):
        t = self.timing
        n, bus = self.config.n, self.config.bus_bytes
        ready = t.unit_free[unit]
        for channel in pops_of(unit, insn.deps):
            times = t.token_times.setdefault(channel, [])
            taken = t.taken.get(channel, 0)
            ready = max(ready, times[taken])
            t.taken[channel] = taken + 1
        start = ready
        if unit == Unit.COMPUTE:
            t.compute_stall += start - t.unit_free[unit]
            streamed = insn.rows
            reads = start + max(streamed, n if streamed else 0)
            # Results land after the array, the scratchpad read before it and the
            # accumulator's read-modify-write after it.
            drain = (self.config.array_latency + SCRATCHPAD_READ_LATENCY + 1 +
                     Accumulator.UPDATE_WRITE_DELAY)
            end = reads + (drain if streamed else 0)
            t.unit_free[unit] = start + max(streamed, n if streamed else 1)
            t.array_active += streamed
        else:
            busy = DMA_OVERHEAD + math.ceil(insn.rows * insn.bytes_per_row / bus)
            end = start + busy
            reads = end
            t.unit_free[unit] = end
            if unit == Unit.LOAD:
                t.load_busy += busy
            else:
                t.store_busy += busy
        events = {Event.START: start, Event.READS_DONE: reads, Event.END: end}
        for channel, event in pushes_of(unit, insn.deps):
            t.token_times.setdefault(channel, []).append(events[event])
        t.end = max(t.end, end)


def decode_quant_row(raw, n):
    """The N lanes of a quant table row as dicts of QuantParams fields."""
    lanes = []
    for lane in range(n):
        lane_bytes = raw[lane * QUANT_LANE_BYTES:(lane + 1) * QUANT_LANE_BYTES]
        word = int.from_bytes(bytes(lane_bytes), "little")
        view = QuantParams.from_bits(word)
        lanes.append({name: int(getattr(view, name))
                      for name in ("multiplier", "shift", "zero_point", "qmin", "qmax")})
    return lanes


@dataclass
class _Memories:
    scratchpad: np.ndarray
    accumulator: np.ndarray
    quant: np.ndarray

    @classmethod
    def zeroed(cls, config):
        n = config.n
        return cls(np.zeros((config.scratchpad_depth, n), np.int8),
                   np.zeros((config.accumulator_depth, n), np.int32),
                   np.zeros((config.quant_table_depth, QUANT_LANE_BYTES * n), np.uint8))


def check_program(program, config: NpuConfig, dram_size=2 ** 32):
    """Check a program (a list of ``Instruction``) without running its data: raises
    ``RaceError``, ``DeadlockError``, or ``Fault`` for what the hardware would fault on."""
    machine = _Machine(config, None, None, dram_size, data=False)
    machine.run(program.__getitem__, len(program))
    return machine


class ModelDevice(Device):
    """The model as a device: the register map of the RTL over numpy memories."""

    name = "model"

    def __init__(self, config: NpuConfig = None, *, n=None, dram_size=DEFAULT_DRAM_SIZE):
        if config is None:
            config = NpuConfig() if n is None else NpuConfig(n=n)
        self.config = config
        self.dram_size = dram_size
        self.dram = np.zeros(dram_size, dtype=np.uint8)  # pages appear when touched
        self.memories = _Memories.zeroed(config)
        self._writable = {name: 0 for name in ("INSN_BASE", "INSN_COUNT")}
        self._irq_enable = 0
        self._status = {"busy": 0, "done": 0, "error": 0}
        self._error = ("NONE", 0)
        self._counters = {}
        self._problem = None

    # -- DRAM ---------------------------------------------------------------------------------

    def write_dram(self, addr, data):
        data = as_dram_bytes(data)
        self.check_dram_range(addr, data.size, "write")
        self.dram[addr:addr + data.size] = data

    def read_dram(self, addr, length):
        self.check_dram_range(addr, length, "read")
        return self.dram[addr:addr + length].copy()

    # -- registers ----------------------------------------------------------------------------

    def _read_value(self, name):
        values = {
            "ID": {"magic": ID_MAGIC},
            "VERSION": {f: d["reset"] for f, d in REGISTERS["VERSION"]["fields"].items()},
            **config_registers(self.config),
            "CTRL": {"irq_enable": self._irq_enable},
            "STATUS": self._status,
            "ERROR_CODE": {"code": self._error[0]},
            "ERROR_INDEX": {"index": self._error[1]},
            "INSN_BASE": {"addr": self._writable["INSN_BASE"]},
            "INSN_COUNT": {"count": self._writable["INSN_COUNT"]},
        }
        if name in values:
            return encode_fields(name, **values[name])
        if name.startswith("PERF_"):
            return self._counters.get(name, 0) & 0xFFFF_FFFF
        return 0

    def read32(self, offset):
        for name, register in REGISTERS.items():
            if register["offset"] == offset:
                return self._read_value(name)
        return 0  # unmapped addresses read zero, as in the RTL

    def write32(self, offset, value):
        for name, register in REGISTERS.items():
            if register["offset"] != offset:
                continue
            if name in self._writable:
                self._writable[name] = value
            elif name == "CTRL":
                self._irq_enable = field_value("CTRL", "irq_enable", value)
                if field_value("CTRL", "soft_reset", value):
                    self._status = {"busy": 0, "done": 0, "error": 0}
                    self._error = ("NONE", 0)
                elif field_value("CTRL", "start", value):
                    self._start()

    def wait_idle(self, timeout_s):
        problem, self._problem = self._problem, None
        if problem is not None:
            raise problem
        return True

    # -- running ------------------------------------------------------------------------------

    def _start(self):
        base, count = self._writable["INSN_BASE"], self._writable["INSN_COUNT"]
        machine = _Machine(self.config, self.memories, self.dram, self.dram_size)
        self._status = {"busy": 0, "done": 0, "error": 0}

        def fetch(index):
            addr = base + index * INSTRUCTION_BYTES
            if addr + INSTRUCTION_BYTES > self.dram_size:
                raise Fault("AXI_READ_ERROR", index)
            word = int.from_bytes(self.dram[addr:addr + INSTRUCTION_BYTES].tobytes(), "little")
            return Instruction.decode(word, index)

        try:
            machine.run(fetch, count)
        except Fault as fault:
            self._status = {"busy": 0, "done": 0, "error": 1}
            self._error = (fault.code, fault.index)
        except (RaceError, DeadlockError) as problem:
            # The hardware would hang or compute garbage: report it when the host waits.
            self._problem = problem
            self._status = {"busy": 0, "done": 0, "error": 0}
            return
        else:
            self._status = {"busy": 0, "done": 1, "error": 0}
        t = machine.timing
        self._counters = {
            "PERF_CYCLES": t.end + FETCH_LATENCY,
            "PERF_ARRAY_ACTIVE": t.array_active,
            "PERF_LOAD_BUSY": t.load_busy,
            "PERF_STORE_BUSY": t.store_busy,
            "PERF_COMPUTE_STALL": t.compute_stall,
            "PERF_BYTES_READ": machine.bytes_read,
            "PERF_BYTES_WRITTEN": machine.bytes_written,
        }
