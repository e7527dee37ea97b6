"""Reference results of ONNX's QLinear operators from ONNX's own reference evaluator, for the
runtime's tests.

Not onnxruntime: on x86 CPUs without AVX-512 VNNI its uint8 x int8 kernel sums pairs of
products in saturating int16 (vpmaddubsw), so its QLinearMatMul / QLinearConv results depend
on the machine (up to 20 LSB off here; onnxruntime issues #16105, #19109). The evaluator
computes the operators' definition in numpy: an integer matmul or convolution, a float scale,
round half to even and a saturating cast.
"""

import numpy as np

from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSET = 13


def _run_single_node(op_type, inputs, attributes, output_dtype):
    """Run one ONNX node whose inputs are all constants (initializers)."""
    while inputs[-1] is None:  # omitted trailing optional inputs
        inputs = inputs[:-1]
    names = [f"in{i}" if value is not None else "" for i, value in enumerate(inputs)]
    initializers = [numpy_helper.from_array(np.asarray(value), name)
                    for name, value in zip(names, inputs) if value is not None]
    node = helper.make_node(op_type, names, ["y"], **attributes)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(output_dtype))
    graph = helper.make_graph([node], "reference", [], [helper.make_tensor_value_info(
        "y", elem, None)], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return ReferenceEvaluator(model).run(None, {})[0]


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    return _run_single_node("QLinearMatMul", [a, f32(a_scale), a_zero_point, b, f32(b_scale),
                                              b_zero_point, f32(y_scale), y_zero_point], {},
                            np.asarray(y_zero_point).dtype)


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                 bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1):
    f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
    attributes = dict(strides=list(strides), pads=list(pads), dilations=list(dilations),
                      group=group)
    return _run_single_node("QLinearConv", [x, f32(x_scale), x_zero_point, w, f32(w_scale),
                                            w_zero_point, f32(y_scale), y_zero_point, bias],
                            attributes, np.asarray(y_zero_point).dtype)


__all__ = ["qlinear_matmul", "qlinear_conv", "TensorProto"]
