"""ONNX models through onnxruntime (CPU), loaded from bytes.

The graph must have one 2-D float or double input. The score is read from the output
named in `OutputSpec.name` (default: the output whose name mentions "prob", else the
only one), either a probability tensor (a column is picked, see `positive_column`) or
scikit-learn-onnx's ZipMap output (a list of ``{class: probability}``; the key is
`class_label`, else the `class_index`-th key in sorted order, else the second of two).

ONNX graphs carry no attribution, so predictions from this runtime have no feature
contributions; the explanation says so. Models that reference external data files are
refused by onnxruntime when loaded from bytes, so an artifact cannot read other files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assay.engine.errors import InvalidArtifact
from assay.engine.formats import ArtifactFormat
from assay.engine.runtimes.base import (
    FloatMatrix,
    LoadPolicy,
    OutputSpec,
    RuntimeEntry,
    RuntimeInfo,
    RuntimeOutput,
    positive_column,
)

NO_CONTRIBUTIONS = (
    "ONNX graphs do not expose per-feature contributions; use a LightGBM, XGBoost or "
    "linear model when attributions are needed."
)
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class OnnxRuntime:
    """A loaded ONNX model. `InferenceSession.run` is safe to call from several threads."""

    def __init__(self, data: bytes, output: OutputSpec, threads: int = 1) -> None:
        # Imported with the first ONNX model, so a start without one does not pay for it.
        import onnxruntime as ort  # noqa: PLC0415 - see the comment above

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base but Exception
            raise InvalidArtifact(f"The ONNX model could not be loaded: {_short(exc)}") from None
        self._session = session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise InvalidArtifact("The ONNX model must have exactly one input tensor.")
        model_input = inputs[0]
        dtype = _INPUT_TYPES.get(model_input.type)
        shape = list(model_input.shape or [])
        if dtype is None or len(shape) != 2:
            raise InvalidArtifact("The ONNX model's input must be a 2-D float or double tensor.")
        self._input_name: str = model_input.name
        self._dtype = dtype
        width = shape[1]
        self._info = RuntimeInfo(
            format=ArtifactFormat.ONNX,
            n_features=width if isinstance(width, int) else None,
            contributions_note=NO_CONTRIBUTIONS,
        )
        chosen = self._choose_output(session.get_outputs(), output)
        self._output_name: str = chosen.name
        self._zipmap = str(chosen.type).startswith("seq(map(")
        self._output = output
        self._zipmap_key: Any = output.class_label

    @staticmethod
    def _choose_output(outputs: list[Any], spec: OutputSpec) -> Any:
        if spec.name is not None:
            for candidate in outputs:
                if candidate.name == spec.name:
                    return candidate
            names = ", ".join(o.name for o in outputs)
            raise InvalidArtifact(f"The ONNX model has no output {spec.name!r} (it has {names}).")
        probable = [o for o in outputs if "prob" in o.name.lower()]
        if len(probable) == 1:
            return probable[0]
        if len(outputs) == 1:
            return outputs[0]
        names = ", ".join(o.name for o in outputs)
        raise InvalidArtifact(f"Say which ONNX output is the score (output.name): {names}.")

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        feed = {self._input_name: batch.astype(self._dtype, copy=False)}
        (result,) = self._session.run([self._output_name], feed)
        if self._zipmap:
            scores = self._from_zipmap(result)
        else:
            array = np.asarray(result, dtype=np.float64)
            if array.ndim == 2:
                array = array[:, positive_column(array.shape[1], self._output)]
            scores = array.reshape(len(batch))
        return RuntimeOutput(scores)

    def _from_zipmap(self, rows: list[dict[Any, float]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        if not rows:
            return np.empty(0, dtype=np.float64)
        key = self._zipmap_key
        if key is None:
            classes = tuple(sorted(rows[0]))
            key = classes[positive_column(len(classes), self._output)]
        elif key not in rows[0]:
            # Labels in YAML are often strings while ZipMap keys are int64, or vice versa.
            matches = [k for k in rows[0] if str(k) == str(key)]
            if not matches:
                raise ValueError(f"class_label {key!r} is not one of the ONNX model's classes")
            key = matches[0]
        return np.fromiter((row[key] for row in rows), dtype=np.float64, count=len(rows))


def load_onnx(
    data: bytes, fmt: ArtifactFormat, output: OutputSpec, policy: LoadPolicy
) -> OnnxRuntime:
    return OnnxRuntime(data, output, policy.threads)


RUNTIME = RuntimeEntry(
    name="ONNX Runtime",
    formats=(ArtifactFormat.ONNX,),
    distributions=("onnxruntime",),
    load=load_onnx,
    modules=("onnxruntime",),
)
