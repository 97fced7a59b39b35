"""A provider document checked and compiled: its expressions parsed once, bounded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from assay.engine.documents import DocumentRefused, load_document
from assay.engine.expressions import (
    CompiledExpression,
    ExpressionDefinitionError,
    compile_expression,
)
from assay.indicators.schemas import IndicatorType
from assay.providers.definition import (
    FieldType,
    ProviderDefinition,
    RequestTemplate,
    definition_problems,
)
from assay.providers.plugins import PluginUnavailable, ProviderPlugin, load_plugin

# A representative non-null value per field type, for checking expressions at compile time.
_PROBES: dict[FieldType, Any] = {
    "number": 1.5,
    "integer": 2,
    "string": "text",
    "boolean": True,
    "list": ["a"],
}


class InvalidProviderDefinition(ValueError):
    """The document is not a valid provider; `problems` lists each with its path."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CompiledRequest:
    template: RequestTemplate
    score: CompiledExpression
    no_data_when: CompiledExpression | None


@dataclass(frozen=True, slots=True)
class CompiledProvider:
    definition: ProviderDefinition
    requests: Mapping[IndicatorType, CompiledRequest]
    plugin: ProviderPlugin | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def supports(self) -> tuple[IndicatorType, ...]:
        if self.plugin is not None:
            return tuple(self.plugin.supports)
        return self.definition.supports

    def answers_for(self, kind: IndicatorType) -> bool:
        return kind in self.supports

    def request_for(self, kind: IndicatorType) -> CompiledRequest | None:
        return self.requests.get(kind)


def compile_provider(document: Mapping[str, Any] | ProviderDefinition) -> CompiledProvider:
    """Check `document` and compile its expressions; raises InvalidProviderDefinition."""
    if isinstance(document, ProviderDefinition):
        definition = document
    else:
        try:
            definition = ProviderDefinition.model_validate(document)
        except ValidationError as exc:
            raise InvalidProviderDefinition(definition_problems(exc)) from None
    if definition.plugin is not None:
        try:
            return CompiledProvider(definition, {}, load_plugin(definition.plugin))
        except PluginUnavailable as exc:
            problem = {"field": "plugin", "code": "plugin_unavailable", "message": str(exc)}
            raise InvalidProviderDefinition([problem]) from None
    problems: list[dict[str, Any]] = []
    compiled: dict[IndicatorType, CompiledRequest] = {}
    for index, template in enumerate(definition.requests):
        probe = {name: _PROBES[field.type] for name, field in template.fields.items()}
        score = _compile(template.score, probe, "number", f"requests.{index}.score", problems)
        no_data = (
            _compile(
                template.no_data_when, probe, "bool", f"requests.{index}.no_data_when", problems
            )
            if template.no_data_when
            else None
        )
        if score is None:
            continue
        for kind in template.types:
            compiled[kind] = CompiledRequest(template, score, no_data)
    if problems:
        raise InvalidProviderDefinition(problems)
    return CompiledProvider(definition, compiled)


def _compile(
    source: str,
    probe: Mapping[str, Any],
    result: Any,
    path: str,
    problems: list[dict[str, Any]],
) -> CompiledExpression | None:
    try:
        return compile_expression(source, probe=probe, result=result)
    except ExpressionDefinitionError as exc:
        problems.append({"field": path, "code": "invalid_expression", "message": str(exc)})
        return None


def parse_provider_document(text: str) -> CompiledProvider:
    """A provider from YAML or JSON text, through the bounded document loader (no alias
    bombs, size and depth limits) that model manifests use."""
    try:
        document = load_document(text)
    except DocumentRefused as exc:
        raise InvalidProviderDefinition(
            [{"field": "definition", "code": exc.code, "message": str(exc)}]
        ) from None
    if not isinstance(document, dict):
        raise InvalidProviderDefinition(
            [{"field": "definition", "code": "type", "message": "a provider is a mapping"}]
        )
    return compile_provider(document)
