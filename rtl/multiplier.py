"""A multiplier with its operands registered, then its product registered: the PE's int8 x
int8, the requantizer's 16 x 16 partial products and STORE's byte count.

``MULTIPLY_LATENCY`` cycles from the operands to the product on every target, so the
design's timing in cycles does not depend on where it is built:

- on an ECP5 (``platform.family == "ecp5"``) a MULT18X18D with its own input and output
  registers, so the routes into and out of the DSP column each get a whole cycle and the
  multiply itself happens between the DSP's registers;
- elsewhere (Verilator, Icarus, Amaranth's simulator, iCE40) the same registers around
  ``*`` in the fabric;
- in LUTs (``lut``): the partial products summed in two halves, registered, then added.
"""

from amaranth import *

__all__ = ["registered_multiply", "lut_partial_products", "MULTIPLY_LATENCY"]

MULTIPLY_LATENCY = 2
MULT18X18_WIDTH = 18


def lut_partial_products(a, b):
    """``(low, high)`` with ``low + high == a * b`` for signed ``a`` and ``b``, from shifted
    partial products with no multiply operator, so synthesis makes LUTs and carry chains
    instead of a DSP block. ``low`` sums the partial products of ``a``'s lower half of bits,
    ``high`` those of its upper half (the sign bit weighs ``-2 ** top``)."""
    top = len(a) - 1
    terms = [Mux(a[i], b, 0) << i for i in range(top)] + [-(Mux(a[top], b, 0) << top)]
    half = (top + 1) // 2
    return sum(terms[1:half], terms[0]), sum(terms[half + 1:], terms[half])


def _extended(value, width):
    """``value`` widened to ``width`` bits as the 18-bit signed operand of a MULT18X18D."""
    value = Value.cast(value)
    if not value.shape().signed:
        if len(value) >= width:
            raise ValueError(f"an unsigned operand must be narrower than {width} bits to pass "
                             f"as signed, not {len(value)} bits")
        return Cat(value, C(0, width - len(value)))
    if len(value) > width:
        raise ValueError(f"a signed operand must be at most {width} bits, not {len(value)}")
    return Cat(value, value[-1].replicate(width - len(value)))


def _ecp5_mult18x18d(a, b, product):
    """A MULT18X18D with its A, B and output registers on CLK0 of the ``sync`` domain."""
    full_product = Signal(2 * MULT18X18_WIDTH)
    a_bits = _extended(a, MULT18X18_WIDTH)
    b_bits = _extended(b, MULT18X18_WIDTH)
    ports = {}
    for i in range(MULT18X18_WIDTH):
        ports[f"i_A{i}"] = a_bits[i]
        ports[f"i_B{i}"] = b_bits[i]
        ports[f"i_C{i}"] = C(0, 1)
    for i in range(2 * MULT18X18_WIDTH):
        ports[f"o_P{i}"] = full_product[i]
    # The other registers (C input, pipeline) stay off; every register's CE and RST
    # default to CE0 and RST0.
    registers = {f"p_REG_{stage}_CLK": "CLK0" for stage in ("INPUTA", "INPUTB", "OUTPUT")}
    dsp = Instance(
        "MULT18X18D",
        **registers,
        p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_INPUT",
        p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE", p_HIGHSPEED_CLK="NONE",
        i_SIGNEDA=C(1, 1), i_SIGNEDB=C(1, 1), i_SOURCEA=C(0, 1), i_SOURCEB=C(0, 1),
        i_CLK0=ClockSignal("sync"), i_CE0=C(1, 1), i_RST0=C(0, 1),
        **ports)
    return dsp, product.eq(full_product[:len(product)])


def registered_multiply(m, platform, a, b, product, *, lut=False, name="multiplier"):
    """``product`` takes ``a * b`` of ``MULTIPLY_LATENCY`` cycles earlier. ``a`` and ``b``:
    signed of at most 18 bits or unsigned of at most 17 (one MULT18X18D on an ECP5);
    ``product`` wide enough for the exact result, at most 36 bits."""
    if lut:
        low, high = lut_partial_products(a, b)
        low_sum = Signal(product.shape(), name=f"{name}_low", reset_less=True)
        high_sum = Signal(product.shape(), name=f"{name}_high", reset_less=True)
        m.d.sync += [low_sum.eq(low), high_sum.eq(high), product.eq(low_sum + high_sum)]
    elif getattr(platform, "family", None) == "ecp5":
        dsp, connect = _ecp5_mult18x18d(a, b, product)
        m.submodules[name] = dsp
        m.d.comb += connect
    else:
        a_operand = Signal(Value.cast(a).shape(), name=f"{name}_a", reset_less=True)
        b_operand = Signal(Value.cast(b).shape(), name=f"{name}_b", reset_less=True)
        m.d.sync += [a_operand.eq(a), b_operand.eq(b), product.eq(a_operand * b_operand)]
