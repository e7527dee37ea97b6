"""The digits CNN end to end: trained, quantized, run through the API; checked against the
float model (accuracy), onnxruntime (within 1 LSB) and across backends (bit-exact)."""

import numpy as np
import pytest

from sim.build import available_simulators
from sw_runtime import Npu
from sw_runtime.models import digits


@pytest.fixture(scope="module")
def trained():
    data = digits.load_data()
    params = digits.trained_params(data, log=None)
    return data, params, digits.quantize(params, data.train_x)


def test_int8_on_the_model_matches_onnxruntime_and_keeps_the_accuracy(trained):
    data, params, model = trained
    with Npu.open("model") as npu:
        logits = digits.run_on_npu(npu, model, data.test_x)
    reference = digits.run_onnxruntime(model, data.test_x)
    difference = np.abs(logits.astype(np.int32) - reference.astype(np.int32))
    assert difference.max() <= 1
    float_accuracy = digits.accuracy(digits.forward(params, data.test_x), data.test_y)
    int8_accuracy = digits.accuracy(logits, data.test_y)
    print(f"digits: float {float_accuracy:.1%}, int8 on the NPU model {int8_accuracy:.1%}")
    assert float_accuracy > 0.95
    assert int8_accuracy >= float_accuracy - 0.02


@pytest.mark.skipif("verilator" not in available_simulators(), reason="needs Verilator")
def test_verilator_is_bit_exact_with_the_model(trained):
    data, _, model = trained
    images = data.test_x[:24]
    with Npu.open("verilator", n=8) as rtl, Npu.open("model", n=8) as npu_model:
        layers = {}
        rtl_logits = digits.run_on_npu(rtl, model, images,
                                       lambda name, stats: layers.setdefault(name, stats))
        np.testing.assert_array_equal(rtl_logits, digits.run_on_npu(npu_model, model, images))
    for name, stats in layers.items():
        print(f"verilator {name}: {stats}")
