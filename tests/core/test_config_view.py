from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.core.config_view import (
    GENERATED_MARK,
    MASK,
    NOT_YET_GENERATED_MARK,
    mask_database_url,
    mask_url,
    masked_settings,
)
from assay.core.secrets_store import with_generated_secrets
from assay.settings import SECRET_FIELDS, Settings

from ..conftest import new_secret


def test_secrets_and_url_passwords_are_masked(tmp_path: Path) -> None:
    db_password, redis_password, dsn_key = new_secret(), new_secret(), new_secret()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql://assay:{db_password}@db.internal:5432/assay",
        redis_url=f"redis://:{redis_password}@cache.internal:6379/0",
        sentry_dsn=f"https://{dsn_key}@sentry.internal/4",
        token_signing_key=new_secret(),
        session_secret=new_secret(),
        encryption_key=new_secret(),
    )
    shown = masked_settings(settings)
    text = json.dumps(shown)
    for secret in (
        db_password,
        redis_password,
        dsn_key,
        settings.token_signing_key.get_secret_value(),  # type: ignore[union-attr]
        settings.session_secret.get_secret_value(),  # type: ignore[union-attr]
        settings.encryption_key.get_secret_value(),  # type: ignore[union-attr]
    ):
        assert secret not in text
    assert shown["database_url"] == f"postgresql://assay:{MASK}@db.internal:5432/assay"
    assert shown["effective_database_url"] == shown["database_url"]
    assert shown["redis_url"] == f"redis://{MASK}@cache.internal:6379/0"
    assert shown["token_signing_key"] == MASK
    assert shown["sentry_dsn"] == MASK


# Passwords with the characters that end a URL part: urlsplit stops at the first of them
# and used to print the rest of the password as host, path, query or fragment.
AWKWARD_PASSWORDS = ["Kq7/Zx9", "Kq7#Zx9", "Kq7?Zx9", "Kq7@Zx9", "Kq7/#?@Zx9", "Kq7%40Zx9"]


def _leaks(text: str) -> bool:
    return "Kq7" in text or "Zx9" in text


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_database_url_passwords_with_url_delimiters_are_masked(password: str) -> None:
    url = f"postgresql://assay:{password}@db.internal:5432/assay"
    masked = mask_database_url(url)
    assert not _leaks(masked), masked
    assert masked.endswith("db.internal:5432/assay")


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_other_url_passwords_with_url_delimiters_are_masked(password: str) -> None:
    for url in (
        f"redis://:{password}@cache.internal:6379/0",
        f"rediss://user:{password}@cache.internal:6380/1",
        f"https://user:{password}@otel.internal/v1/traces",
    ):
        masked = mask_url(url)
        assert not _leaks(masked), masked
        assert masked.startswith(url.split("://")[0] + f"://{MASK}@")


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_config_show_never_prints_an_awkward_database_password(
    tmp_path: Path, password: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"mysql://assay:{password}@db.internal/assay",
        redis_url=f"redis://:{password}@cache.internal/0",
    )
    assert not _leaks(json.dumps(masked_settings(settings)))


def test_mask_url_leaves_plain_urls_alone_and_masks_query_credentials() -> None:
    assert mask_url("sqlite:///.assay/assay.db") == "sqlite:///.assay/assay.db"
    assert mask_database_url("sqlite:///.assay/assay.db") == "sqlite:///.assay/assay.db"
    assert mask_url("http://127.0.0.1:4318/v1/traces") == "http://127.0.0.1:4318/v1/traces"
    masked = mask_url("postgresql://db/assay?sslmode=require&password=hunter2hunter2")
    assert "hunter2" not in masked
    assert "sslmode=require" in masked
    masked_db = mask_database_url("postgresql://db/assay?sslmode=require&password=hunter2hunter2")
    assert "hunter2" not in masked_db
    assert "sslmode=require" in masked_db
    assert mask_database_url("mysql://root@db.internal/assay") == "mysql://root@db.internal/assay"


def test_an_unparsable_database_url_is_masked_whole() -> None:
    assert mask_database_url("not a url at all") == MASK


def test_generated_development_secrets_are_shown_as_generated_not_null(tmp_path: Path) -> None:
    settings = Settings(env="development", data_dir=tmp_path / "data")
    before = masked_settings(settings)
    assert all(before[name] == NOT_YET_GENERATED_MARK for name in SECRET_FIELDS)
    assert not (tmp_path / "data").exists(), "config show must not create the data directory"

    with_generated_secrets(settings)
    after = masked_settings(settings)
    assert all(after[name] == GENERATED_MARK for name in SECRET_FIELDS)


def test_unset_production_secrets_stay_null(tmp_path: Path) -> None:
    shown = masked_settings(Settings(env="production", data_dir=tmp_path))
    assert all(shown[name] is None for name in SECRET_FIELDS)


def test_rate_limit_overrides_are_shown_as_json_objects(tmp_path: Path) -> None:
    overrides = {"0b9ac3b1-2f6c-4f43-9a53-5c1d8f0e7a21": "100/minute;10000/day"}
    shown = masked_settings(Settings(data_dir=tmp_path, rate_limit_org_overrides=overrides))
    assert shown["rate_limit_org_overrides"] == overrides
    assert json.loads(json.dumps(shown))["rate_limit_org_overrides"] == overrides


def test_nested_sso_client_secrets_are_masked(tmp_path: Path) -> None:
    client_secret = new_secret()
    settings = Settings(
        data_dir=tmp_path,
        oidc_providers=[
            {
                "name": "corp",
                "issuer": "https://idp.example.org",
                "client_id": "assay",
                "client_secret": client_secret,
            }
        ],
    )
    shown = masked_settings(settings)
    assert client_secret not in json.dumps(shown)
    assert shown["oidc_providers"][0]["client_secret"] == MASK
