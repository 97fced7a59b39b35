"""Turning validated records into the float matrix an ML model expects.

A model's `features` list names schema fields in the model's column order, each with an
encoding: ``value`` (numbers as they are, booleans as 0/1), ``ordinal`` (an enum
string's position in the schema's enum list) or ``one_hot`` (one 0/1 column per enum
value, named ``field=value``). Without a list, every numeric, boolean and enum field
that is always present and not PII is used, in schema order, enums as ordinals.

Features must always have a value (required, defaulted, or derived with `otherwise`),
so a missing value can never reach a model as NaN. The same vectoriser is used to
build training matrices (see examples/startup_success), so training and serving
cannot disagree on column order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.runtimes.base import FloatMatrix
from assay.engine.schema.definition import FieldSpec
from assay.engine.schema.input_schema import InputSchema

Encoding = Literal["value", "ordinal", "one_hot"]
_VALUE, _ORDINAL, _ONE_HOT = 0, 1, 2


class FeatureSpec(BaseModel):
    """One entry of a model's `features` list; a bare string means the default encoding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    encoding: Encoding | None = None


class FeatureVectorizer:
    """Compiled feature plan. Immutable and thread-safe; `transform` allocates only its output."""

    def __init__(
        self, plan: Sequence[tuple[str, int, Any]], names: Sequence[str], schema: InputSchema
    ) -> None:
        self._plan = tuple(plan)
        self.names: tuple[str, ...] = tuple(names)
        self.width = len(self.names)
        self.source_fields: dict[str, FieldSpec] = {
            name: schema.fields[name] for name, _, _ in self._plan
        }
        sources = [name for name, _, _ in self._plan]
        getter = itemgetter(*sources)
        # itemgetter with one key returns the value, not a 1-tuple.
        self._get: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            getter if len(sources) > 1 else (lambda row: (row[sources[0]],))
        )
        self._plain = all(kind == _VALUE for _, kind, _ in self._plan)

    def _encode(self, values: tuple[Any, ...]) -> list[Any]:
        out: list[Any] = []
        for value, (_, kind, table) in zip(values, self._plan, strict=True):
            if kind == _VALUE:
                out.append(value)
            elif kind == _ORDINAL:
                out.append(table[value])
            else:
                out.extend(table[value])
        return out

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> FloatMatrix:
        """A (len(rows), width) float64 matrix."""
        get = self._get
        if self._plain:
            data: list[Any] = [get(row) for row in rows]
        else:
            data = [self._encode(get(row)) for row in rows]
        return np.array(data, dtype=np.float64).reshape(len(rows), self.width)


def default_features(schema: InputSchema) -> list[FeatureSpec]:
    """Every always-present, non-PII numeric, boolean or enum field, in schema order."""
    out: list[FeatureSpec] = []
    for spec in schema.definition.fields:
        if spec.pii or not schema.always_present(spec.name):
            continue
        if spec.type == "string" and not spec.enum:
            continue
        out.append(FeatureSpec(name=spec.name))
    return out


def build_vectorizer(
    features: Sequence[str | FeatureSpec | Mapping[str, Any]] | None,
    schema: InputSchema,
    problems: DefinitionProblems,
    path: str = "features",
) -> FeatureVectorizer | None:
    """Compile a features list against `schema`; problems are recorded, None if any."""
    specs: list[tuple[int, FeatureSpec]] = []
    if features is None:
        specs = list(enumerate(default_features(schema)))
    else:
        for i, item in enumerate(features):
            try:
                spec = (
                    FeatureSpec(name=item)
                    if isinstance(item, str)
                    else FeatureSpec.model_validate(item)
                )
            except ValidationError as exc:
                problems.add_pydantic(exc, item, (path, i))
                continue
            specs.append((i, spec))
    if not specs and not problems:
        problems.add(path, "the model needs at least one feature")
    plan: list[tuple[str, int, Any]] = []
    names: list[str] = []
    seen: set[str] = set()
    for i, spec in specs:
        entry = _plan_entry(spec, schema, problems, join_path(path, i))
        if entry is None:
            continue
        if spec.name in seen:
            problems.add(join_path(path, i), "feature listed twice", spec.name)
        seen.add(spec.name)
        plan.append(entry[0])
        names.extend(entry[1])
    if problems:
        return None
    return FeatureVectorizer(plan, names, schema)


def _plan_entry(
    spec: FeatureSpec, schema: InputSchema, problems: DefinitionProblems, path: str
) -> tuple[tuple[str, int, Any], list[str]] | None:
    field = schema.fields.get(spec.name)
    if field is None:
        problems.add(join_path(path, "name"), "not a field of the input schema", spec.name)
        return None
    if not schema.always_present(spec.name):
        problems.add(
            path,
            "a feature must always have a value: make the field required, give it a "
            "default, or give its derivation an `otherwise`",
            spec.name,
        )
        return None
    if field.type == "string":
        return _string_entry(spec, field, problems, path)
    if spec.encoding not in (None, "value"):
        problems.add(
            join_path(path, "encoding"), f"{spec.encoding} applies to enum strings", spec.name
        )
        return None
    return (spec.name, _VALUE, None), [spec.name]


def _string_entry(
    spec: FeatureSpec, field: FieldSpec, problems: DefinitionProblems, path: str
) -> tuple[tuple[str, int, Any], list[str]] | None:
    if not field.enum:
        problems.add(path, "string features need an enum to be encoded", spec.name)
        return None
    encoding = spec.encoding or "ordinal"
    if encoding == "value":
        problems.add(join_path(path, "encoding"), "strings are ordinal or one_hot", spec.name)
        return None
    if encoding == "ordinal":
        table = {value: float(i) for i, value in enumerate(field.enum)}
        return (spec.name, _ORDINAL, table), [spec.name]
    width = len(field.enum)
    hot = {
        value: tuple(1.0 if j == i else 0.0 for j in range(width))
        for i, value in enumerate(field.enum)
    }
    return (spec.name, _ONE_HOT, hot), [f"{spec.name}={value}" for value in field.enum]
