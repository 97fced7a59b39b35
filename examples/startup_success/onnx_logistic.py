"""A scaled logistic regression, fitted with NumPy and written as an ONNX model.

The demo trains this pack on Assay's base install, which has onnxruntime (to serve ONNX)
but none of the tools a project would usually train and export with (scikit-learn,
skl2onnx, onnx). A scaled logistic regression needs neither: it is fitted here by
Newton's method, and its ONNX graph is the one skl2onnx writes for such a pipeline, three
ONNX-ML operators (Scaler, LinearClassifier with a logistic transform, ZipMap) encoded
in ONNX's protobuf wire format directly. tests/engine/test_startup_pack.py checks the
file with onnx's own checker and its probabilities against the fitted model's.

With scikit-learn and skl2onnx installed, the same model is
``to_onnx(make_pipeline(StandardScaler(), LogisticRegression(C=c)), ...)``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]


class ScaledLogistic:
    """P(class 1 | x) = sigmoid(((x - mean) / scale) . weights + intercept)."""

    def __init__(self, mean: Matrix, scale: Matrix, weights: Matrix, intercept: float) -> None:
        self.mean, self.scale, self.weights, self.intercept = mean, scale, weights, intercept

    def predict_proba(self, x: Matrix) -> Matrix:
        return _sigmoid(((x - self.mean) / self.scale) @ self.weights + self.intercept)


def _sigmoid(z: Matrix) -> Matrix:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def fit_scaled_logistic(
    x: Matrix, y: Matrix, *, c: float = 0.5, max_iterations: int = 100
) -> ScaledLogistic:
    """Standardise the columns, then minimise the log loss plus ``|w|^2 / (2c)`` (the
    intercept is not penalised): what scikit-learn's ``LogisticRegression(C=c)`` fits."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays 0 after scaling, as in StandardScaler
    design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.full(design.shape[1], 1.0 / c)
    penalty[-1] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(max_iterations):
        p = _sigmoid(design @ beta)
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise RuntimeError("the logistic regression did not converge")
    return ScaledLogistic(mean, scale, beta[:-1], float(beta[-1]))


# Protocol buffers' wire format, as far as ONNX's ModelProto needs it.
_VARINT, _FIXED32, _LENGTH = 0, 5, 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _int(field: int, value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are encoded here")
    return _varint(field << 3 | _VARINT) + _varint(value)


def _float(field: int, value: float) -> bytes:
    return _varint(field << 3 | _FIXED32) + struct.pack("<f", value)


def _message(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | _LENGTH) + _varint(len(payload)) + payload


def _text(field: int, value: str) -> bytes:
    return _message(field, value.encode())


# onnx.proto's field numbers and enum values.
_ATTR_STRING, _ATTR_FLOATS, _ATTR_INTS = 3, 6, 7
_ELEM_FLOAT, _ELEM_INT64 = 1, 7
_ML_DOMAIN = "ai.onnx.ml"


def _floats_attribute(name: str, values: Iterable[float]) -> bytes:
    return _text(1, name) + b"".join(_float(7, v) for v in values) + _int(20, _ATTR_FLOATS)


def _ints_attribute(name: str, values: Iterable[int]) -> bytes:
    return _text(1, name) + b"".join(_int(8, v) for v in values) + _int(20, _ATTR_INTS)


def _string_attribute(name: str, value: str) -> bytes:
    return _text(1, name) + _text(4, value) + _int(20, _ATTR_STRING)


def _node(op: str, inputs: Sequence[str], outputs: Sequence[str], *attributes: bytes) -> bytes:
    return b"".join(
        [
            *(_text(1, name) for name in inputs),
            *(_text(2, name) for name in outputs),
            _text(3, op),
            _text(4, op),
            *(_message(5, attribute) for attribute in attributes),
            _text(7, _ML_DOMAIN),
        ]
    )


def _tensor_type(element: int, dims: Sequence[int | str] | None) -> bytes:
    tensor = _int(1, element)
    if dims is not None:
        shape = b"".join(
            _message(1, _text(2, d) if isinstance(d, str) else _int(1, d)) for d in dims
        )
        tensor += _message(2, shape)
    return _message(1, tensor)


def _value_info(name: str, type_proto: bytes) -> bytes:
    return _text(1, name) + _message(2, type_proto)


def to_onnx(model: ScaledLogistic, input_name: str = "features") -> bytes:
    """The model as ONNX bytes: one float input (rows, features); outputs ``output_label``
    (int64) and ``output_probability``, a ZipMap ``{0: p0, 1: p1}`` per row."""
    width = len(model.weights)
    weights = [float(w) for w in model.weights]
    nodes = [
        _node(
            "Scaler",
            [input_name],
            ["scaled"],
            _floats_attribute("offset", (float(m) for m in model.mean)),
            _floats_attribute("scale", (1.0 / float(s) for s in model.scale)),
        ),
        # Two rows of weights, one per class: the logistic transform then gives
        # [1 - p, p] per row, as skl2onnx writes a binary logistic regression.
        _node(
            "LinearClassifier",
            ["scaled"],
            ["output_label", "probability_tensor"],
            _ints_attribute("classlabels_ints", [0, 1]),
            _floats_attribute("coefficients", [-w for w in weights] + weights),
            _floats_attribute("intercepts", [-model.intercept, model.intercept]),
            _string_attribute("post_transform", "LOGISTIC"),
        ),
        _node(
            "ZipMap",
            ["probability_tensor"],
            ["output_probability"],
            _ints_attribute("classlabels_int64s", [0, 1]),
        ),
    ]
    # seq(map(int64, tensor(float))): TypeProto.sequence_type of TypeProto.map_type
    probability_map = _message(
        5, _int(1, _ELEM_INT64) + _message(2, _tensor_type(_ELEM_FLOAT, None))
    )
    probability_maps = _message(4, _message(1, probability_map))
    graph = b"".join(
        [
            *(_message(1, node) for node in nodes),
            _text(2, "scaled_logistic_regression"),
            _message(11, _value_info(input_name, _tensor_type(_ELEM_FLOAT, ["N", width]))),
            _message(12, _value_info("output_label", _tensor_type(_ELEM_INT64, ["N"]))),
            _message(12, _value_info("output_probability", probability_maps)),
        ]
    )
    return b"".join(
        [
            _int(1, 8),  # IR version 8: opset 17
            _text(2, "assay-example"),
            _message(7, graph),
            _message(8, _text(1, "") + _int(2, 17)),
            _message(8, _text(1, _ML_DOMAIN) + _int(2, 3)),
        ]
    )
