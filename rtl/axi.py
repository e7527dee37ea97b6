"""AXI4 and AXI4-Lite interface signatures with the AMBA member names.

Directions are the manager's (master's): a manager has ``Out(signature)``, a subordinate
``In(signature)``. With the AMBA names, an exported port ``s_axil`` becomes ``s_axil__awaddr``
and so on, which cocotbext-axi binds with ``from_prefix(dut, "s_axil", bus_separator="__")``.
"""

from amaranth import *
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .pipeline import skid_buffer

__all__ = ["Response", "Burst", "AXI4LiteSignature", "AXI4Signature", "connect_channels",
           "AxiReadArbiter"]


class Response(enum.Enum, shape=2):
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class Burst(enum.Enum, shape=2):
    FIXED = 0
    INCR = 1
    WRAP = 2


class AXI4LiteSignature(wiring.Signature):
    def __init__(self, *, addr_width, data_width=32):
        if data_width not in (32, 64):
            raise ValueError(f"AXI4-Lite data_width must be 32 or 64, not {data_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(Response), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(Response), "rvalid": In(1), "rready": Out(1),
        })


class AXI4Signature(wiring.Signature):
    """AXI4 (INCR bursts, no user signals). ``read`` / ``write`` select the channels, so an
    engine that only reads has just AR and R, with the same member names as the full bus."""

    def __init__(self, *, addr_width=32, data_width=64, id_width=1, read=True, write=True):
        if data_width not in (32, 64, 128, 256):
            raise ValueError(f"AXI4 data_width must be 32, 64, 128 or 256, not {data_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        address = {"id": id_width, "addr": addr_width, "len": 8, "size": 3, "burst": Burst,
                   "lock": 1, "cache": 4, "prot": 3}
        members = {}
        for channel, wanted in (("aw", write), ("ar", read)):
            if not wanted:
                continue
            for name, shape in address.items():
                members[f"{channel}{name}"] = Out(shape)
            members[f"{channel}valid"] = Out(1)
            members[f"{channel}ready"] = In(1)
        if write:
            members.update({
                "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
                "wvalid": Out(1), "wready": In(1),
                "bid": In(id_width), "bresp": In(Response), "bvalid": In(1), "bready": Out(1),
            })
        if read:
            members.update({
                "rid": In(id_width), "rdata": In(data_width), "rresp": In(Response),
                "rlast": In(1), "rvalid": In(1), "rready": Out(1),
            })
        super().__init__(members)


def connect_channels(m, manager, subordinate):
    """Connect an engine's manager port (a subset of AXI4's members) to the same-named
    members of ``subordinate``, the wider manager port of the component that contains it."""
    for name, member in manager.signature.members.items():
        if member.flow == Out:
            m.d.comb += getattr(subordinate, name).eq(getattr(manager, name))
        else:
            m.d.comb += getattr(manager, name).eq(getattr(subordinate, name))


class AxiReadArbiter(wiring.Component):
    """Several read managers, each with its own fixed ARID, sharing one AR/R port.

    AR goes through a registered stage with a skid register: the bus sees only flip-flops,
    and a manager's ``arready`` is its grant (a register, moved round-robin to the next
    requester) and the skid's emptiness, so neither the bus's ``arready`` nor the other
    managers' requests reach the managers' handshake logic. A request accepted here is held
    until the bus accepts it, as AXI requires; bursts leave in the order accepted, at one per
    cycle. R beats are routed back by RID, so responses of different managers may
    interleave.

    Members
    -------
    managers : In(AXI4Signature(read only)).array(len(ids))
    bus : Out(AXI4Signature(read only))
    """

    def __init__(self, *, ids, data_width, id_width):
        if len(set(ids)) != len(ids):
            raise ValueError(f"read managers need distinct ids, not {ids!r}")
        self._ids = tuple(ids)
        read_only = AXI4Signature(data_width=data_width, id_width=id_width, write=False)
        super().__init__({
            "managers": In(read_only).array(len(ids)),
            "bus": Out(read_only),
        })

    def elaborate(self, platform):
        m = Module()
        count = len(self._ids)
        address_members = [name for name in self.bus.signature.members
                           if name.startswith("ar") and name not in ("arvalid", "arready")]
        request_bits = sum(len(Value.cast(getattr(self.bus, name))) for name in address_members)

        def request_of(port):
            return Cat(*(Value.cast(getattr(port, name)) for name in address_members))

        grant = Signal(range(count))
        offered = Signal(request_bits)
        offered_valid = Signal()
        out = Signal(request_bits, reset_less=True)
        m.d.comb += request_of(self.bus).eq(out)
        ready, _ = skid_buffer(m, offered, offered_valid, out, self.bus.arvalid,
                               self.bus.arready, "ar")
        with m.Switch(grant):
            for index, manager in enumerate(self.managers):
                with m.Case(index):
                    m.d.comb += [offered.eq(request_of(manager)),
                                 offered_valid.eq(manager.arvalid),
                                 manager.arready.eq(ready)]
        taken = offered_valid & ready

        # Round-robin: after a request is taken, or while the granted manager has none, the
        # grant moves to the first requester after it, wrapping around (itself last).
        with m.If(taken | ~offered_valid):
            for offset in reversed(range(1, count + 1)):
                with m.Switch(grant):
                    for base in range(count):
                        with m.Case(base):
                            candidate = (base + offset) % count
                            with m.If(self.managers[candidate].arvalid):
                                m.d.sync += grant.eq(candidate)

        for manager, manager_id in zip(self.managers, self._ids):
            mine = self.bus.rid == manager_id
            m.d.comb += [
                manager.rid.eq(self.bus.rid),
                manager.rdata.eq(self.bus.rdata),
                manager.rresp.eq(self.bus.rresp),
                manager.rlast.eq(self.bus.rlast),
                manager.rvalid.eq(self.bus.rvalid & mine),
            ]
            with m.If(mine):
                m.d.comb += self.bus.rready.eq(manager.rready)
        return m
