"""Small pipeline helpers shared by the units."""

from amaranth import *
from amaranth.lib.memory import Memory

__all__ = ["delay", "mirrors", "RegisteredInputFifo", "replicas", "REPLICA_MARK", "skid_buffer"]


def delay(m, signal, cycles, name, reset_less=False):
    """``signal`` delayed by ``cycles`` registers (``cycles`` may be 0), named
    ``{name}_d1`` onwards; ``reset_less`` for data, whose valid bit travels beside it."""
    for stage in range(cycles):
        delayed = Signal.like(signal, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += delayed.eq(signal)
        signal = delayed
    return signal


# Names (and an attribute) of flip-flops that must stay separate copies: yosys would merge
# registers with the same input, and ``synth/run.py`` marks the cells driving them ``keep``.
REPLICA_MARK = "replica"


def replicas(m, next_value, name, consumers):
    """One register per consumer, each loaded with ``next_value``: a signal that fans out to
    the whole die starts from a flip-flop placed near each consumer instead of one net
    routed everywhere. Returns ``{consumer: register}``.

    The copies have no reset of their own: they follow ``next_value`` a cycle late, also while
    the domain is in reset, so the reset does not reach their inputs through a LUT (on the
    ECP5 the reset pin's untimed path would then end at every copy's data input)."""
    copies = {}
    for consumer in consumers:
        copies[consumer] = copy = Signal(name=f"{name}_{REPLICA_MARK}_{consumer}",
                                         reset_less=True)
        m.d.sync += copy.eq(next_value)
    return copies


def mirrors(register, consumers):
    """Copies of ``register`` for its consumers, as ``replicas`` but with its shape and reset:
    the caller loads them wherever it loads the register, so they equal it in every cycle,
    also in and after reset. Returns ``{consumer: copy}``.

    ``register`` itself gets the attribute ``REPLICA_MARK`` (kept like the copies): yosys
    folded an unmarked register into one of its marked copies (at e0ea48a one of a packer's
    two ``write_offset`` copies and one skid select in eight were the register itself)."""
    register.attrs[REPLICA_MARK] = 1
    return {consumer: Signal.like(register, name=f"{register.name}_{REPLICA_MARK}_{consumer}")
            for consumer in consumers}


# Payload bits per copy of a skid stage's select (``skid_buffer``).
SELECT_SLICE_BITS = 32


def skid_buffer(m, payload, valid, out_payload, out_valid, out_ready, name, flush=0,
                copies=()):
    """A registered stream stage with a skid register: ``payload``/``valid`` in,
    ``out_payload``/``out_valid`` (registers the caller declares) out, taken by
    ``out_ready``. The upstream's ready is the skid's emptiness, a register, so the
    downstream's ready reaches only this stage's enables; one item per cycle still.
    ``flush`` empties both registers. Returns (ready, skid_valid).

    ``copies`` are (register, ready) pairs: more output registers for consumers of which at
    most one takes, each loaded on its own consumer's ``ready`` (``out_ready`` is then the
    OR of them, gated by who is fed). The fed consumer's copy is exact; the others' are not
    read. ``out_payload`` may be None when the copies are the whole output."""
    skid = Signal.like(payload, name=f"{name}_skid", reset_less=True)
    skid_valid = Signal(name=f"{name}_skid_valid")
    flush = Value.cast(flush)  # the default 0 as a one-bit constant, so ~flush is 1
    moves = ~out_valid | out_ready
    # The flags as logic, not as if/else: yosys turns a multiplexer with a constant in front
    # of a flip-flop into a synchronous clear, and the ECP5's clear (LSR) has a setup time
    # where the data input has none (``synth.paths.FF_SETUP_NS``); the downstream's ready
    # crosses between units here.
    # The output holds an item after this cycle unless it is flushed: one it keeps (it does
    # not move), the skid's, or the one offered. The skid holds one while the output does
    # not move and one is there or offered.
    skid_valid_next = ~flush & ~moves & (skid_valid | valid)
    m.d.sync += [out_valid.eq(~flush & (~moves | skid_valid | valid)),
                 skid_valid.eq(skid_valid_next)]
    # The output multiplexer's select is a copy of the skid flag per SELECT_SLICE_BITS of the
    # payload, so no one flip-flop drives every bit's LUT (seed 1 of 309f0c6 at N=8: the DMA
    # reader's chunk skid flag into the chunk register, 9.11 ns).
    data_bits = Value.cast(payload)
    skid_bits = Value.cast(skid)
    slices = range(0, len(data_bits), SELECT_SLICE_BITS)
    selects = mirrors(skid_valid, slices)
    m.d.sync += [select.eq(skid_valid_next) for select in selects.values()]
    chosen = Cat(*(Mux(selects[start], skid_bits[start:start + SELECT_SLICE_BITS],
                       data_bits[start:start + SELECT_SLICE_BITS]) for start in slices))
    # The data registers load on their consumer's handshake alone (not the flush, which only
    # matters to the flags): after a flush nothing they hold is read.
    outputs = [(out_payload, out_ready)] if out_payload is not None else []
    for register, ready in [*outputs, *copies]:
        with m.If(~out_valid | ready):
            m.d.sync += register.eq(chosen)
    # The skid register follows the input while it is empty, so its enable is a register
    # (not the upstream's valid and the downstream's ready, which may be far apart).
    with m.If(~skid_valid):
        m.d.sync += skid.eq(payload)
    return ~skid_valid, skid_valid


class RegisteredInputFifo(Elaboratable):
    """A first-word-fall-through FIFO (as Amaranth's ``SyncFIFO``: ``r_data`` is valid while
    ``r_rdy``, ``r_en`` takes it) whose input passes a register first: ``w_data``/``w_en``
    are written a cycle later. There is no ``w_rdy``: the caller keeps count of the space
    (credits), counting the word in the register too.

    The write valid is held twice, once for the memory's write port and pointer (by the
    data) and once for the level (by the read side), so the level's update, which the read
    enable also feeds, starts from a flip-flop of its own (seed 2 of e0ea48a at N=8: STORE's
    buffer level through its read enable to a LUT packed with the write valid 20 columns
    and 23 rows away and back, 9.02 ns)."""

    def __init__(self, *, width, depth):
        self.width = width
        self.depth = depth
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()
        self.level = Signal(range(depth + 1))  # words in the memory (not the input register)

    def elaborate(self, platform):
        m = Module()
        data = Signal(self.width, reset_less=True)
        valid = Signal()
        valid_for_level = mirrors(valid, ["level"])["level"]
        m.d.sync += [data.eq(self.w_data), valid.eq(self.w_en), valid_for_level.eq(self.w_en)]
        storage = m.submodules.storage = Memory(shape=self.width, depth=self.depth, init=[])
        write_port = storage.write_port()
        read_port = storage.read_port(domain="comb")
        produce = Signal(range(self.depth))
        consume = Signal(range(self.depth))
        m.d.comb += [write_port.addr.eq(produce), write_port.data.eq(data),
                     write_port.en.eq(valid),
                     read_port.addr.eq(consume), self.r_data.eq(read_port.data),
                     self.r_rdy.eq(self.level != 0)]
        do_read = self.r_rdy & self.r_en
        for pointer, step in [(produce, valid), (consume, do_read)]:
            with m.If(step):
                m.d.sync += pointer.eq(Mux(pointer == self.depth - 1, 0, pointer + 1))
        m.d.sync += self.level.eq(self.level + valid_for_level - do_read)
        return m
