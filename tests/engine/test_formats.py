"""Format sniffing: declared formats must match the bytes; archives are refused."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from assay.engine.errors import InvalidArtifact
from assay.engine.formats import ArtifactFormat, check_artifact_format, detect_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lightgbm", ArtifactFormat.LIGHTGBM),
        ("xgboost-json", ArtifactFormat.XGBOOST_JSON),
        ("xgboost-ubj", ArtifactFormat.XGBOOST_UBJ),
        ("onnx", ArtifactFormat.ONNX),
        ("onnx-tensor", ArtifactFormat.ONNX),
        ("skops", ArtifactFormat.SKOPS),
        ("pickle", ArtifactFormat.PICKLE),
    ],
)
def test_each_format_is_recognised(
    artifacts: dict[str, bytes], name: str, expected: ArtifactFormat
) -> None:
    assert detect_format(artifacts[name]) is expected
    assert check_artifact_format(expected.value, artifacts[name]) is expected


@pytest.mark.parametrize(
    ("declared", "actual"),
    [
        ("onnx", "pickle"),
        ("lightgbm", "pickle"),
        ("skops", "pickle"),
        ("xgboost-json", "xgboost-ubj"),
        ("xgboost-ubj", "xgboost-json"),
        ("onnx", "lightgbm"),
        ("lightgbm", "onnx"),
        ("pickle", "skops"),
    ],
)
def test_a_declared_format_that_does_not_match_is_refused(
    artifacts: dict[str, bytes], declared: str, actual: str
) -> None:
    with pytest.raises(InvalidArtifact, match=f"declared as {declared}"):
        check_artifact_format(declared, artifacts[actual])


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("model.onnx")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["gzip", "tar", "zip", "zip-escape"])
def test_archives_are_refused(artifacts: dict[str, bytes], kind: str) -> None:
    onnx = artifacts["onnx"]
    data = {
        "gzip": gzip.compress(onnx),
        "tar": _tar(onnx),
        "zip": _zip({"model.onnx": onnx}),
        "zip-escape": _zip({"schema.json": b"{}", "../../etc/cron.d/x": b"boom"}),
    }[kind]
    for declared in ("onnx", "skops"):
        with pytest.raises(InvalidArtifact):
            check_artifact_format(declared, data)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 64, b"hello world", b"\x08\x07garbage-that-is-not-protobuf", b"(lp0\nI1\na."],
)
def test_unrecognised_bytes_are_refused(data: bytes) -> None:
    assert detect_format(data) is None or data == b""
    with pytest.raises(InvalidArtifact):
        check_artifact_format("onnx", data)


def test_unknown_declared_formats_are_refused(artifacts: dict[str, bytes]) -> None:
    with pytest.raises(InvalidArtifact, match="Unknown artifact format"):
        check_artifact_format("tensorflow", artifacts["onnx"])
