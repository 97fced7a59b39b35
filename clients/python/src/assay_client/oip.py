"""Open Inference Protocol helpers: rows (dicts) to V2 input tensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assay_client.types import Tensor

_INTEGER_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"})


def _datatype_of(name: str, values: Sequence[Any]) -> str:
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("BOOL")
        elif isinstance(value, int):
            kinds.add("INT64")
        elif isinstance(value, float):
            kinds.add("FP64")
        elif isinstance(value, str):
            kinds.add("BYTES")
        else:
            msg = f"field {name!r}: {type(value).__name__} values have no tensor datatype"
            raise TypeError(msg)
    if kinds <= {"INT64", "FP64"} and kinds:
        return "FP64" if "FP64" in kinds else "INT64"
    if len(kinds) == 1:
        return kinds.pop()
    msg = f"field {name!r} mixes {sorted(kinds)} values; pass its datatype explicitly"
    raise TypeError(msg)


def rows_to_inputs(
    rows: Sequence[Mapping[str, Any]], datatypes: Mapping[str, str] | None = None
) -> list[Tensor]:
    """One tensor of shape ``[N]`` per field, row `i` of each making record `i`.

    Datatypes follow the values (bool → BOOL, int → INT64, float or a mix of numbers →
    FP64, str → BYTES) unless `datatypes` names them. Every row must have the same fields:
    OIP has no way to leave a field out of one row only.
    """
    if not rows:
        msg = "rows_to_inputs needs at least one row"
        raise ValueError(msg)
    fields = list(rows[0])
    for index, row in enumerate(rows):
        if set(row) != set(fields):
            msg = f"row {index} has fields {sorted(row)}, row 0 has {sorted(fields)}"
            raise ValueError(msg)
    given = dict(datatypes or {})
    tensors: list[Tensor] = []
    for name in fields:
        column = [row[name] for row in rows]
        datatype = given.get(name) or _datatype_of(name, column)
        if datatype in ("FP16", "FP32", "FP64"):
            column = [float(v) for v in column]
        elif datatype in _INTEGER_TYPES:
            column = [int(v) for v in column]
        tensors.append(Tensor(name=name, datatype=datatype, shape=[len(column)], data=column))
    return tensors
