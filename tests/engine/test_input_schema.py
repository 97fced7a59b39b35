"""Input schemas: every failing field reported, derived fields, cross-field rules, definitions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from assay.engine.errors import InvalidModelDefinition
from assay.engine.results import RowError, ValidatedRecord
from assay.engine.schema.input_schema import InputSchema, compile_schema

Record = Callable[..., dict[str, Any]]


def _errors(result: ValidatedRecord | RowError) -> dict[str, str]:
    assert isinstance(result, RowError), result
    return {e.field or "": e.code for e in result.errors}


def _valid(result: ValidatedRecord | RowError) -> ValidatedRecord:
    assert isinstance(result, ValidatedRecord), result
    return result


def test_valid_profile_passes(startup_schema: InputSchema, make_record: Record) -> None:
    row = _valid(startup_schema.validate(make_record()))
    assert row.values["company_name"] == "Acme Analytics"
    assert row.values["hq_country"] == "US"  # default filled in


def test_gross_margin_of_150_names_the_field(
    startup_schema: InputSchema, make_record: Record
) -> None:
    result = startup_schema.validate(make_record(gross_margin_percent=150))
    assert isinstance(result, RowError)
    assert [(e.field, e.code) for e in result.errors] == [("gross_margin_percent", "maximum")]
    assert "100" in result.errors[0].message


def test_every_failing_field_is_reported_not_just_the_first(
    startup_schema: InputSchema, make_record: Record
) -> None:
    record = make_record(
        drop=("company_name",),
        gross_margin_percent=150,
        founders_count=2.5,
        sector="space-mining",
        founder_email="not-an-email",
        tam_size_usd="big",
        has_technical_cofounder="yes",
        team_diversity_percent=-1,
        surprise_field=1,
    )
    assert _errors(startup_schema.validate(record)) == {
        "surprise_field": "unknown_field",
        "company_name": "required",
        "gross_margin_percent": "maximum",
        "founders_count": "type",
        "sector": "enum",
        "founder_email": "pattern",
        "tam_size_usd": "type",
        "has_technical_cofounder": "type",
        "team_diversity_percent": "minimum",
    }


def test_error_messages_never_echo_the_submitted_value(
    startup_schema: InputSchema, make_record: Record
) -> None:
    secret = "s3cret-value@nowhere"
    result = startup_schema.validate(make_record(founder_email=secret + " x", company_name=""))
    assert isinstance(result, RowError)
    assert all(secret not in e.message for e in result.errors)


def test_runway_is_derived_from_cash_and_burn(
    startup_schema: InputSchema, make_record: Record
) -> None:
    row = _valid(
        startup_schema.validate(make_record(cash_on_hand_usd=8_000_000, monthly_burn_usd=400_000))
    )
    assert row.values["runway_months"] == pytest.approx(20.0)
    assert row.derived_values()["runway_months"] == pytest.approx(20.0)
    assert "runway_months" in row.derived


def test_supplied_runway_within_tolerance_is_kept(
    startup_schema: InputSchema, make_record: Record
) -> None:
    row = _valid(startup_schema.validate(make_record(runway_months=21.5)))  # 20 +- 10 %
    assert row.values["runway_months"] == 21.5
    assert "runway_months" not in row.derived


def test_supplied_runway_outside_tolerance_is_refused(
    startup_schema: InputSchema, make_record: Record
) -> None:
    result = startup_schema.validate(make_record(runway_months=30))
    assert _errors(result) == {"runway_months": "inconsistent"}


def test_zero_burn_never_divides_by_zero(startup_schema: InputSchema, make_record: Record) -> None:
    row = _valid(startup_schema.validate(make_record(monthly_burn_usd=0)))
    assert row.values["runway_months"] == 120.0  # the declared `otherwise`
    # With no burn the agreement rule does not apply to a supplied runway either.
    _valid(startup_schema.validate(make_record(monthly_burn_usd=0, runway_months=3)))


def test_burn_multiple_without_new_arr_takes_its_cap(
    startup_schema: InputSchema, make_record: Record
) -> None:
    row = _valid(startup_schema.validate(make_record(net_new_arr_usd=0)))
    assert row.values["burn_multiple"] == 20.0
    tiny = _valid(startup_schema.validate(make_record(net_new_arr_usd=1)))
    assert tiny.values["burn_multiple"] == 20.0  # clipped, not 4.8 million


def test_derived_only_field_cannot_be_supplied(
    startup_schema: InputSchema, make_record: Record
) -> None:
    assert _errors(startup_schema.validate(make_record(burn_multiple=0.5))) == {
        "burn_multiple": "derived_only"
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10**400])
def test_non_finite_numbers_are_refused(
    startup_schema: InputSchema, make_record: Record, bad: float
) -> None:
    result = startup_schema.validate(make_record(cash_on_hand_usd=bad, years_experience_avg=bad))
    assert _errors(result) == {
        "cash_on_hand_usd": "not_finite",
        "years_experience_avg": "not_finite",
    }


def test_nan_in_an_integer_field_is_refused(
    startup_schema: InputSchema, make_record: Record
) -> None:
    assert _errors(startup_schema.validate(make_record(founders_count=math.nan))) == {
        "founders_count": "not_finite"
    }


def test_integral_floats_count_as_integers(
    startup_schema: InputSchema, make_record: Record
) -> None:
    row = _valid(startup_schema.validate(make_record(founders_count=3.0)))
    assert row.values["founders_count"] == 3
    assert isinstance(row.values["founders_count"], int)


def test_booleans_are_not_numbers(startup_schema: InputSchema, make_record: Record) -> None:
    assert _errors(
        startup_schema.validate(make_record(founders_count=True, tam_size_usd=False))
    ) == {
        "founders_count": "type",
        "tam_size_usd": "type",
    }


def test_cross_field_checks(startup_schema: InputSchema, make_record: Record) -> None:
    result = startup_schema.validate(
        make_record(
            sam_size_usd=3e10, prior_successful_exits_count=3, prior_startup_experience_count=1
        )
    )
    assert _errors(result) == {
        "sam_size_usd": "cross_field",
        "prior_successful_exits_count": "cross_field",
    }


def test_cross_field_rules_skip_fields_that_already_failed(
    startup_schema: InputSchema, make_record: Record
) -> None:
    result = startup_schema.validate(make_record(tam_size_usd="huge", monthly_burn_usd=-5))
    assert _errors(result) == {"tam_size_usd": "type", "monthly_burn_usd": "minimum"}


def test_a_record_must_be_an_object(startup_schema: InputSchema) -> None:
    result = startup_schema.validate(["not", "a", "mapping"], index=4)
    assert isinstance(result, RowError)
    assert result.index == 4
    assert result.errors[0].field is None


def test_many_unknown_fields_are_summarised(
    startup_schema: InputSchema, make_record: Record
) -> None:
    record = make_record(**{f"junk_{i}": i for i in range(500)})
    result = startup_schema.validate(record)
    assert isinstance(result, RowError)
    assert len(result.errors) == 21


def test_canonical_json_is_stable(startup_schema: InputSchema, make_record: Record) -> None:
    first = _valid(startup_schema.validate(make_record()))
    shuffled = dict(reversed(list(make_record().items())))
    second = _valid(startup_schema.validate(shuffled))
    assert first.canonical_json() == second.canonical_json()


def test_json_schema_describes_the_accepted_input(startup_schema: InputSchema) -> None:
    document = startup_schema.json_schema()
    assert document["additionalProperties"] is False
    assert "burn_multiple" not in document["properties"]  # derived only
    assert document["properties"]["gross_margin_percent"]["maximum"] == 100
    assert document["properties"]["founder_email"]["x-pii"] is True
    assert "company_name" in document["required"]
    assert "runway_months" not in document["required"]


def test_pii_fields_are_listed(startup_schema: InputSchema) -> None:
    assert startup_schema.pii_fields == {"founder_email"}


def _definition_errors(document: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_schema(document)
    assert caught.value.errors is not None
    return [dict(e) for e in caught.value.errors]


def test_definition_errors_point_at_the_field() -> None:
    errors = _definition_errors(
        {
            "fields": [
                {"name": "ok", "type": "number"},
                {"name": "margin", "type": "number", "minimum": 100, "maximum": 0},
                {"name": "typo", "type": "number", "maxmum": 3},
                {"name": "kind", "type": "decimal"},
            ]
        }
    )
    assert [(e["path"], e.get("name")) for e in errors] == [
        ("fields[1]", "margin"),
        ("fields[2].maxmum", "typo"),
        ("fields[3].type", "kind"),
    ]
    assert "minimum (100) is above maximum (0)" in errors[0]["message"]


def test_second_stage_definition_errors_are_all_reported() -> None:
    errors = _definition_errors(
        {
            "fields": [
                {"name": "count", "type": "integer", "default": 2.5},
                {"name": "code", "type": "string", "pattern": "(unclosed"},
                {"name": "ratio", "type": "number", "derive": {"expr": "count / missing"}},
                {"name": "twice", "type": "number", "derive": {"expr": "count * 1.5"}},
                {"name": "extra", "type": "number"},
                {"name": "extra", "type": "number"},
            ],
            "rules": [
                {"kind": "check", "expr": "code > 3", "fields": ["code"], "message": "m"},
                {"kind": "agrees", "field": "nope", "relative_tolerance": 0.1},
            ],
        }
    )
    paths = {e["path"]: e["message"] for e in errors}
    assert paths["fields[0].default"] == "default must be an integer"
    assert "RE2" in paths["fields[1].pattern"]
    assert "unknown field(s) 'missing'" in paths["fields[2].derive.expr"]
    assert "operand types" in paths["fields[3].derive.expr"]  # int * double
    assert paths["fields[5].name"] == "duplicate field name"
    assert "operand types" in paths["rules[0].expr"]
    assert paths["rules[1].field"] == "unknown field 'nope'"


def test_reserved_words_cannot_be_field_names() -> None:
    errors = _definition_errors({"fields": [{"name": "in", "type": "number"}]})
    assert "reserved" in errors[0]["message"]


def test_patterns_are_linear_time(startup_schema: InputSchema) -> None:
    schema = compile_schema(
        {"fields": [{"name": "code", "type": "string", "pattern": "(a+)+$", "max_length": 100000}]}
    )
    # A backtracking engine takes exponential time on this; RE2 does not.
    assert isinstance(schema.validate({"code": "a" * 50_000 + "!"}), RowError)


def test_optional_field_without_default_is_null(
    startup_schema: InputSchema, make_record: Record
) -> None:
    row = _valid(startup_schema.validate(make_record(drop=("founder_email",))))
    assert row.values["founder_email"] is None


def test_unknown_fields_may_be_ignored_by_choice() -> None:
    schema = compile_schema(
        {"fields": [{"name": "x", "type": "number"}], "additional_fields": "ignore"}
    )
    row = _valid(schema.validate({"x": 1, "other": 2}))
    assert dict(row.values) == {"x": 1.0}


@pytest.mark.parametrize(
    ("runway", "agrees"),
    [
        (3.0, False),  # far below the 20 months cash and burn imply
        (17.9, False),
        (18.0, True),  # the edge of the 10 % tolerance, below
        (21.5, True),
        (22.0, True),  # the edge, above
        (22.1, False),
        (30.0, False),
    ],
)
def test_a_supplied_runway_must_agree_from_both_sides(
    startup_schema: InputSchema, make_record: Record, runway: float, agrees: bool
) -> None:
    # cash 8,000,000 / burn 400,000 = 20 months; tolerance max(1.0, 10 % of 20) = 2.0.
    record = make_record(cash_on_hand_usd=8_000_000, monthly_burn_usd=400_000, runway_months=runway)
    result = startup_schema.validate(record)
    if agrees:
        assert _valid(result).values["runway_months"] == runway
    else:
        assert _errors(result) == {"runway_months": "inconsistent"}


@pytest.mark.parametrize(
    ("runway", "agrees"),
    [(3.9, False), (4.0, True), (6.0, True), (6.1, False)],
)
def test_the_absolute_tolerance_holds_from_both_sides_where_it_is_the_larger(
    startup_schema: InputSchema, make_record: Record, runway: float, agrees: bool
) -> None:
    # 5 months implied: 10 % is 0.5, so the absolute tolerance of 1.0 applies.
    record = make_record(cash_on_hand_usd=2_000_000, monthly_burn_usd=400_000, runway_months=runway)
    result = startup_schema.validate(record)
    assert isinstance(result, ValidatedRecord) is agrees, result


def _bounded_inputs(schema: InputSchema) -> list[tuple[str, str, float]]:
    bounds = []
    for spec in schema.definition.fields:
        if not spec.accepts_input or spec.type not in ("number", "integer"):
            continue
        if spec.minimum is not None:
            bounds.append((spec.name, "minimum", spec.minimum))
        if spec.maximum is not None:
            bounds.append((spec.name, "maximum", spec.maximum))
    return bounds


def test_every_range_of_the_startup_schema_holds_from_both_sides(
    startup_schema: InputSchema, make_record: Record
) -> None:
    bounds = _bounded_inputs(startup_schema)
    assert len(bounds) >= 8
    for name, side, limit in bounds:
        integer = startup_schema.fields[name].type == "integer"
        step = 1 if integer else max(abs(limit) * 1e-9, 1e-9)
        outside = limit - step if side == "minimum" else limit + step
        on_the_edge = int(limit) if integer else limit
        refused = startup_schema.validate(
            make_record(**{name: int(outside) if integer else outside})
        )
        assert isinstance(refused, RowError), (name, side)
        assert {e.field: e.code for e in refused.errors}.get(name) == side, (name, side, refused)
        edge = startup_schema.validate(make_record(**{name: on_the_edge}))
        codes = {} if isinstance(edge, ValidatedRecord) else {e.field: e.code for e in edge.errors}
        # On the edge the range holds (another rule, such as an agreement, may not).
        assert codes.get(name) not in ("minimum", "maximum"), (name, side, edge)
