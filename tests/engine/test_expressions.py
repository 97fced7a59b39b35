"""CEL expressions: what they can compute, and everything a hostile author cannot make them do."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.engine.expressions import (
    MAX_EXPRESSION_LENGTH,
    ExpressionDefinitionError,
    ExpressionError,
    compile_expression,
)

PROBE = {"cash": 1_000_000.0, "burn": 50_000.0, "founders": 2, "sector": "saas", "technical": True}


def test_arithmetic_comparison_and_strings() -> None:
    expr = compile_expression(
        "cash / burn >= 18.0 && sector in ['saas', 'fintech'] && sector.startsWith('sa')",
        probe=PROBE,
        result="bool",
    )
    assert expr.evaluate_bool(PROBE) is True
    assert expr.evaluate_bool({**PROBE, "burn": 100_000.0}) is False
    assert set(expr.variables) == {"cash", "burn", "sector"}


def test_numeric_results_are_floats() -> None:
    expr = compile_expression("founders * 2", probe=PROBE, result="number")
    assert expr.evaluate_number(PROBE) == 4.0


def test_only_referenced_variables_are_handed_over() -> None:
    expr = compile_expression("founders > 1", probe=PROBE, result="bool")
    assert expr.evaluate_bool({"founders": 3}) is True  # the rest of the record is not needed


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('touch /tmp/assay-pwned')",
        "open('/etc/passwd')",
        "exec('1')",
        "eval('1')",
        "getattr(cash, '__class__')",
        "cash.__class__",
        "sector.__class__.__mro__",
        "os.system('id')",
        "[1, 2, 3].map(x, x * x)",
        "[1, 2, 3].exists(x, x > 2)",
        "timestamp('2020-01-01T00:00:00Z') < now",
        "type(cash) == double",
        "dyn(cash) > 1.0",
    ],
)
def test_hostile_or_unsupported_expressions_are_refused_at_registration(source: str) -> None:
    with pytest.raises(ExpressionDefinitionError):
        compile_expression(source, probe=PROBE, result="bool")


def test_nothing_is_executed_on_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for source in (
        f"__import__('os').system('touch {marker}')",
        f"'x'.startsWith(__import__('pathlib').Path('{marker}').touch())",
    ):
        with pytest.raises(ExpressionDefinitionError):
            compile_expression(source, probe=PROBE, result="bool")
    assert not marker.exists()


def test_overlong_expressions_are_refused() -> None:
    with pytest.raises(ExpressionDefinitionError, match="longer than"):
        compile_expression("1 + " * MAX_EXPRESSION_LENGTH + "1", probe=PROBE, result="number")


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(ExpressionDefinitionError, match="not valid CEL"):
        compile_expression("(" * 900 + "1" + ")" * 900, probe=PROBE, result="number")


def test_worst_case_evaluation_terminates() -> None:
    # Without comprehensions an expression's cost is bounded by its length.
    source = " && ".join(["sector.matches('^(s|a)+$')"] * 60)
    expr = compile_expression(source, probe=PROBE, result="bool")
    # RE2 matches in linear time; a backtracking engine would not return here.
    assert expr.evaluate_bool({**PROBE, "sector": "sa" * 2000}) is True


def test_mixed_int_and_double_arithmetic_is_caught_at_registration() -> None:
    with pytest.raises(ExpressionDefinitionError, match="operand types"):
        compile_expression("founders * 1.5 > 2.0", probe=PROBE, result="bool")
    compile_expression("double(founders) * 1.5 > 2.0", probe=PROBE, result="bool")


def test_wrong_result_type_is_caught_at_registration() -> None:
    with pytest.raises(ExpressionDefinitionError, match="boolean"):
        compile_expression("cash / burn", probe=PROBE, result="bool")
    with pytest.raises(ExpressionDefinitionError, match="number"):
        compile_expression("cash > burn", probe=PROBE, result="number")


def test_runtime_failures_are_expression_errors() -> None:
    expr = compile_expression(
        "founders / (founders - 2)", probe={**PROBE, "founders": 3}, result="number"
    )
    with pytest.raises(ExpressionError, match="division by zero"):
        expr.evaluate_number({"founders": 2})
    ratio = compile_expression("cash / burn", probe=PROBE, result="number")
    with pytest.raises(ExpressionError, match="finite"):
        ratio.evaluate_number({"cash": 1.0, "burn": 0.0})
    null = compile_expression("cash > 1.0", probe=PROBE, result="bool")
    with pytest.raises(ExpressionError):
        null.evaluate_bool({"cash": None})
