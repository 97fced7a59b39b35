"""CEL expressions: what they can compute, and everything a hostile author cannot make them do."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.engine.expressions import (
    MAX_EXPRESSION_LENGTH,
    MAX_EXPRESSION_NESTING,
    MAX_EXPRESSION_TERMS,
    MAX_MODEL_EXPRESSION_TERMS,
    ExpressionDefinitionError,
    ExpressionError,
    compile_expression,
    expression_budget,
    measure,
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
    with pytest.raises(ExpressionDefinitionError, match="1801 terms"):
        compile_expression("(" * 900 + "1" + ")" * 900, probe=PROBE, result="number")
    depth = MAX_EXPRESSION_NESTING
    compile_expression("(" * depth + "1" + ")" * depth, probe=PROBE, result="number")
    with pytest.raises(ExpressionDefinitionError, match=f"nests brackets {depth + 1} deep"):
        compile_expression(
            "(" * (depth + 1) + "1" + ")" * (depth + 1), probe=PROBE, result="number"
        )


def test_an_expression_is_bounded_in_terms_not_only_in_characters() -> None:
    # 1,000 additions fit in 2,000 characters and cost ~0.2 ms per evaluation: refused.
    with pytest.raises(ExpressionDefinitionError, match="1999 terms; at most 400"):
        compile_expression("+".join(["1"] * 1000), probe=PROBE, result="number")
    terms = (MAX_EXPRESSION_TERMS + 1) // 2
    compile_expression("+".join(["1"] * terms), probe=PROBE, result="number")


def test_every_expression_of_one_model_shares_one_budget() -> None:
    # 300 terms each: within the per-expression bound, but 17 of them exceed the model's.
    source = "+".join(["1"] * 150)
    with expression_budget() as budget:
        for _ in range(MAX_MODEL_EXPRESSION_TERMS // 299):
            compile_expression(source, probe=PROBE, result="number")
        assert budget.spent == (MAX_MODEL_EXPRESSION_TERMS // 299) * 299
        with pytest.raises(ExpressionDefinitionError, match="together exceed 5000 terms"):
            compile_expression(source, probe=PROBE, result="number")
    # Outside a budget (a lone expression) only the per-expression bound applies.
    compile_expression(source, probe=PROBE, result="number")


@pytest.mark.parametrize(
    ("source", "terms", "nesting"),
    [
        ("a + b * 2", 5, 0),
        ("size(name) > 2 && (x || !y)", 13, 1),
        ("name.startsWith('a(b)c') && [1, [2]][0] == 1", 19, 2),
        ('name == "quote \\" inside" || name == r"raw"', 7, 0),
    ],
)
def test_measure_counts_terms_and_bracket_nesting_outside_strings(
    source: str, terms: int, nesting: int
) -> None:
    assert measure(source) == (terms, nesting)


def test_worst_case_evaluation_terminates() -> None:
    # Without comprehensions an expression's cost is bounded by its length.
    source = " && ".join(["sector.matches('^(s|a)+$')"] * 50)
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
