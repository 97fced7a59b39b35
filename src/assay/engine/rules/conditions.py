"""Rule conditions: structured comparisons or CEL expressions, compiled to plain callables.

Structured forms (all checked against the schema at compile time):

- ``{field: f, op: ">=", value: 18}`` with op one of ``== != < <= > >=``
  (strings and booleans: ``==`` and ``!=`` only);
- ``{field: f, in: [a, b]}`` and ``{field: f, not_in: [a, b]}``;
- ``{field: f, between: [low, high]}`` (inclusive, numbers only);
- ``{field: f, is_null: true}``;
- ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``.

A string is a CEL expression that must give a boolean.

Null semantics: a comparison, membership or range test on a null value is false
(``not_in`` too); only ``is_null`` sees nulls. A CEL condition that fails because one of
its fields is null is false as well; any other CEL failure (division by zero, ...) is
an error for that record, never a silent false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.expressions import (
    CompiledExpression,
    ExpressionDefinitionError,
    ExpressionError,
    compile_expression,
)
from assay.engine.schema.input_schema import InputSchema

Condition = Callable[[Mapping[str, Any]], bool]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FIELD_TESTS = ("op", "in", "not_in", "between", "is_null")
_MAX_DEPTH = 8


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _ConditionCompiler:
    def __init__(self, schema: InputSchema, problems: DefinitionProblems, rule_id: str) -> None:
        self.schema = schema
        self.problems = problems
        self.rule_id = rule_id
        self.fields_read: set[str] = set()

    def fail(self, path: str, message: str) -> None:
        self.problems.add(path, message, self.rule_id)

    def compile(self, node: Any, path: str, depth: int = 0) -> Condition | None:
        if depth > _MAX_DEPTH:
            self.fail(path, f"conditions nest deeper than {_MAX_DEPTH} levels")
            return None
        if isinstance(node, str):
            return self._cel(node, path)
        if not isinstance(node, Mapping):
            self.fail(path, "a condition is a CEL string or a mapping")
            return None
        return self._mapping(node, path, depth)

    def _mapping(self, node: Mapping[str, Any], path: str, depth: int) -> Condition | None:
        if "field" in node:
            return self._field_test(node, path)
        keys = set(node)
        if keys in ({"all"}, {"any"}):
            key = "all" if "all" in keys else "any"
            return self._combine(key, node[key], join_path(path, key), depth)
        if keys == {"not"}:
            inner = self.compile(node["not"], join_path(path, "not"), depth + 1)
            return None if inner is None else (lambda values: not inner(values))
        self.fail(path, "expected `field`, `all`, `any` or `not`")
        return None

    def _combine(self, key: str, items: Any, path: str, depth: int) -> Condition | None:
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            self.fail(path, f"`{key}` takes a non-empty list of conditions")
            return None
        parts = [self.compile(item, join_path(path, i), depth + 1) for i, item in enumerate(items)]
        if any(part is None for part in parts):
            return None
        checked = tuple(p for p in parts if p is not None)
        if key == "all":
            return lambda values: all(part(values) for part in checked)
        return lambda values: any(part(values) for part in checked)

    def _cel(self, source: str, path: str) -> Condition | None:
        try:
            expr = compile_expression(source, probe=self.schema.probe_values, result="bool")
        except ExpressionDefinitionError as exc:
            self.fail(path, str(exc))
            return None
        self.fields_read.update(expr.variables)
        return _cel_condition(expr)

    def _field_test(self, node: Mapping[str, Any], path: str) -> Condition | None:
        checked = self._field_and_test(node, path)
        if checked is None:
            return None
        name, test = checked
        self.fields_read.add(name)
        if test == "is_null":
            return self._is_null(name, node["is_null"], join_path(path, "is_null"))
        if test == "op":
            return self._comparison(name, node, path)
        if test == "between":
            return self._between(name, node["between"], join_path(path, "between"))
        return self._membership(name, test, node[test], join_path(path, test))

    def _field_and_test(self, node: Mapping[str, Any], path: str) -> tuple[str, str] | None:
        name = node["field"]
        tests = [key for key in _FIELD_TESTS if key in node]
        extra = set(node) - {"field", "value", *_FIELD_TESTS}
        if extra:
            self.fail(path, f"unexpected key(s): {', '.join(sorted(map(str, extra)))}")
        elif len(tests) != 1:
            self.fail(path, "give exactly one of op, in, not_in, between, is_null")
        elif not isinstance(name, str) or name not in self.schema.fields:
            self.fail(join_path(path, "field"), f"unknown field {name!r}")
        elif tests[0] != "op" and "value" in node:
            self.fail(join_path(path, "value"), "`value` goes with `op`")
        else:
            return name, tests[0]
        return None

    def _is_null(self, name: str, wanted: Any, path: str) -> Condition | None:
        if not isinstance(wanted, bool):
            self.fail(path, "is_null takes true or false")
            return None
        if wanted:
            return lambda values: values.get(name) is None
        return lambda values: values.get(name) is not None

    def _value_fits(self, name: str, value: Any, path: str) -> bool:
        spec = self.schema.fields[name]
        numeric = spec.type in ("number", "integer")
        fits = (
            _is_number(value)
            if numeric
            else isinstance(value, bool)
            if spec.type == "boolean"
            else isinstance(value, str)
        )
        if not fits:
            self.fail(path, f"{value!r} cannot be compared with {spec.type} field {name!r}")
            return False
        if spec.type == "string" and spec.enum is not None and value not in spec.enum:
            self.fail(path, f"{value!r} is not one of {name!r}'s enum values")
            return False
        return True

    def _comparison(self, name: str, node: Mapping[str, Any], path: str) -> Condition | None:
        op, value = node["op"], node.get("value")
        if op not in _COMPARISONS:
            self.fail(join_path(path, "op"), f"op must be one of {' '.join(_COMPARISONS)}")
            return None
        if "value" not in node:
            self.fail(path, "`op` needs a `value`")
            return None
        if not self._value_fits(name, value, join_path(path, "value")):
            return None
        if self.schema.fields[name].type in ("string", "boolean") and op not in ("==", "!="):
            self.fail(join_path(path, "op"), f"{op} does not apply to non-numeric field {name!r}")
            return None
        compare = _COMPARISONS[op]

        def condition(values: Mapping[str, Any]) -> bool:
            current = values.get(name)
            return current is not None and compare(current, value)

        return condition

    def _between(self, name: str, bounds: Any, path: str) -> Condition | None:
        if (
            not isinstance(bounds, Sequence)
            or isinstance(bounds, str)
            or len(bounds) != 2
            or not all(_is_number(b) for b in bounds)
            or bounds[0] > bounds[1]
        ):
            self.fail(path, "between takes [low, high] numbers with low <= high")
            return None
        if self.schema.fields[name].type not in ("number", "integer"):
            self.fail(path, f"between does not apply to non-numeric field {name!r}")
            return None
        low, high = bounds

        def condition(values: Mapping[str, Any]) -> bool:
            current = values.get(name)
            return current is not None and low <= current <= high

        return condition

    def _membership(self, name: str, test: str, options: Any, path: str) -> Condition | None:
        if not isinstance(options, Sequence) or isinstance(options, str) or not options:
            self.fail(path, f"{test} takes a non-empty list")
            return None
        if not all(self._value_fits(name, v, join_path(path, i)) for i, v in enumerate(options)):
            return None
        allowed = frozenset(options)
        if test == "in":
            return lambda values: values.get(name) in allowed
        return lambda values: values.get(name) is not None and values.get(name) not in allowed


def _cel_condition(expr: CompiledExpression) -> Condition:
    def condition(values: Mapping[str, Any]) -> bool:
        try:
            return expr.evaluate_bool(values)
        except ExpressionError:
            if any(values.get(name) is None for name in expr.variables):
                return False
            raise

    return condition


def compile_condition(
    node: Any, schema: InputSchema, problems: DefinitionProblems, path: str, rule_id: str
) -> tuple[Condition | None, frozenset[str]]:
    """Compile a condition and list the fields it reads; problems are recorded, not raised."""
    compiler = _ConditionCompiler(schema, problems, rule_id)
    condition = compiler.compile(node, path)
    return condition, frozenset(compiler.fields_read)
