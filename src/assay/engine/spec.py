"""A model version's specification: its kind and everything needed to build it, as JSON.

This is what a registry stores for a version next to its input schema and (for `ml`)
its artifact digest: `spec.model_dump(mode="json")` to store, `parse_model_spec` to
read back. Names of models are not part of the spec; they belong to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from assay.engine.bands import BandsDefinition
from assay.engine.definition_errors import DefinitionProblems
from assay.engine.ensemble import CeilingSpec, ComponentSpec, EnsembleDefinition
from assay.engine.formats import ArtifactFormat
from assay.engine.rules.definition import RulesDefinition
from assay.engine.runtimes.base import OutputSpec
from assay.engine.vectorize import FeatureSpec

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _SpecBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = Field(None, max_length=2000)
    bands: BandsDefinition | None = None


class MLModelSpec(_SpecBase):
    """An artifact in a safe format (or signed pickle), its features and output."""

    kind: Literal["ml"]
    format: ArtifactFormat
    features: list[str | FeatureSpec] | None = Field(None, min_length=1, max_length=5000)
    output: OutputSpec = Field(default_factory=OutputSpec)


class RulesModelSpec(_SpecBase):
    """A rules document (see `assay.engine.rules.model`)."""

    kind: Literal["rules"]
    rules: RulesDefinition


class EnsembleModelSpec(_SpecBase):
    """Weighted components with caps and ceilings (see `assay.engine.ensemble`)."""

    kind: Literal["ensemble"]
    components: list[ComponentSpec] = Field(min_length=1, max_length=50)
    ceilings: list[CeilingSpec] = Field(default_factory=list, max_length=50)

    def definition(self) -> EnsembleDefinition:
        return EnsembleDefinition(components=self.components, ceilings=self.ceilings)


ModelSpec = Annotated[MLModelSpec | RulesModelSpec | EnsembleModelSpec, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[MLModelSpec | RulesModelSpec | EnsembleModelSpec] = TypeAdapter(ModelSpec)


def parse_model_spec(
    document: Mapping[str, Any],
) -> MLModelSpec | RulesModelSpec | EnsembleModelSpec:
    """Parse a stored or uploaded spec; `InvalidModelDefinition` lists every problem."""
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        problems = DefinitionProblems("model specification")
        problems.add_pydantic(exc, document)
        raise problems.error() from None
