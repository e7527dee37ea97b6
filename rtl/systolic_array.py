"""The N x N weight-stationary systolic array with its input skew and output de-skew."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import NpuConfig
from .pe import ProcessingElement
from .pipeline import delay

__all__ = ["SystolicArray"]


class SystolicArray(wiring.Component):
    """N x N int8 MAC array computing ``result_row = act_row @ W`` for one row per cycle.

    ``W`` (N x N int8) sits in the PEs: ``W[k][j]`` in row k, column j. Its users see whole
    rows: the skew of the inputs and the de-skew of the outputs are inside.

    Timing contract (t = the cycle an activation row is presented):

    - the result row for it appears on ``result_row`` at ``t + config.array_latency``;
    - a tile's weights are presented one row per cycle as rows ``r = 0..N-1`` at
      ``t0 + r``, where ``t0`` is the cycle of the tile's first activation row (marked with
      ``act_first``); the tile after it may start at ``t0 + N`` at the earliest, however
      few activation rows the tile has. Presenting weights while the previous tile still
      streams is what removes the bubble between tiles.

    Members
    -------
    act_row : In(ArrayLayout(signed(8), N))
        Activation row (one int8 per array row k).
    act_first : In(1)
        ``act_row`` is the first row of a new weight tile: switch to the shadow weights.
    weight_row : In(ArrayLayout(signed(8), N))
        One row ``W[r][:]`` of the next weight tile.
    weight_row_index : In(range(N))
        ``r``, the array row ``weight_row`` is for.
    weight_row_load : In(1)
        Write ``weight_row`` into the shadow weights of array row ``weight_row_index``.
    result_row : Out(ArrayLayout(signed(32), N))
        ``act_row @ W`` for the row presented ``array_latency`` cycles earlier.
    """

    def __init__(self, config: NpuConfig):
        self._config = config
        n = config.n
        data_shape = signed(config.data_width)
        super().__init__({
            "act_row": In(data.ArrayLayout(data_shape, n)),
            "act_first": In(1),
            "weight_row": In(data.ArrayLayout(data_shape, n)),
            "weight_row_index": In(range(n)),
            "weight_row_load": In(1),
            "result_row": Out(data.ArrayLayout(signed(config.acc_width), n)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._config.n
        first_lut_row = n - self._config.lut_multiplier_rows
        pes = [[ProcessingElement(self._config, lut_multiplier=k >= first_lut_row)
                for _ in range(n)] for k in range(n)]
        for k in range(n):
            for j in range(n):
                m.submodules[f"pe_{k}_{j}"] = pes[k][j]

        # The weight row is registered before it fans out to the PEs, with each array row's
        # load flag decoded: the scratchpad's slow clock-to-out and the route across the array
        # get a cycle each. Activations and swap flags are skewed one cycle more to match.
        weight_row = Signal.like(self.weight_row, reset_less=True)
        m.d.sync += weight_row.eq(self.weight_row)
        for k in range(n):
            load_row = Signal(name=f"weight_load_row_{k}")
            m.d.sync += load_row.eq(self.weight_row_load & (self.weight_row_index == k))
            # Input skew: array row k sees an activation row k + 3 cycles after it is
            # presented, and its swap flag one cycle before that.
            m.d.comb += [
                pes[k][0].act_in.eq(delay(m, self.act_row[k], k + 3, f"act_skew_{k}",
                                                 reset_less=True)),
                pes[k][0].swap_in.eq(delay(m, self.act_first, k + 2, f"swap_skew_{k}")),
            ]
            for j in range(n):
                pe = pes[k][j]
                if j + 1 < n:
                    m.d.comb += [
                        pes[k][j + 1].act_in.eq(pe.act_out),
                        pes[k][j + 1].swap_in.eq(pe.swap_out),
                    ]
                m.d.comb += [
                    pe.psum_in.eq(0 if k == 0 else pes[k - 1][j].psum_out),
                    pe.shadow_in.eq(weight_row[j]),
                    pe.shadow_load.eq(load_row),
                ]

        for j in range(n):
            # Output de-skew: column j finishes j cycles after column 0.
            column_sum = pes[n - 1][j].psum_out
            m.d.comb += self.result_row[j].eq(
                delay(m, column_sum, n - 1 - j, f"result_deskew_{j}", reset_less=True))
        return m
