"""The input-schema document: what a model version declares about its inputs.

Written in YAML or JSON (see docs/models.md, "Input schema"). This module only parses
and checks the document's shape; `assay.engine.schema.input_schema` compiles it into a
validator.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FieldType = Literal["number", "integer", "string", "boolean"]
FieldValue = bool | int | float | str

NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"
# Field names are CEL identifiers too, so CEL's reserved words cannot be used.
RESERVED_NAMES = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
# Without a declared max_length a string is still bounded, so one record cannot carry
# megabytes into validation, the cache key and the prediction record.
DEFAULT_MAX_STRING_LENGTH = 4096
MAX_FIELDS = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeriveSpec(_Strict):
    """How a field is computed from other fields before scoring."""

    expr: Annotated[str, Field(description="CEL expression giving a number.")]
    when: str | None = Field(
        None, description="CEL guard; when false (or an input is null) `otherwise` is used."
    )
    otherwise: float | None = Field(None, description="Value when the guard is false.")
    clip: bool = Field(False, description="Clamp into [minimum, maximum] instead of refusing.")


class FieldSpec(_Strict):
    """One input field."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    type: FieldType
    description: str | None = Field(None, max_length=1000)
    unit: str | None = Field(None, max_length=64, description="Informational unit, e.g. USD.")
    required: bool | None = None
    default: FieldValue | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: list[FieldValue] | None = Field(None, min_length=1, max_length=1000)
    pattern: str | None = Field(None, min_length=1, max_length=500)
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1, le=1_000_000)
    pii: bool = False
    derive: DeriveSpec | None = None
    input: bool | None = Field(
        None, description="Whether clients may supply the field; default: not when derived."
    )

    @property
    def accepts_input(self) -> bool:
        return self.input if self.input is not None else self.derive is None

    @property
    def is_required(self) -> bool:
        """Whether a client must supply the field (derived and defaulted fields need not)."""
        if self.required is not None:
            return self.required
        return self.accepts_input and self.default is None and self.derive is None

    @model_validator(mode="after")
    def _check_consistency(self) -> FieldSpec:
        problems = [*self._range_problems(), *self._string_problems(), *self._derive_problems()]
        if self.name in RESERVED_NAMES:
            problems.append(f"'{self.name}' is a reserved word")
        if self.type == "boolean" and self.enum is not None:
            problems.append("enum does not apply to boolean fields")
        if self.required and self.default is not None:
            problems.append("a field with a default is optional; drop `required: true`")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _range_problems(self) -> list[str]:
        low, high = self.minimum, self.maximum
        if low is None and high is None:
            return []
        if self.type not in ("number", "integer"):
            return ["minimum/maximum apply only to number and integer fields"]
        if any(b is not None and not math.isfinite(b) for b in (low, high)):
            return ["minimum/maximum must be finite"]
        if low is not None and high is not None and low > high:
            return [f"minimum ({low:g}) is above maximum ({high:g})"]
        return []

    def _string_problems(self) -> list[str]:
        shortest, longest = self.min_length, self.max_length
        if self.pattern is None and shortest is None and longest is None:
            return []
        if self.type != "string":
            return ["pattern/min_length/max_length apply only to string fields"]
        if shortest is not None and longest is not None and shortest > longest:
            return ["min_length is above max_length"]
        return []

    def _derive_problems(self) -> list[str]:
        if self.derive is None:
            return ["a field that is not derived must accept input"] if self.input is False else []
        problems = []
        if self.type != "number":
            problems.append("derived fields must have type number")
        if self.required:
            problems.append("a derived field cannot be required")
        if self.default is not None:
            problems.append("a derived field takes `derive.otherwise`, not `default`")
        if self.derive.clip and self.minimum is None and self.maximum is None:
            problems.append("derive.clip needs a minimum or a maximum")
        return problems


class AgreesRule(_Strict):
    """A supplied field must agree with a value computed from other fields."""

    kind: Literal["agrees"]
    field: str
    expr: str | None = Field(None, description="Defaults to the field's derive.expr.")
    when: str | None = Field(None, description="Defaults to the field's derive.when.")
    relative_tolerance: float = Field(0.0, ge=0.0, le=10.0)
    absolute_tolerance: float = Field(0.0, ge=0.0)
    message: str | None = Field(None, max_length=500)


class CheckRule(_Strict):
    """A boolean CEL expression over several fields that must hold."""

    kind: Literal["check"]
    expr: str
    fields: list[str] = Field(min_length=1, max_length=20)
    message: str = Field(min_length=1, max_length=500)


CrossFieldRule = Annotated[AgreesRule | CheckRule, Field(discriminator="kind")]


class SchemaDefinition(_Strict):
    """The whole input-schema document."""

    description: str | None = Field(None, max_length=2000)
    fields: list[FieldSpec] = Field(min_length=1, max_length=MAX_FIELDS)
    rules: list[CrossFieldRule] = Field(default_factory=list, max_length=200)
    additional_fields: Literal["reject", "ignore"] = "reject"
