"""Safe expressions in the Common Expression Language (CEL), never Python's `eval`.

CEL is not Turing complete and has no I/O: an expression can only read the variables
it is given and call the functions of its standard library. We use the Rust
interpreter behind ``common-expression-language`` (about a microsecond per evaluation,
against hundreds for the pure-Python implementation) and narrow it further:

- only the input fields named at registration can be referenced (checked statically);
- only an allow-list of operators and functions can be called: comprehension macros
  and time functions are out, so evaluation cost is linear in the expression's size;
- the size of an expression is capped (characters, terms and nesting), and so is the
  sum over every expression of one model version (`expression_budget`): a model cannot
  be written to spend more than about a millisecond of CEL per record;
- every expression is run once at registration on representative values, so type
  mistakes (``founders_count * 1.5`` mixes int and double) are reported at
  registration rather than on a client's request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import cel

MAX_EXPRESSION_LENGTH = 2000
# Terms (names, literals, operators) of one expression, and of all of one model's
# expressions together. Measured: a 2,000-term expression evaluates in about 0.4 ms on
# the reference machine, so a model's whole budget stays near a millisecond per record.
MAX_EXPRESSION_TERMS = 400
MAX_MODEL_EXPRESSION_TERMS = 5000
MAX_EXPRESSION_NESTING = 24

_STRING = re.compile(r"""[rR]?(?:'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""")
_TERM = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|&&|\|\||[=!<>]=|[-+*/%!?:<>.,()\[\]{}]"
)

# Operator overload names as the interpreter reports them, plus plain functions.
ALLOWED_FUNCTIONS = frozenset(
    {
        "_+_",
        "_-_",
        "_*_",
        "_/_",
        "_%_",
        "-_",
        "!_",
        "_&&_",
        "_||_",
        "_?_:_",
        "_==_",
        "_!=_",
        "_<_",
        "_<=_",
        "_>_",
        "_>=_",
        "@in",
        "size",
        "int",
        "double",
        "string",
        "bool",
        "matches",
        "startsWith",
        "endsWith",
        "contains",
    }
)

ExpressionResult = Literal["bool", "number"]

# The interpreter reports failures as these Python exceptions; anything else is a bug.
_EVALUATION_ERRORS = (RuntimeError, TypeError, ValueError, ArithmeticError)


class ExpressionDefinitionError(ValueError):
    """An expression is not acceptable; the message says why, for the author."""


class ExpressionError(ValueError):
    """An expression failed on one record (division by zero, a null operand, ...)."""


def _first_sentence(message: str) -> str:
    head = message.split("\n", 1)[0]
    # Parse errors quote the whole expression; the author has it, the log needs no more.
    return head.split(". ", 1)[0].rstrip(".")[:300]


class ExpressionBudget:
    """The terms every expression of one model version may spend together."""

    def __init__(self, limit: int = MAX_MODEL_EXPRESSION_TERMS, spent: int = 0) -> None:
        self.limit = limit
        self.spent = spent

    def charge(self, terms: int) -> None:
        if self.spent + terms > self.limit:
            raise ExpressionDefinitionError(
                f"the model's expressions together exceed {self.limit} terms "
                f"({self.spent} before this one, which has {terms})"
            )
        self.spent += terms


_BUDGET: ContextVar[ExpressionBudget | None] = ContextVar("expression_budget", default=None)


@contextmanager
def expression_budget(spent: int = 0) -> Iterator[ExpressionBudget]:
    """Charge every expression compiled inside to one model's budget (`spent` so far:
    a rules model starts from what its input schema's expressions spent)."""
    budget = ExpressionBudget(spent=spent)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def measure(source: str) -> tuple[int, int]:
    """(terms, deepest nesting of brackets) of an expression, string literals counted as
    one term each."""
    strings = len(_STRING.findall(source))
    bare = _STRING.sub(" ", source)
    depth = deepest = 0
    terms = strings
    for term in _TERM.findall(bare):
        terms += 1
        if term in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif term in ")]}":
            depth -= 1
    return terms, deepest


class CompiledExpression:
    """A parsed, checked CEL program, the variables it reads and its size in terms."""

    __slots__ = ("_program", "result", "source", "terms", "variables")

    def __init__(
        self,
        program: cel.Program,
        source: str,
        variables: tuple[str, ...],
        result: str,
        terms: int,
    ) -> None:
        self._program = program
        self.source = source
        self.variables = variables
        self.result = result
        self.terms = terms

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        # Only the referenced variables are handed over: converting a whole record into
        # CEL values costs far more than evaluating the expression.
        try:
            return self._program.execute({name: values[name] for name in self.variables})
        except _EVALUATION_ERRORS as exc:
            raise ExpressionError(_first_sentence(str(exc))) from None

    def evaluate_bool(self, values: Mapping[str, Any]) -> bool:
        result = self.evaluate(values)
        if not isinstance(result, bool):
            raise ExpressionError(f"expression returned {type(result).__name__}, not a boolean")
        return result

    def evaluate_number(self, values: Mapping[str, Any]) -> float:
        result = self.evaluate(values)
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise ExpressionError(f"expression returned {type(result).__name__}, not a number")
        number = float(result)
        if not math.isfinite(number):
            raise ExpressionError("expression did not give a finite number")
        return number


def compile_expression(
    source: str,
    *,
    probe: Mapping[str, Any],
    result: ExpressionResult,
) -> CompiledExpression:
    """Compile `source`, allowing only variables in `probe`, and dry-run it on `probe`.

    `probe` maps every variable the expression may read to a representative non-null
    value of its declared type. Raises `ExpressionDefinitionError` with a message fit
    for the document author.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExpressionDefinitionError("expression must be a non-empty string")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionDefinitionError(
            f"expression is longer than {MAX_EXPRESSION_LENGTH} characters"
        )
    terms, nesting = measure(source)
    if terms > MAX_EXPRESSION_TERMS:
        raise ExpressionDefinitionError(
            f"expression has {terms} terms; at most {MAX_EXPRESSION_TERMS} are allowed"
        )
    if nesting > MAX_EXPRESSION_NESTING:
        raise ExpressionDefinitionError(
            f"expression nests brackets {nesting} deep; at most {MAX_EXPRESSION_NESTING}"
        )
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(terms)
    try:
        program = cel.compile(source)
    except _EVALUATION_ERRORS as exc:
        raise ExpressionDefinitionError(f"not valid CEL: {_first_sentence(str(exc))}") from None

    variables = tuple(program.variables())
    unknown = [name for name in variables if name not in probe]
    if unknown:
        raise ExpressionDefinitionError(
            "unknown field(s) "
            + ", ".join(repr(n) for n in unknown)
            + "; expressions may use only the schema's fields (comprehensions are not allowed)"
        )
    forbidden = sorted(set(program.functions()) - ALLOWED_FUNCTIONS)
    if forbidden:
        raise ExpressionDefinitionError(
            "function(s) not allowed in expressions: " + ", ".join(forbidden)
        )

    compiled = CompiledExpression(program, source, variables, result, terms)
    _dry_run(compiled, probe)
    return compiled


def _dry_run(expression: CompiledExpression, probe: Mapping[str, Any]) -> None:
    try:
        value = expression._program.execute({name: probe[name] for name in expression.variables})
    except TypeError as exc:
        # A type error on well-typed sample values is a mistake in the expression.
        raise ExpressionDefinitionError(
            f"operand types do not fit: {_first_sentence(str(exc))}"
        ) from None
    except _EVALUATION_ERRORS:
        # Division by zero and the like depend on the values; they are caught per record.
        return
    if expression.result == "bool" and not isinstance(value, bool):
        raise ExpressionDefinitionError("expression must give a boolean (true/false)")
    if expression.result == "number" and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise ExpressionDefinitionError("expression must give a number")
