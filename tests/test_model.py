"""The instruction-level model: exact results, hardware faults, races and deadlocks.

Programs here are written by hand with the assembler, so every check the model makes
(tokens, queues, ranges) is exercised with a program that breaks exactly that rule.
"""

import numpy as np
import pytest

from rtl.config import NpuConfig
from rtl.isa import QuantParams
from sw_runtime.assembler import compute, finish, load, store
from sw_runtime.device import run_program
from sw_runtime.errors import DeadlockError, DeviceError, RaceError
from sw_runtime.golden import matmul_int8, requantize
from sw_runtime.model import ModelDevice, check_program

N = 4
PROGRAM = 0x8000
A, W, C, QUANT = 0x1000, 0x2000, 0x3000, 0x4000


def tile_program(m, *, raw=True, deps=True):
    """C = A (m x N) @ W (N x N): LOAD W and A, COMPUTE, STORE, ordered by tokens if ``deps``."""
    token = (lambda *flags: set(flags)) if deps else (lambda *flags: set())
    out_row = 4 * N if raw else N
    program = [load(target="SCRATCHPAD", sram_addr=0, dram_addr=W, bytes_per_row=N * N, rows=1)]
    if not raw:
        program.append(load(target="QUANT", sram_addr=0, dram_addr=QUANT, bytes_per_row=8 * N,
                            rows=1))
    program += [
        load(target="SCRATCHPAD", sram_addr=N, dram_addr=A, bytes_per_row=N, rows=m, stride=N,
             deps=token("push_next")),
        compute(weight_addr=0, act_addr=N, rows=m, acc_addr=0, deps=token("pop_prev",
                                                                          "push_next")),
        store(mode="RAW" if raw else "REQUANT", acc_addr=0, dram_addr=C, bytes_per_row=out_row,
              rows=m, stride=out_row, deps=token("pop_prev")),
        finish(),
    ]
    return program


def place(device, rng, m):
    a = rng.integers(-128, 128, (m, N), dtype=np.int8)
    w = rng.integers(-128, 128, (N, N), dtype=np.int8)
    device.write_dram(A, a)
    device.write_dram(W, w)
    return a, w


def test_runs_a_tile_exactly(rng):
    device = ModelDevice(n=N)
    a, w = place(device, rng, 6)
    stats = run_program(device, tile_program(6), PROGRAM)
    c = device.read_dram(C, 6 * 4 * N).view("<i4").reshape(6, N)
    np.testing.assert_array_equal(c, matmul_int8(a, w))
    assert stats.bytes_read == 6 * N + N * N and stats.bytes_written == 6 * 4 * N
    assert stats.array_active == 6 and stats.cycles > 6


def test_requantizes_with_each_lanes_parameters(rng):
    device = ModelDevice(n=N)
    a, w = place(device, rng, 5)
    params = [dict(multiplier=int(rng.integers(2 ** 29, 2 ** 31)), shift=int(rng.integers(0, 9)),
                   zero_point=int(rng.integers(-9, 9)), qmin=-100 + lane, qmax=90 + lane)
              for lane in range(N)]
    device.write_dram(QUANT, b"".join(QuantParams.const(p).as_bits().to_bytes(8, "little")
                                      for p in params))
    run_program(device, tile_program(5, raw=False), PROGRAM)
    c = device.read_dram(C, 5 * N).view(np.int8).reshape(5, N)
    acc = matmul_int8(a, w)
    for lane, p in enumerate(params):
        expected = requantize(acc[:, lane:lane + 1], p["multiplier"], p["shift"],
                              p["zero_point"], p["qmin"], p["qmax"])[:, 0]
        np.testing.assert_array_equal(c[:, lane], expected)


def test_compute_without_its_token_races_with_the_load():
    program = tile_program(4)
    program[2] = compute(weight_addr=0, act_addr=N, rows=4, acc_addr=0, deps={"push_next"})
    with pytest.raises(RaceError, match=r"instruction 2 \(compute\) reads scratchpad"):
        check_program(program, NpuConfig(n=N))


def test_store_without_its_token_races_with_the_compute():
    program = tile_program(4)
    program[3] = store(mode="RAW", acc_addr=0, dram_addr=C, bytes_per_row=4 * N, rows=4,
                       stride=4 * N)
    with pytest.raises(RaceError, match="reads accumulator rows"):
        check_program(program, NpuConfig(n=N))


def test_reloading_a_buffer_still_being_read_is_a_race():
    program = tile_program(4)[:-1]
    # A second LOAD into the activation rows, without waiting for COMPUTE's push_prev.
    program.append(load(target="SCRATCHPAD", sram_addr=N, dram_addr=A, bytes_per_row=N, rows=4,
                        stride=N))
    with pytest.raises(RaceError, match=r"scratchpad rows \[4, 8\)"):
        check_program(program, NpuConfig(n=N))
    # With the token, it is fine.
    program[2] = compute(weight_addr=0, act_addr=N, rows=4, acc_addr=0,
                         deps={"pop_prev", "push_next", "push_prev"})
    program[-1] = load(target="SCRATCHPAD", sram_addr=N, dram_addr=A, bytes_per_row=N, rows=4,
                       stride=N, deps={"pop_next"})
    check_program(program, NpuConfig(n=N))


def test_loading_what_the_same_program_stores_is_a_race():
    program = tile_program(4)[:-1]
    program.append(load(target="SCRATCHPAD", sram_addr=64, dram_addr=C + 8, bytes_per_row=N,
                        rows=1))
    with pytest.raises(RaceError, match="same DRAM bytes"):
        check_program(program, NpuConfig(n=N))


def test_a_pop_nobody_pushes_deadlocks():
    program = [compute(weight_addr=0, act_addr=0, rows=1, acc_addr=0, deps={"pop_prev"}),
               finish()]
    with pytest.raises(DeadlockError, match="LOAD_TO_COMPUTE"):
        check_program(program, NpuConfig(n=N))


@pytest.mark.parametrize("waiting", [8, 9])
def test_full_queues_block_dispatch(waiting):
    """COMPUTEs waiting for LOADs behind them: fine while they fit the queue, a hang after."""
    config = NpuConfig(n=N, instruction_queue_depth=8)
    program = [compute(weight_addr=0, act_addr=0, rows=1, acc_addr=0, deps={"pop_prev"})
               for _ in range(waiting)]
    program += [load(target="SCRATCHPAD", sram_addr=0, dram_addr=A, bytes_per_row=N, rows=1,
                     deps={"push_next"}) for _ in range(waiting)]
    if waiting <= config.instruction_queue_depth:
        with pytest.raises(RaceError):  # it runs, but COMPUTE reads what the LOADs write
            check_program(program, config)
    else:
        with pytest.raises(DeadlockError, match="dispatch is stuck at instruction 8"):
            check_program(program, config)


@pytest.mark.parametrize("code, index, program", [
    ("SRAM_RANGE", 0, [compute(weight_addr=2046, act_addr=0, rows=1, acc_addr=0)]),
    ("SRAM_RANGE", 0, [compute(weight_addr=0, act_addr=0, rows=2, acc_addr=1023)]),
    ("BAD_TRANSFER", 1, [load(target="SCRATCHPAD", sram_addr=0, dram_addr=A, bytes_per_row=N,
                              rows=1), load(target="SCRATCHPAD", sram_addr=0, dram_addr=A,
                                            bytes_per_row=N, rows=0)]),
    ("BAD_TRANSFER", 0, [load(target="SCRATCHPAD", sram_addr=0, dram_addr=A,
                              bytes_per_row=N + 1, rows=1)]),
    ("SRAM_RANGE", 0, [load(target="QUANT", sram_addr=63, dram_addr=A, bytes_per_row=16 * N,
                            rows=1)]),
    ("AXI_READ_ERROR", 0, [load(target="SCRATCHPAD", sram_addr=0, dram_addr=(1 << 20) - 2,
                                bytes_per_row=N, rows=1)]),
    ("BAD_TRANSFER", 0, [store(mode="RAW", acc_addr=0, dram_addr=0xFFFF_FFF0, bytes_per_row=16,
                               rows=2, stride=16)]),
    ("SRAM_RANGE", 0, [store(mode="REQUANT", quant_addr=64, acc_addr=0, dram_addr=C,
                             bytes_per_row=N, rows=1)]),
])
def test_faults_report_their_code_and_index_and_the_device_recovers(code, index, program, rng):
    device = ModelDevice(n=N, dram_size=1 << 20)
    with pytest.raises(DeviceError) as raised:
        run_program(device, program + [finish()], PROGRAM)
    assert (raised.value.code, raised.value.index) == (code, index)
    a, w = place(device, rng, 3)
    run_program(device, tile_program(3), PROGRAM)
    np.testing.assert_array_equal(device.read_dram(C, 3 * 4 * N).view("<i4").reshape(3, N),
                                  matmul_int8(a, w))


def test_an_illegal_word_faults_at_its_index():
    device = ModelDevice(n=N)
    program = tile_program(2)
    run_program(device, program, PROGRAM)  # the words, then corrupt the third one
    device.write_dram(PROGRAM + 2 * 16 + 15, b"\x80")  # a reserved bit of the COMPUTE
    device.registers.write("CTRL", start=1)
    assert device.registers.read("STATUS")["error"]
    assert device.registers.read_field("ERROR_CODE", "code") == "ILLEGAL_INSTRUCTION"
    assert device.registers.read_field("ERROR_INDEX", "index") == 2


def test_config_registers_describe_the_model():
    device = ModelDevice(NpuConfig(n=12, scratchpad_depth=1024))
    hw = device.hardware_config()
    assert (hw.n, hw.scratchpad_rows, hw.accumulator_rows) == (12, 1024, 1024)
