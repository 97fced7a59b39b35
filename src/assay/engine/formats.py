"""Artifact formats, and sniffing that the bytes are the format their uploader declared.

A declared format that does not match the bytes is refused before any parser sees
them: a pickle renamed ``model.onnx`` never reaches a loader, and neither does an
archive. Archives (tar, gzip, bzip2, xz, zstd, 7z, rar, and zip files other than a
skops file) are not accepted at all: an artifact is one model file, so what is
digested, signed and loaded is exactly one thing, and there is nothing to unpack
(no path traversal, no decompression bomb, no second file to swap).
"""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum

from assay.engine.errors import InvalidArtifact


class ArtifactFormat(StrEnum):
    ONNX = "onnx"
    LIGHTGBM = "lightgbm"
    XGBOOST_JSON = "xgboost-json"
    XGBOOST_UBJ = "xgboost-ubj"
    SKOPS = "skops"
    PICKLE = "pickle"


# Formats whose loading can run code embedded in the file.
CODE_EXECUTING_FORMATS = frozenset({ArtifactFormat.PICKLE})
# Why such a format is refused, at registration and at load.
PICKLE_REFUSED = (
    "Pickle and joblib artifacts run code when they are loaded; they are refused unless "
    "the operator allows pickle and the artifact is signed by a trusted publisher. "
    "Prefer ONNX, skops, LightGBM or XGBoost formats."
)

_ARCHIVE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
)
_ZIP_MAGIC = b"PK\x03\x04"
_LIGHTGBM_MAGIC = b"tree\nversion="
# Top-level fields of onnx.ModelProto (ir_version=1 ... configuration=26).
_ONNX_FIELDS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26})
_ONNX_GRAPH_FIELD = 7
_UBJ_KEY_LENGTH_MARKERS = b"iUIlL"
# Limits on what a skops zip may expand to; the archive itself is never extracted.
MAX_SKOPS_MEMBERS = 10_000
MAX_SKOPS_UNCOMPRESSED = 2 << 30


def _archive_kind(data: bytes) -> str | None:
    for magic, kind in _ARCHIVE_MAGIC:
        if data.startswith(magic):
            return kind
    if len(data) > 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint too long")


def _looks_like_onnx(data: bytes) -> bool:
    """Walk the top-level protobuf fields: all must be ModelProto's, with a graph."""
    pos, seen_graph = 0, False
    try:
        while pos < len(data):
            key, pos = _read_varint(data, pos)
            field, wire = key >> 3, key & 7
            if field not in _ONNX_FIELDS:
                return False
            if wire == 0:
                _, pos = _read_varint(data, pos)
            elif wire == 2:
                length, pos = _read_varint(data, pos)
                pos += length
                if pos > len(data):
                    return False
            else:
                return False
            seen_graph = seen_graph or field == _ONNX_GRAPH_FIELD
    except ValueError:
        return False
    return seen_graph


def _looks_like_json_object(data: bytes) -> bool:
    head = data.lstrip(b" \t\r\n")
    if not head.startswith(b"{"):
        return False
    rest = head[1:].lstrip(b" \t\r\n")
    return rest.startswith((b'"', b"}"))


def _looks_like_ubj_object(data: bytes) -> bool:
    # UBJSON object: '{' then either a container-optimisation marker or a key length.
    return (
        len(data) > 2
        and data[0:1] == b"{"
        and (data[1] in _UBJ_KEY_LENGTH_MARKERS or data[1:2] in (b"$", b"#"))
    )


def _skops_problem(data: bytes) -> str | None:
    """None if the zip is shaped like a skops file, else what is wrong with it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        return "it is not a readable zip file"
    names = {m.filename for m in members}
    if "schema.json" not in names:
        return "a zip without skops's schema.json is an archive, and archives are not accepted"
    if len(members) > MAX_SKOPS_MEMBERS:
        return "the skops file has too many members"
    if sum(m.file_size for m in members) > MAX_SKOPS_UNCOMPRESSED:
        return "the skops file expands to more than 2 GiB"
    if any(m.filename.startswith("/") or ".." in m.filename.split("/") for m in members):
        return "the skops file has member names that leave its root"
    return None


def _looks_like_pickle(data: bytes) -> bool:
    # PROTO opcode with protocol 2-5; protocols 0 and 1 predate Python 2.3 and are refused.
    return len(data) > 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def detect_format(data: bytes) -> ArtifactFormat | None:
    """The format the bytes look like, or None. XGBoost JSON/UBJ are told apart by shape."""
    if data.startswith(_ZIP_MAGIC):
        return ArtifactFormat.SKOPS if _skops_problem(data) is None else None
    sniffers = (
        (lambda d: d.startswith(_LIGHTGBM_MAGIC), ArtifactFormat.LIGHTGBM),
        (_looks_like_pickle, ArtifactFormat.PICKLE),
        (_looks_like_json_object, ArtifactFormat.XGBOOST_JSON),
        (_looks_like_ubj_object, ArtifactFormat.XGBOOST_UBJ),
        (_looks_like_onnx, ArtifactFormat.ONNX),
    )
    for looks_like, fmt in sniffers:
        if looks_like(data):
            return fmt
    return None


def check_artifact_format(declared: ArtifactFormat | str, data: bytes) -> ArtifactFormat:
    """Return the declared format if the bytes match it; raise `InvalidArtifact` otherwise."""
    try:
        fmt = ArtifactFormat(declared)
    except ValueError:
        known = ", ".join(f.value for f in ArtifactFormat)
        raise InvalidArtifact(
            f"Unknown artifact format {declared!r}; use one of {known}."
        ) from None
    if not data:
        raise InvalidArtifact("The artifact is empty.")
    archive = _archive_kind(data)
    if archive is not None:
        raise InvalidArtifact(
            f"The artifact is a {archive} archive; archives are not accepted, "
            "upload the model file itself."
        )
    if fmt is ArtifactFormat.SKOPS and data.startswith(_ZIP_MAGIC):
        problem = _skops_problem(data)
        if problem is not None:
            raise InvalidArtifact(f"The artifact is not a valid skops file: {problem}.")
        return fmt
    if data.startswith(_ZIP_MAGIC) and detect_format(data) is None:
        raise InvalidArtifact(
            "The artifact is a zip archive; archives are not accepted, "
            "upload the model file itself."
        )
    found = detect_format(data)
    if found is not fmt:
        seen = f"the bytes look like {found.value}" if found else "the bytes are not recognised"
        raise InvalidArtifact(f"The artifact was declared as {fmt.value}, but {seen}.")
    return fmt
