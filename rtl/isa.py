"""The instruction set of the NPU, defined once.

Every instruction is 128 bits, stored in DRAM as 16 bytes little-endian (bit 0 of the
instruction is bit 0 of its first byte). Fields after the first byte sit on byte boundaries,
so a hex dump reads easily. The layouts below are used by the RTL decoder, by the
assembler and disassembler in ``sw_runtime.assembler``, and to generate ``docs/isa.md``.

Units and dependency tokens (as in TVM's VTA): instructions go to one of three units, LOAD,
COMPUTE and STORE, which run concurrently. Neighbouring units exchange tokens through four
counters: LOAD -> COMPUTE, COMPUTE -> LOAD, COMPUTE -> STORE and STORE -> COMPUTE. A unit's
"previous" neighbour is the one before it in LOAD -> COMPUTE -> STORE, its "next" the one after.
Before it starts, an instruction waits for (and takes) a token from each neighbour it pops;
when it has finished, it gives one to each neighbour it pushes. LOAD has no previous unit and
STORE no next one: setting those flags is an illegal instruction.
"""

from amaranth import Shape, signed
from amaranth.lib import data, enum

__all__ = ["INSTRUCTION_BITS", "INSTRUCTION_BYTES", "Opcode", "Dependencies", "Header",
           "LoadTarget", "StoreMode", "LoadInstruction", "ComputeInstruction",
           "StoreInstruction", "FinishInstruction", "QuantParams", "INSTRUCTION_LAYOUTS",
           "FIELD_DOCS", "FORBIDDEN_DEPENDENCIES", "reserved_mask", "LOAD_LANE_BYTES",
           "STORE_LANE_BYTES"]

INSTRUCTION_BITS = 128
INSTRUCTION_BYTES = INSTRUCTION_BITS // 8


class Opcode(enum.Enum, shape=3):
    """Which unit runs an instruction. Other values are illegal (so zeroed memory faults)."""
    LOAD = 1
    COMPUTE = 2
    STORE = 3
    FINISH = 4


class Dependencies(data.Struct):
    pop_prev: 1
    pop_next: 1
    push_prev: 1
    push_next: 1


class Header(data.Struct):
    opcode: Opcode
    deps: Dependencies


class LoadTarget(enum.Enum, shape=2):
    """Where a LOAD writes. Row sizes in bytes: N, 4N (int32 lanes), 8N (QuantParams lanes)."""
    SCRATCHPAD = 0
    ACCUMULATOR = 1
    QUANT = 2


class StoreMode(enum.Enum, shape=1):
    REQUANT = 0  # int32 -> requantize per channel -> int8, N bytes per accumulator row
    RAW = 1      # the int32 accumulator row as is, 4N bytes (for debugging)


class LoadInstruction(data.Struct):
    header: Header
    target: LoadTarget
    reserved: 7
    sram_addr: 16
    dram_addr: 32
    bytes_per_row: 16
    rows: 16
    stride: 32


class ComputeInstruction(data.Struct):
    header: Header
    accumulate: 1
    reserved: 8
    weight_addr: 16
    act_addr: 16
    rows: 16
    acc_addr: 16
    reserved_high: 48


class StoreInstruction(data.Struct):
    header: Header
    mode: StoreMode
    quant_addr: 8
    acc_addr: 16
    dram_addr: 32
    bytes_per_row: 16
    rows: 16
    stride: 32


class FinishInstruction(data.Struct):
    header: Header
    reserved: 121


class QuantParams(data.Struct):
    """Requantization parameters of one output channel: one lane of a quant table row.

    A quant table row holds N of them (8N bytes in DRAM), for the N columns of an
    accumulator row. See the numeric contract in ``sw_runtime.golden.requantize``.
    """
    multiplier: signed(32)
    shift: signed(8)
    zero_point: signed(8)
    qmin: signed(8)
    qmax: signed(8)


# Bytes per lane of the rows a LOAD fills and a STORE drains (N lanes a row), as software sees
# them in DRAM: int8 activations and weights, int32 accumulators, QuantParams. The RTL's row
# layouts have these sizes (tests/test_elaborate.py checks).
LOAD_LANE_BYTES = {LoadTarget.SCRATCHPAD: 1, LoadTarget.ACCUMULATOR: 4,
                   LoadTarget.QUANT: Shape.cast(QuantParams).width // 8}
STORE_LANE_BYTES = {StoreMode.REQUANT: 1, StoreMode.RAW: 4}

INSTRUCTION_LAYOUTS = {
    Opcode.LOAD: LoadInstruction,
    Opcode.COMPUTE: ComputeInstruction,
    Opcode.STORE: StoreInstruction,
    Opcode.FINISH: FinishInstruction,
}

FIELD_DOCS = {
    "header.opcode": "which unit runs the instruction (see Opcode)",
    "header.deps.pop_prev": "wait for a token from the previous unit before starting",
    "header.deps.pop_next": "wait for a token from the next unit before starting",
    "header.deps.push_prev": "give a token to the previous unit when finished",
    "header.deps.push_next": "give a token to the next unit when finished",
    "target": "target memory (see LoadTarget)",
    "sram_addr": "first row written in the target memory",
    "dram_addr": "byte address of the first DRAM row (any alignment)",
    "bytes_per_row": "bytes per DRAM row (non-zero); the transfer's bytes, in order, fill or "
                     "drain consecutive SRAM rows, so rows x bytes_per_row must be a whole number "
                     "of them (N bytes a scratchpad row, 4N an accumulator row or raw store, 8N a "
                     "quant row, N a requantized store)",
    "rows": "number of DRAM rows (LOAD, STORE) or activation rows (COMPUTE), non-zero",
    "stride": "bytes from the start of one DRAM row to the next",
    "accumulate": "add the results to the accumulator rows instead of overwriting them",
    "weight_addr": "first of the N scratchpad rows holding the weight tile (row r = W[r][:])",
    "act_addr": "first scratchpad row of activations",
    "acc_addr": "first accumulator row",
    "mode": "requantize to int8, or store raw int32 (see StoreMode)",
    "quant_addr": "quant table row with the N channels' requantization parameters",
    "reserved": "must be zero",
    "reserved_high": "must be zero",
    "multiplier": "signed 32-bit fixed-point multiplier",
    "shift": "signed extra right shift, -31..31 (right shift by 31 + shift in all)",
    "zero_point": "signed output zero point",
    "qmin": "signed lower clamp",
    "qmax": "signed upper clamp",
}

# Dependency flags that name a unit that does not exist (illegal, see the module docstring).
FORBIDDEN_DEPENDENCIES = {
    Opcode.LOAD: frozenset({"pop_prev", "push_prev"}),
    Opcode.COMPUTE: frozenset(),
    Opcode.STORE: frozenset({"pop_next", "push_next"}),
    Opcode.FINISH: frozenset({"pop_prev", "pop_next", "push_prev", "push_next"}),
}


def reserved_mask(layout):
    """The bits of an instruction layout that must be zero."""
    mask = 0
    for name, field in data.Layout.cast(layout):
        if name.startswith("reserved"):
            width = Shape.cast(field.shape).width
            mask |= ((1 << width) - 1) << field.offset
    return mask
