"""Request and response bodies of /v1/targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from assay.core.schemas import StrictRequest

TargetKind = Literal["openai_chat", "rest"]
PROMPT_SLOT = "{{prompt}}"
_PATH = r"^[A-Za-z0-9_-]{1,100}(\.[A-Za-z0-9_-]{1,100}){0,15}$"
_MAX_TEMPLATE_NODES = 200


def _slots(value: Any, depth: int = 0) -> tuple[int, int]:
    """(prompt slots, nodes) of a JSON body template; raises ValueError past the bounds."""
    if depth > 10:
        raise ValueError("the body template nests deeper than 10 levels")
    if isinstance(value, dict):
        found, nodes = 0, 1
        for key, item in value.items():
            if PROMPT_SLOT in key:
                raise ValueError("the prompt may be a value, never a key")
            slots, count = _slots(item, depth + 1)
            found, nodes = found + slots, nodes + count
        return found, nodes
    if isinstance(value, list):
        found, nodes = 0, 1
        for item in value:
            slots, count = _slots(item, depth + 1)
            found, nodes = found + slots, nodes + count
        return found, nodes
    if isinstance(value, str):
        if value == PROMPT_SLOT:
            return 1, 1
        if PROMPT_SLOT in value:
            # Splicing the prompt into a longer string would let it break out of that
            # string's meaning (a shell line, a query); it is always a whole JSON value.
            raise ValueError(f"{PROMPT_SLOT} must be a whole string value, not part of one")
        return 0, 1
    return 0, 1


class RestTemplate(StrictRequest):
    """How to ask a generic REST endpoint: the JSON body with the prompt as one value,
    and where the answer (and, if reported, the token usage) is in its reply."""

    method: Literal["POST", "PUT"] = "POST"
    body: dict[str, Any] = Field(
        description=f'The JSON body; exactly one string value is "{PROMPT_SLOT}".'
    )
    answer_path: str = Field(
        pattern=_PATH, max_length=500, description="Dotted path of the answer text."
    )
    usage_path: str | None = Field(
        None, pattern=_PATH, max_length=500, description="Dotted path of a token count."
    )

    @field_validator("body")
    @classmethod
    def _one_slot(cls, body: dict[str, Any]) -> dict[str, Any]:
        slots, nodes = _slots(body)
        if nodes > _MAX_TEMPLATE_NODES:
            raise ValueError(f"the body template has more than {_MAX_TEMPLATE_NODES} values")
        if slots != 1:
            raise ValueError(f'exactly one value must be "{PROMPT_SLOT}" (found {slots})')
        return body


class TargetSave(StrictRequest):
    kind: TargetKind
    url: str = Field(min_length=8, max_length=2000, description="The endpoint's full URL.")
    description: str = Field("", max_length=500)
    model: str | None = Field(None, min_length=1, max_length=200, validate_default=True)
    temperature: float | None = Field(None, ge=0, le=2)
    system_prompt: str | None = Field(
        None,
        max_length=20_000,
        description="openai_chat: the system prompt to test (sealed, write-only). Omit to "
        "keep the one set; send an empty string to clear it.",
    )
    rest: RestTemplate | None = Field(None, validate_default=True)
    credential_header: str = Field(
        "Authorization", pattern=r"^[A-Za-z0-9-]{1,100}$", max_length=100
    )
    credential_scheme: str = Field("Bearer", pattern=r"^[A-Za-z]{0,20}$", max_length=20)
    requests_per_minute: int = Field(60, ge=1, le=6000)
    concurrency: int = Field(4, ge=1, le=32)
    timeout_seconds: float = Field(30.0, ge=1, le=120)
    max_retries: int = Field(2, ge=0, le=5)

    # Field validators (not one model validator) so that each problem names its field.
    @field_validator("model")
    @classmethod
    def _model_for_chat(cls, model: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "openai_chat" and model is None:
            raise ValueError("an openai_chat target needs `model`")
        return model

    @field_validator("system_prompt")
    @classmethod
    def _system_prompt_for_chat(cls, prompt: str | None, info: ValidationInfo) -> str | None:
        if prompt and info.data.get("kind") == "rest":
            raise ValueError("`system_prompt` applies to openai_chat targets only")
        return prompt

    @field_validator("rest")
    @classmethod
    def _rest_for_rest(cls, rest: RestTemplate | None, info: ValidationInfo) -> RestTemplate | None:
        kind = info.data.get("kind")
        if kind == "rest" and rest is None:
            raise ValueError("a rest target needs `rest` (its body template and answer path)")
        if kind == "openai_chat" and rest is not None:
            raise ValueError("`rest` applies to rest targets only")
        return rest


class TargetCredentialSet(StrictRequest):
    credential: str | None = Field(
        ..., min_length=1, max_length=4096, description="The API key; null clears it."
    )


class TargetView(BaseModel):
    name: str
    kind: TargetKind
    url: str
    description: str
    model: str | None
    temperature: float | None
    rest: dict[str, Any] | None
    credential_header: str
    credential_scheme: str
    credential_set: bool
    system_prompt_set: bool
    requests_per_minute: int
    concurrency: int
    timeout_seconds: float
    max_retries: int
    created_at: datetime
    updated_at: datetime


class TargetCheck(BaseModel):
    """What the target answered to a harmless prompt."""

    ok: bool
    status: str
    detail: str | None
    latency_ms: float | None
    answer_excerpt: str | None
