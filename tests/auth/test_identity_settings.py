"""Identity settings cannot be loosened past the promises."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from assay.settings import Settings


@pytest.mark.parametrize("value", [8, 14])
def test_the_global_password_minimum_cannot_go_below_15(
    settings_factory: Callable[..., Settings], value: int
) -> None:
    with pytest.raises(ValidationError, match="password_min_length"):
        settings_factory(password_min_length=value)
    assert settings_factory(password_min_length=15).password_min_length == 15


@pytest.mark.parametrize("value", [5.5, 30])
def test_the_auth_state_cache_is_at_most_a_few_seconds(
    settings_factory: Callable[..., Settings], value: float
) -> None:
    with pytest.raises(ValidationError, match="auth_state_cache_seconds"):
        settings_factory(auth_state_cache_seconds=value)
    assert settings_factory(auth_state_cache_seconds=5).auth_state_cache_seconds == 5
    assert settings_factory().auth_state_cache_seconds <= 5


def test_quota_overrides_are_keyed_by_organisation_ids(
    settings_factory: Callable[..., Settings],
) -> None:
    org = uuid.uuid4()
    with pytest.raises(ValidationError, match="not an organisation id"):
        settings_factory(rate_limit_org_overrides={"acme": "10/minute"})
    with pytest.raises(ValidationError):
        settings_factory(rate_limit_org_overrides={str(org): "ten a minute"})
    # Any spelling of the id works; it is kept in the form the limiter looks up.
    loaded = settings_factory(rate_limit_org_overrides={org.hex.upper(): "10/minute"})
    assert loaded.rate_limit_org_overrides == {str(org): "10/minute"}


def test_quota_overrides_from_the_environment(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    org = uuid.uuid4()
    monkeypatch.setenv("ASSAY_RATE_LIMIT_ORG_OVERRIDES", f'{{"{org}": "5/minute"}}')
    assert settings_factory().rate_limit_org_overrides == {str(org): "5/minute"}
    monkeypatch.setenv("ASSAY_RATE_LIMIT_ORG_OVERRIDES", '{"not-a-uuid": "5/minute"}')
    with pytest.raises(ValidationError, match="not an organisation id"):
        settings_factory()
