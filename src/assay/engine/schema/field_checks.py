"""Per-field checks compiled from a `FieldSpec`: type, finiteness, range, enum, pattern, length.

Each checker turns a JSON value into the field's Python type or a `FieldError`. They
are built once per schema; checking a value is a few comparisons.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import re2

from assay.engine.results import ErrorCode, FieldError
from assay.engine.schema.definition import DEFAULT_MAX_STRING_LENGTH, FieldSpec

# Integers beyond this cannot round-trip through a float64 feature vector unchanged.
MAX_SAFE_INTEGER = 2**53
_ENUM_SHOWN = 20


def _fmt(number: float) -> str:
    return f"{number:g}"


def _enum_message(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_ENUM_SHOWN])
    more = f" (and {len(values) - _ENUM_SHOWN} more)" if len(values) > _ENUM_SHOWN else ""
    return f"must be one of: {shown}{more}"


def compile_pattern(pattern: str) -> Any:
    """Compile with RE2: matching time is linear in the input, whatever the pattern."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    return re2.compile(pattern, options)


class FieldChecker(ABC):
    """Validates one field's value; `check` returns (value, None) or (None, error)."""

    __slots__ = ("enum", "enum_message", "maximum", "minimum", "name")

    def __init__(self, spec: FieldSpec) -> None:
        self.name = spec.name
        self.minimum = spec.minimum
        self.maximum = spec.maximum
        self.enum: frozenset[Any] | None = None
        self.enum_message = ""
        if spec.enum is not None:
            self.enum = frozenset(spec.enum)
            self.enum_message = _enum_message(spec.enum)

    @abstractmethod
    def check(self, raw: Any) -> tuple[Any, FieldError | None]:
        """Return (typed value, None) or (None, the error)."""

    def error(self, code: str, message: str) -> tuple[None, FieldError]:
        return None, FieldError(self.name, code, message)

    def check_range(self, value: float) -> tuple[Any, FieldError | None]:
        if self.minimum is not None and value < self.minimum:
            return self.error(ErrorCode.MINIMUM, f"must be at least {_fmt(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            return self.error(ErrorCode.MAXIMUM, f"must be at most {_fmt(self.maximum)}")
        if self.enum is not None and value not in self.enum:
            return self.error(ErrorCode.ENUM, self.enum_message)
        return value, None


class NumberChecker(FieldChecker):
    __slots__ = ()

    def check(self, raw: Any) -> tuple[Any, FieldError | None]:
        if isinstance(raw, float):
            value = raw
        elif isinstance(raw, int) and not isinstance(raw, bool):
            try:
                value = float(raw)
            except OverflowError:
                return self.error(ErrorCode.NOT_FINITE, "is too large to be a finite number")
        else:
            return self.error(ErrorCode.TYPE, "must be a number")
        if not math.isfinite(value):
            return self.error(
                ErrorCode.NOT_FINITE, "must be a finite number (NaN and infinity are refused)"
            )
        return self.check_range(value)


class IntegerChecker(FieldChecker):
    __slots__ = ()

    def check(self, raw: Any) -> tuple[Any, FieldError | None]:
        if isinstance(raw, bool):
            return self.error(ErrorCode.TYPE, "must be an integer")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, float):
            if not math.isfinite(raw):
                return self.error(
                    ErrorCode.NOT_FINITE, "must be a finite number (NaN and infinity are refused)"
                )
            if not raw.is_integer():
                return self.error(ErrorCode.TYPE, "must be an integer")
            # JSON encoders may write 3 as 3.0; the value is still the integer 3.
            value = int(raw)
        else:
            return self.error(ErrorCode.TYPE, "must be an integer")
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return self.error(ErrorCode.OUT_OF_RANGE, "must be between -2^53 and 2^53")
        return self.check_range(value)


class BooleanChecker(FieldChecker):
    __slots__ = ()

    def check(self, raw: Any) -> tuple[Any, FieldError | None]:
        if isinstance(raw, bool):
            return raw, None
        return self.error(ErrorCode.TYPE, "must be true or false")


class StringChecker(FieldChecker):
    __slots__ = ("max_length", "min_length", "pattern", "pattern_source")

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__(spec)
        self.min_length = spec.min_length
        self.max_length = spec.max_length or DEFAULT_MAX_STRING_LENGTH
        self.pattern_source = spec.pattern
        self.pattern = compile_pattern(spec.pattern) if spec.pattern is not None else None

    def check(self, raw: Any) -> tuple[Any, FieldError | None]:
        if not isinstance(raw, str):
            return self.error(ErrorCode.TYPE, "must be a string")
        # Length is counted in code points and checked before the pattern, so the
        # pattern never runs on an over-long value.
        if len(raw) > self.max_length:
            return self.error(ErrorCode.MAX_LENGTH, f"must be at most {self.max_length} characters")
        if self.min_length is not None and len(raw) < self.min_length:
            return self.error(
                ErrorCode.MIN_LENGTH, f"must be at least {self.min_length} characters"
            )
        if self.enum is not None and raw not in self.enum:
            return self.error(ErrorCode.ENUM, self.enum_message)
        if self.pattern is not None and self.pattern.fullmatch(raw) is None:
            return self.error(ErrorCode.PATTERN, f"must match the pattern {self.pattern_source}")
        return raw, None


_CHECKERS: dict[str, type[FieldChecker]] = {
    "number": NumberChecker,
    "integer": IntegerChecker,
    "boolean": BooleanChecker,
    "string": StringChecker,
}


def build_checker(spec: FieldSpec) -> FieldChecker:
    """The checker for `spec`. Raises `ValueError` if its pattern is not valid RE2."""
    try:
        return _CHECKERS[spec.type](spec)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"pattern is not a valid RE2 expression: {reason}") from None


def probe_value(spec: FieldSpec) -> Any:
    """A representative non-null value of the field, to dry-run expressions with."""
    if spec.enum:
        return spec.enum[0]
    if spec.type == "boolean":
        return True
    if spec.type == "string":
        return "x" * max(spec.min_length or 1, 1)
    low, high = spec.minimum, spec.maximum
    if low is not None and high is not None:
        mid = (low + high) / 2
    elif low is not None:
        mid = low + 1
    elif high is not None:
        mid = high - 1
    else:
        mid = 1.0
    # A probe of zero would turn every division into a skipped (harmless) dry run.
    if mid == 0:
        mid = high if high else 1.0
    if spec.type == "integer":
        return round(mid) or 1
    return float(mid)
