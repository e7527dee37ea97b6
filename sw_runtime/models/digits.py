"""The digits CNN: trained here on scikit-learn's bundled 8x8 digits (no download), quantized
to int8 and run on the NPU through the public API.

Network (NCHW, input 1 x 8 x 8, pixel values 0..16):

    conv1  3x3, 1 -> 8, pad 1, ReLU               -> 8 x 8 x 8
    conv2  3x3, 8 -> 16, stride 2, pad 1, ReLU    -> 16 x 4 x 4
    fc     a 4x4 convolution, 16 -> 10            -> 10 logits

Training: numpy, Adam on cross entropy, fixed seeds, a few seconds; the weights are cached in
``build/models/digits.npz``.

Quantization (our own post-training static quantization, in onnxruntime's QOperator form):
weights int8, symmetric, one scale per output channel (zero point 0); activations int8,
asymmetric, one scale per tensor from the min/max over the training set -- after a ReLU the
min is 0, so the zero point is -128 and int8 saturation *is* the ReLU; biases int32 with scale
``input_scale * weight_scale``. ``onnx_model`` writes the same network as an ONNX graph
(QuantizeLinear, three QLinearConv) for onnxruntime to check against.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import im2col

__all__ = ["DigitsData", "load_data", "train", "quantize", "QuantizedDigits", "run_on_npu",
           "onnx_model", "demo", "LAYERS"]

CACHE = Path(__file__).resolve().parents[2] / "build" / "models" / "digits.npz"
# name, (out channels, in channels, kernel), stride, pad, ReLU
LAYERS = [("conv1", (8, 1, 3), 1, 1, True), ("conv2", (16, 8, 3), 2, 1, True),
          ("fc", (10, 16, 4), 1, 0, False)]
PIXEL_MAX = 16.0
INPUT_SCALE = 0.125  # int8 step per pixel level
SEED = 7


@dataclass
class DigitsData:
    train_x: np.ndarray  # float32 (B, 1, 8, 8)
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_data():
    """scikit-learn's digits, split 75/25 with a fixed seed (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]
    train_x, test_x, train_y, test_y = train_test_split(
        x, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target)
    return DigitsData(train_x, train_y, test_x, test_y)


# -- float network --------------------------------------------------------------------------------

def _conv(x, w, b, stride, pad):
    out_channels, _, kernel, _ = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[2] + 2 * pad - kernel) // stride + 1
    out_w = (x.shape[3] + 2 * pad - kernel) // stride + 1
    cols = im2col(padded, kernel, kernel, (stride, stride), (1, 1), out_h, out_w)
    out = cols @ w.reshape(out_channels, -1).T + b
    return out.reshape(x.shape[0], out_h, out_w, out_channels).transpose(0, 3, 1, 2), cols


def _conv_backward(grad, cols, x_shape, w, stride, pad):
    batch, out_channels, out_h, out_w = grad.shape
    flat = grad.transpose(0, 2, 3, 1).reshape(-1, out_channels)
    grad_w = (flat.T @ cols).reshape(w.shape)
    grad_b = flat.sum(axis=0)
    grad_cols = (flat @ w.reshape(out_channels, -1)).reshape(
        batch, out_h, out_w, x_shape[1], w.shape[2], w.shape[3])
    padded = np.zeros((batch, x_shape[1], x_shape[2] + 2 * pad, x_shape[3] + 2 * pad),
                      grad.dtype)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            padded[:, :, i:i + stride * (out_h - 1) + 1:stride,
                   j:j + stride * (out_w - 1) + 1:stride] += grad_cols[..., i, j].transpose(
                       0, 3, 1, 2)
    return padded[:, :, pad:pad + x_shape[2], pad:pad + x_shape[3]], grad_w, grad_b


def forward(params, x, keep=False):
    """Float logits (B, 10); with ``keep`` also every layer's input and patches."""
    saved = []
    h = x / PIXEL_MAX
    for name, _, stride, pad, relu in LAYERS:
        out, cols = _conv(h, params[name + ".w"], params[name + ".b"], stride, pad)
        saved.append((h, cols, out))
        h = np.maximum(out, 0) if relu else out
    logits = h.reshape(h.shape[0], -1)
    return (logits, saved) if keep else logits


def train(data, epochs=40, batch=64, learning_rate=3e-3, log=print):
    rng = np.random.default_rng(SEED)
    params = {}
    for name, (out_channels, in_channels, kernel), _, _, _ in LAYERS:
        fan_in = in_channels * kernel * kernel
        params[name + ".w"] = (rng.standard_normal((out_channels, in_channels, kernel, kernel))
                               * np.sqrt(2.0 / fan_in)).astype(np.float32)
        params[name + ".b"] = np.zeros(out_channels, np.float32)
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(data.train_x))
        for first in range(0, len(order), batch):
            index = order[first:first + batch]
            logits, saved = forward(params, data.train_x[index], keep=True)
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            grad = probabilities
            grad[np.arange(len(index)), data.train_y[index]] -= 1
            grad = (grad / len(index)).reshape(len(index), -1, 1, 1).astype(np.float32)
            for (name, _, stride, pad, relu), (h, cols, out) in zip(reversed(LAYERS),
                                                                    reversed(saved)):
                if relu:
                    grad = grad * (out > 0)
                grad, grad_w, grad_b = _conv_backward(grad, cols, h.shape, params[name + ".w"],
                                                      stride, pad)
                step += 1
                for key, g in ((name + ".w", grad_w), (name + ".b", grad_b)):
                    m, v = moments[key]
                    m[...] = 0.9 * m + 0.1 * g
                    v[...] = 0.999 * v + 0.001 * g * g
                    t = step / len(LAYERS)
                    params[key] -= (learning_rate * (m / (1 - 0.9 ** t)) /
                                    (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)).astype(np.float32)
        if log and (epoch + 1) % 10 == 0:
            test_accuracy = accuracy(forward(params, data.test_x), data.test_y)
            log(f"  epoch {epoch + 1}: test accuracy {test_accuracy:.1%}")
    return params


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def trained_params(data=None, log=print):
    """The trained float weights, from the cache or trained now."""
    if CACHE.exists():
        with np.load(CACHE) as stored:
            return {key: stored[key] for key in stored.files}
    data = data or load_data()
    if log:
        log("training the digits CNN (numpy, once; cached in build/models/) ...")
    params = train(data, log=log)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, **params)
    return params


# -- quantization ---------------------------------------------------------------------------------

@dataclass
class QuantLayer:
    name: str
    weight: np.ndarray     # int8 OIHW
    weight_scale: np.ndarray  # per output channel
    bias: np.ndarray       # int32
    input_scale: float
    input_zero_point: np.int8
    output_scale: float
    output_zero_point: np.int8
    stride: int
    pad: int


@dataclass
class QuantizedDigits:
    input_scale: float
    input_zero_point: np.int8
    layers: list

    def quantize_input(self, images):
        """Float pixel values (B, 1, 8, 8) to int8, as ONNX QuantizeLinear does."""
        q = np.round(images / INPUT_SCALE) + int(self.input_zero_point)
        return np.clip(q, -128, 127).astype(np.int8)


def _activation_quant(low, high):
    low, high = min(low, 0.0), max(high, 0.0)  # zero must be exact
    scale = (high - low) / 255.0 or 1.0
    zero_point = int(np.clip(np.round(-128 - low / scale), -128, 127))
    return float(scale), np.int8(zero_point)


def quantize(params, calibration_images):
    """Post-training static quantization (see the module docstring)."""
    _, saved = forward(params, calibration_images, keep=True)
    # Pixels are 0..16: a scale of 1/8 per pixel level (1/128 of the normalised input) and
    # zero point -128 quantize them exactly, so no rounding tie can split NPU and onnxruntime.
    input_scale, input_zero = INPUT_SCALE / PIXEL_MAX, np.int8(-128)
    layers = []
    scale, zero = input_scale, input_zero
    for (name, _, stride, pad, relu), (_, _, out) in zip(LAYERS, saved):
        w = params[name + ".w"]
        w_scale = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1), 1e-8) / 127.0
        w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
        bias = np.round(params[name + ".b"] / (scale * w_scale)).astype(np.int32)
        activation = np.maximum(out, 0) if relu else out
        out_scale, out_zero = _activation_quant(float(activation.min()),
                                                float(activation.max()))
        layers.append(QuantLayer(name, w_q, w_scale.astype(np.float32), bias, scale, zero,
                                 out_scale, out_zero, stride, pad))
        scale, zero = out_scale, out_zero
    return QuantizedDigits(input_scale, input_zero, layers)


def run_on_npu(npu, model, images, on_layer=None):
    """int8 logits (B, 10) of ``images`` on the NPU; ``on_layer(name, stats)`` per layer."""
    h = model.quantize_input(images)
    for layer in model.layers:
        h = npu.qlinear_conv(h, layer.input_scale, layer.input_zero_point, layer.weight,
                             layer.weight_scale, np.zeros(len(layer.weight_scale), np.int8),
                             layer.output_scale, layer.output_zero_point, layer.bias,
                             strides=(layer.stride, layer.stride), pads=(layer.pad,) * 4)
        if on_layer:
            on_layer(layer.name, npu.last_run)
    return h.reshape(h.shape[0], -1)


def onnx_model(model):
    """The quantized network as an ONNX graph: float images in, int8 logits out."""
    from onnx import TensorProto, helper, numpy_helper

    initializers, nodes = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    nodes.append(helper.make_node("QuantizeLinear", [
        "x", constant("x_scale", np.float32(INPUT_SCALE)),
        constant("x_zero", model.input_zero_point)], ["q0"]))
    previous = "q0"
    for i, layer in enumerate(model.layers):
        inputs = [previous, constant(f"{layer.name}.x_scale", np.float32(layer.input_scale)),
                  constant(f"{layer.name}.x_zero", layer.input_zero_point),
                  constant(f"{layer.name}.w", layer.weight),
                  constant(f"{layer.name}.w_scale", layer.weight_scale),
                  constant(f"{layer.name}.w_zero", np.zeros(len(layer.weight_scale), np.int8)),
                  constant(f"{layer.name}.y_scale", np.float32(layer.output_scale)),
                  constant(f"{layer.name}.y_zero", layer.output_zero_point),
                  constant(f"{layer.name}.bias", layer.bias)]
        nodes.append(helper.make_node("QLinearConv", inputs, [f"q{i + 1}"],
                                      strides=[layer.stride] * 2, pads=[layer.pad] * 4))
        previous = f"q{i + 1}"
    nodes.append(helper.make_node("Flatten", [previous], ["logits"]))
    graph = helper.make_graph(
        nodes, "digits_int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.INT8, ["batch", 10])],
        initializer=initializers)
    onnx_graph = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx_graph.ir_version = 8
    return onnx_graph


def run_onnxruntime(model, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model(model).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": images.astype(np.float32)})[0]


# -- the demo -------------------------------------------------------------------------------------

def _progress(done, total, started, width=30):
    filled = int(width * done / total)
    rate = done / max(time.monotonic() - started, 1e-9)
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} images "
          f"({rate:.0f}/s)", end="" if done < total else "\n", flush=True)


def demo(backend="model", *, n=None, limit=None, batch=50, log=print):
    """Train (once), quantize, run the test split on the NPU; print and return the figures."""
    from ..npu import Npu

    data = load_data()
    params = trained_params(data, log=log)
    model = quantize(params, data.train_x)
    images, labels = data.test_x[:limit], data.test_y[:limit]
    float_accuracy = accuracy(forward(params, images), labels)
    log(f"digits: {len(images)} held-out images; float model accuracy {float_accuracy:.1%}")
    per_layer = {}

    def on_layer(name, stats):
        per_layer.setdefault(name, []).append(stats)

    started = time.monotonic()
    with Npu.open(backend, n=n) as npu:
        log(f"running on {npu.backend} (N={npu.hw.n}) in batches of {batch}:")
        opened = time.monotonic()
        outputs = []
        for first in range(0, len(images), batch):
            outputs.append(run_on_npu(npu, model, images[first:first + batch], on_layer))
            _progress(min(first + batch, len(images)), len(images), opened)
        logits = np.concatenate(outputs)
    wall = time.monotonic() - started
    reference = run_onnxruntime(model, images)
    difference = int(np.abs(logits.astype(np.int32) - reference.astype(np.int32)).max())
    npu_accuracy = accuracy(logits, labels)
    cycles = sum(s.cycles for runs in per_layer.values() for s in runs)
    log(f"int8 accuracy on the NPU {npu_accuracy:.1%} (float {float_accuracy:.1%}); "
        f"onnxruntime {accuracy(reference, labels):.1%}, largest logit difference "
        f"{difference} LSB")
    for name, runs in per_layer.items():
        active = sum(s.array_active for s in runs)
        total = sum(s.cycles for s in runs)
        log(f"  {name:6s} {total:9d} cycles, array active {active / total:.1%}")
    log(f"{cycles} device cycles in {wall:.1f} s wall ({cycles / wall:,.0f} cycles/s)")
    return {"float_accuracy": float_accuracy, "npu_accuracy": npu_accuracy,
            "onnxruntime_accuracy": accuracy(reference, labels), "max_logit_difference":
            difference, "cycles": cycles, "wall_seconds": wall,
            "layers": {name: {"cycles": sum(s.cycles for s in runs),
                              "utilization": sum(s.array_active for s in runs) /
                              sum(s.cycles for s in runs)} for name, runs in per_layer.items()},
            "logits": logits}
