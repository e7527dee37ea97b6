"""The GEMM compiler: ``C = requant(A @ W + bias)`` (or the raw int32 sum) as an NPU program.

Every layer the NPU runs (matmul, conv via im2col) becomes this GEMM. The compiler

* pads K and the output columns to whole N x N tiles and chooses tiled DRAM layouts so
  every transfer is one long burst: A as K-tile-major ``[Kt][M][N]`` (a block of A rows for
  a run of K tiles is one 2-D transfer), W as ``[Jt][Kt][N][N]`` (consecutive K tiles of one
  column tile are contiguous), C as ``[Jt][M][N]`` -- which is the A layout of a following
  layer with K = the output columns;
* keeps a block of A rows resident in the scratchpad while every column tile streams past
  it (A is read from DRAM once; W once per row block), with W double-buffered in runs of
  ``w_tiles`` K tiles and the accumulator double-buffered so STORE overlaps COMPUTE;
* loads the bias into the accumulator first (so requantization, bias and the ReLU clamp all
  happen in the STORE) and the requantization parameters into the quant table;
* picks the block sizes with a small cost model (``plan_gemm``) and lets
  ``ProgramBuilder`` place the dependency tokens.
"""

import math
from dataclasses import dataclass

import numpy as np

from amaranth import Shape
from amaranth.lib import data

from rtl.isa import (LOAD_LANE_BYTES, STORE_LANE_BYTES, LoadInstruction, LoadTarget,
                     QuantParams, StoreMode)

from .errors import NpuShapeError
from .program_builder import ProgramBuilder

__all__ = ["im2col", "ACC_BYTES", "QUANT_BYTES", "out_bytes", "GemmPlan", "GemmLayout",
           "plan_gemm", "gemm_program", "pack_a", "pack_w",
           "unpack_c", "pack_quant", "roofline_utilization", "DMA_LATENCY"]

DMA_LATENCY = 24  # cycles a DMA instruction costs beyond its beats (cost model only)
# The largest bytes_per_row and rows a transfer field holds.
MAX_FIELD = min(2 ** Shape.cast(data.Layout.cast(LoadInstruction)[name].shape).width - 1
                for name in ("bytes_per_row", "rows"))
ACC_BYTES = LOAD_LANE_BYTES[LoadTarget.ACCUMULATOR]  # an int32 lane: accumulator, bias
QUANT_BYTES = LOAD_LANE_BYTES[LoadTarget.QUANT]      # one QuantParams


def out_bytes(raw):
    """Bytes per output element: int32 sums (raw) or requantized int8."""
    return STORE_LANE_BYTES[StoreMode.RAW if raw else StoreMode.REQUANT]


@dataclass(frozen=True)
class GemmPlan:
    """Block sizes of a GEMM on the array."""
    m: int
    k: int
    cols: int
    n: int
    block_rows: int      # A rows resident per block (Mt)
    chunk_tiles: int     # K tiles resident per A block (Kc); all of K unless K is huge
    w_tiles: int         # K tiles of W per LOAD (Kw)
    a_buffers: int       # 1 or 2 A blocks in the scratchpad
    w_slots: int         # W loads in flight: enough to cover the next A block's load
    group: int           # column tiles accumulated together (> 1 only when K is chunked)
    estimated_cycles: int

    @property
    def k_tiles(self):
        return math.ceil(self.k / self.n)

    @property
    def col_tiles(self):
        return math.ceil(self.cols / self.n)

    def blocks(self):
        """(first row, rows) of each row block, as even as possible."""
        count = math.ceil(self.m / self.block_rows)
        base, extra = divmod(self.m, count)
        first = 0
        for index in range(count):
            rows = base + (index < extra)
            yield first, rows
            first += rows

    def chunks(self):
        for first in range(0, self.k_tiles, self.chunk_tiles):
            yield first, min(self.chunk_tiles, self.k_tiles - first)


@dataclass(frozen=True)
class GemmLayout:
    """DRAM byte addresses of a GEMM's operands, in the tiled layouts of the module doc."""
    a: int
    w: int
    c: int
    bias: int = None    # int32 per padded output column
    quant: int = None   # QuantParams (8 bytes) per padded output column; None: raw int32 out


def _estimate(hw, m, k_tiles, col_tiles, block_rows, chunk_tiles, w_tiles, a_buffers, group,
              w_slots, raw):
    """Cycles by a coarse model: COMPUTE back to back, plus what loads cannot hide.

    The LOAD unit runs one instruction at a time, so while it loads an A block, COMPUTE
    lives on the W tiles already loaded: ``w_slots`` of them."""
    n, bus = hw.n, hw.bus_bytes
    blocks = math.ceil(m / block_rows)
    rows = math.ceil(m / blocks)
    per_compute = max(rows, n)
    chunks = math.ceil(k_tiles / chunk_tiles)
    compute = blocks * k_tiles * col_tiles * per_compute
    w_load = DMA_LATENCY + w_tiles * n * n / bus
    w_stall = max(0.0, w_load - w_tiles * per_compute) * blocks * col_tiles * k_tiles / w_tiles
    a_load = DMA_LATENCY + chunk_tiles * rows * n / bus
    a_loads = blocks * chunks * (math.ceil(col_tiles / group) if chunks > 1 else 1)
    if a_buffers == 1:
        a_stall = a_load * a_loads
    else:
        a_stall = a_load + max(0.0, a_load - (w_slots - 1) * w_tiles * per_compute) * a_loads
    loads = a_loads * a_load + blocks * col_tiles * (k_tiles / w_tiles) * w_load
    stores = blocks * col_tiles * (DMA_LATENCY + rows * n * out_bytes(raw) / bus)
    return int(max(compute + w_stall + a_stall, loads, stores) + w_load + a_load)


def plan_gemm(hw, m, k, cols, *, raw=False) -> GemmPlan:
    """The cheapest block sizes (by ``_estimate``) that fit the scratchpad and accumulator."""
    for name, value in (("m", m), ("k", k), ("cols", cols)):
        if value < 1:
            raise NpuShapeError(f"GEMM dimension {name} must be at least 1, not {value}")
    n = hw.n
    k_tiles, col_tiles = math.ceil(k / n), math.ceil(cols / n)
    best = None
    chunk = k_tiles
    while True:
        chunks = math.ceil(k_tiles / chunk)
        w_choices = sorted({min(chunk, 2 ** p) for p in range(12)} | {chunk})
        for w_tiles in w_choices:
            if w_tiles * n * n > MAX_FIELD:
                continue
            for a_buffers in (2, 1):
                for w_slots in (2, 4, 8, 16, 32):
                    space = hw.scratchpad_rows - w_slots * w_tiles * n
                    rows = space // (a_buffers * chunk) if space > 0 else 0
                    rows = min(rows, m, MAX_FIELD // (out_bytes(raw=True) * n))
                    group = 1
                    if chunks > 1:
                        group = max(1, min(col_tiles,
                                           hw.accumulator_rows // (2 * max(rows, 1))))
                    rows = min(rows, hw.accumulator_rows // (2 * group))
                    if rows < 1:
                        continue
                    cycles = _estimate(hw, m, k_tiles, col_tiles, rows, chunk, w_tiles,
                                       a_buffers, group, w_slots, raw)
                    if best is None or cycles < best.estimated_cycles:
                        best = GemmPlan(m, k, cols, n, rows, chunk, w_tiles, a_buffers,
                                        w_slots, group, cycles)
        # Shorter chunks allow taller blocks: worth trying while blocks are short.
        if chunk == 1 or (best is not None and best.block_rows >= min(m, 4 * n)):
            break
        chunk = math.ceil(chunk / 2)
    if best is None:
        raise NpuShapeError(f"no tiling of a {m} x {k} x {cols} GEMM fits the device")
    return best


def gemm_program(hw, plan: GemmPlan, layout: GemmLayout, *, raw):
    """The program of a planned GEMM (a list of ``Instruction``, ending with FINISH)."""
    n = hw.n
    builder = ProgramBuilder(hw)
    element_bytes = out_bytes(raw)
    k_tiles, col_tiles = plan.k_tiles, plan.col_tiles
    a_rows = plan.block_rows * plan.chunk_tiles
    w_base = plan.a_buffers * a_rows
    quant_resident = not raw and col_tiles <= hw.quant_rows
    if quant_resident:
        builder.load("QUANT", 0, layout.quant, QUANT_BYTES * n * col_tiles, 1)
    a_slot, a_resident = -1, None
    w_slot = 0
    group_count = 0
    chunks = list(plan.chunks())
    for first_row, rows in plan.blocks():
        for group_first in range(0, col_tiles, plan.group):
            group = range(group_first, min(group_first + plan.group, col_tiles))
            acc_base = (group_count % 2) * plan.group * plan.block_rows
            group_count += 1

            def acc_slot(j):
                return acc_base + (j - group_first) * plan.block_rows

            for chunk_index, (first_tile, tiles) in enumerate(chunks):
                if a_resident != (first_row, first_tile):
                    a_slot = (a_slot + 1) % plan.a_buffers
                    a_resident = (first_row, first_tile)
                    builder.load("SCRATCHPAD", a_slot * a_rows,
                                 layout.a + (first_tile * plan.m + first_row) * n,
                                 rows * n, tiles, plan.m * n)
                a_addr = a_slot * a_rows
                for j in group:
                    if chunk_index == 0 and layout.bias is not None:
                        builder.load("ACCUMULATOR", acc_slot(j),
                                     layout.bias + j * ACC_BYTES * n, ACC_BYTES * n, rows, 0)
                    for w_first in range(first_tile, first_tile + tiles, plan.w_tiles):
                        w_count = min(plan.w_tiles, first_tile + tiles - w_first)
                        w_addr = w_base + w_slot * plan.w_tiles * n
                        w_slot = (w_slot + 1) % plan.w_slots
                        builder.load("SCRATCHPAD", w_addr,
                                     layout.w + (j * k_tiles + w_first) * n * n,
                                     w_count * n * n, 1)
                        for t in range(w_first, w_first + w_count):
                            builder.compute(w_addr + (t - w_first) * n,
                                            a_addr + (t - first_tile) * rows, rows, acc_slot(j),
                                            accumulate=layout.bias is not None or t > 0)
            for j in group:
                quant_addr = 0
                if not raw:
                    quant_addr = j if quant_resident else j % hw.quant_rows
                    if not quant_resident:
                        builder.load("QUANT", quant_addr, layout.quant + j * QUANT_BYTES * n,
                                     QUANT_BYTES * n, 1)
                builder.store(acc_slot(j),
                              layout.c + (j * plan.m + first_row) * n * element_bytes,
                              rows * n * element_bytes, 1, raw=raw, quant_addr=quant_addr)
    return builder.program()


# -- host-side layouts ---------------------------------------------------------------------------

def im2col(padded, kernel_h, kernel_w, strides, dilations, out_h, out_w):
    """Convolution as a GEMM: the (batch * out_h * out_w, channels * kernel_h * kernel_w)
    patches of an already padded NCHW tensor, channel-major like an OIHW weight row."""
    batch, channels = padded.shape[:2]
    patches = np.empty((batch, out_h, out_w, channels, kernel_h, kernel_w), padded.dtype)
    for i in range(kernel_h):
        for j in range(kernel_w):
            rows = slice(i * dilations[0], i * dilations[0] + strides[0] * (out_h - 1) + 1,
                         strides[0])
            columns = slice(j * dilations[1], j * dilations[1] + strides[1] * (out_w - 1) + 1,
                            strides[1])
            patches[..., i, j] = padded[:, :, rows, columns].transpose(0, 2, 3, 1)
    return patches.reshape(batch * out_h * out_w, channels * kernel_h * kernel_w)


def pack_a(a, n):
    """(M, K) int8 -> ``[Kt][M][N]`` int8 bytes, K zero-padded to whole tiles."""
    m, k = a.shape
    k_tiles = math.ceil(k / n)
    padded = np.zeros((m, k_tiles * n), dtype=np.int8)
    padded[:, :k] = a
    return np.ascontiguousarray(padded.reshape(m, k_tiles, n).transpose(1, 0, 2))


def pack_w(w, n):
    """(K, cols) int8 -> ``[Jt][Kt][N][N]`` int8, zero-padded (tile row r = K index)."""
    k, cols = w.shape
    k_tiles, col_tiles = math.ceil(k / n), math.ceil(cols / n)
    padded = np.zeros((k_tiles * n, col_tiles * n), dtype=np.int8)
    padded[:k, :cols] = w
    return np.ascontiguousarray(padded.reshape(k_tiles, n, col_tiles, n).transpose(2, 0, 1, 3))


def unpack_c(raw_bytes, m, cols, n, dtype):
    """``[Jt][M][N]`` -> (M, cols)."""
    col_tiles = math.ceil(cols / n)
    tiles = np.frombuffer(raw_bytes, dtype=dtype).reshape(col_tiles, m, n)
    return np.ascontiguousarray(tiles.transpose(1, 0, 2).reshape(m, col_tiles * n)[:, :cols])


def pack_quant(multiplier, shift, zero_point, qmin, qmax, n):
    """QuantParams rows for every output column, padded to whole tiles (one lane each)."""
    cols = len(multiplier)
    padded = math.ceil(cols / n) * n
    words = np.zeros(padded, dtype=np.uint64)
    for c in range(cols):
        words[c] = QuantParams.const({
            "multiplier": int(multiplier[c]), "shift": int(shift[c]),
            "zero_point": int(zero_point), "qmin": int(qmin), "qmax": int(qmax),
        }).as_bits()
    return words.astype("<u8").view(np.uint8)  # QUANT_BYTES (8) per lane


def roofline_utilization(hw, m, k, cols, *, raw):
    """Upper bound on array-active cycles / cycles for a GEMM shape.

    The array streams one activation row per cycle, but a COMPUTE of fewer than N rows still
    takes N cycles (its weight tile takes N cycles to load); the DMA moves at most
    ``bus_bytes`` per cycle each way, and the operands must cross it at least once.
    """
    n, bus = hw.n, hw.bus_bytes
    k_tiles, col_tiles = math.ceil(k / n), math.ceil(cols / n)
    active = m * k_tiles * col_tiles
    compute_bound = max(m, n) * k_tiles * col_tiles
    read_bound = (m * k_tiles * n + k_tiles * col_tiles * n * n) / bus
    write_bound = m * col_tiles * n * out_bytes(raw) / bus
    return active / max(compute_bound, read_bound, write_bound)
