from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from assay.app import ConfigurationError, create_app
from assay.core.config_check import production_problems
from assay.core.secrets_store import with_generated_secrets
from assay.settings import SECRET_FIELDS, ConfigFileError, Environment, Settings

from .conftest import new_secret

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def _strong_production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "data_dir": tmp_path,
        "public_url": "https://assay.example.org",
        "database_url": "postgresql://assay@db.internal/assay",
        "smtp_host": "smtp.internal",
        "token_signing_key": new_secret(),
        "session_secret": new_secret(),
        "encryption_key": new_secret(),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_defaults_are_embedded_and_safe() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env is Environment.DEVELOPMENT
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.redis_url is None
    assert not settings.debug
    assert settings.cors_origins == []
    assert all(getattr(settings, name) is None for name in SECRET_FIELDS)


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_PORT", "9123")
    monkeypatch.setenv("ASSAY_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert settings.port == 9123
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_toml_file_is_read_below_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "assay.toml"
    config.write_text('port = 7001\nlog_level = "WARNING"\n', encoding="utf-8")
    monkeypatch.setenv("ASSAY_CONFIG_FILE", str(config))
    monkeypatch.setenv("ASSAY_LOG_LEVEL", "ERROR")
    settings = Settings()
    assert settings.port == 7001
    assert settings.log_level == "ERROR"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ASSAY_WORKERS=3\n", encoding="utf-8")
    assert Settings().workers == 3


def test_toml_file_named_in_dotenv_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASSAY_CONFIG_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "assay.toml"
    config.write_text("port = 7002\n", encoding="utf-8")
    (tmp_path / ".env").write_text(f"ASSAY_CONFIG_FILE={config}\n", encoding="utf-8")
    settings = Settings()
    assert settings.config_file == config
    assert settings.port == 7002


def test_toml_file_named_as_an_argument_is_read(tmp_path: Path) -> None:
    config = tmp_path / "assay.toml"
    config.write_text('log_level = "WARNING"\n', encoding="utf-8")
    assert Settings(_env_file=None, config_file=config).log_level == "WARNING"  # type: ignore[call-arg]


def test_a_missing_toml_file_is_an_error_not_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("ASSAY_CONFIG_FILE", str(missing))
    with pytest.raises(ConfigFileError, match="does not exist") as raised:
        Settings()
    assert str(missing) in str(raised.value)


def test_a_malformed_toml_file_is_an_error_naming_the_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "assay.toml"
    config.write_text('port = 7001\nlog_level = "WARNING\n', encoding="utf-8")
    monkeypatch.setenv("ASSAY_CONFIG_FILE", str(config))
    with pytest.raises(ConfigFileError, match="is not valid TOML") as raised:
        Settings()
    assert str(config) in str(raised.value)
    assert "line 2" in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///assay.db",
        "postgresql://assay@db/assay",
        "postgres://assay@db/assay",
        "postgresql+asyncpg://assay@db/assay",
        "mysql://assay@db/assay",
        "mariadb://assay@db/assay",
    ],
)
def test_supported_database_urls_are_accepted(url: str) -> None:
    assert Settings(_env_file=None, database_url=url).database_url == url  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oracle://scott@db/orcl", "unsupported database 'oracle'"),
        ("mssql://sa@db/assay", "unsupported database 'mssql'"),
        ("garbage", "not a database URL"),
        ("postgresql://assay@db:notaport/assay", "not a database URL"),
    ],
)
def test_unsupported_or_unparsable_database_urls_are_refused_at_load(
    url: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]


def test_a_refused_setting_never_echoes_its_value(tmp_path: Path) -> None:
    password = new_secret()
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, database_url=f"oracle://scott:{password}@db/orcl")  # type: ignore[call-arg]
    # What tracebacks and logs show of the error; `assay` commands print only the message.
    assert password not in str(raised.value)
    assert password not in repr(raised.value)


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    accepted = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, ::1, 192.168.1.7")  # type: ignore[call-arg]
    assert accepted.trusted_proxies == ["10.0.0.0/8", "::1", "192.168.1.7"]
    refusal = r"not an IP address or CIDR network: proxy\.internal"
    with pytest.raises(ValidationError, match=refusal):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8,proxy.internal")  # type: ignore[call-arg]


def test_redis_url_must_be_a_redis_url() -> None:
    for url in ("redis://cache/0", "rediss://cache:6380/0", "unix:///run/redis.sock"):
        assert Settings(_env_file=None, redis_url=url).redis_url == url  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not a Redis URL"):
        Settings(_env_file=None, redis_url="http://cache:6379")  # type: ignore[call-arg]


def test_development_secrets_are_generated_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = with_generated_secrets(Settings(data_dir=data_dir))
    second = with_generated_secrets(Settings(data_dir=data_dir))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "secrets").stat().st_mode) == 0o700
    values = set()
    for name in SECRET_FIELDS:
        secret_file = data_dir / "secrets" / name
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        value = getattr(first, name).get_secret_value()
        assert len(value) >= 32
        assert getattr(second, name).get_secret_value() == value
        values.add(value)
    assert len(values) == len(SECRET_FIELDS)
    assert production_problems(first.model_copy(update={"env": Environment.PRODUCTION})) != []


def test_production_is_never_given_generated_secrets(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path / "data")
    assert with_generated_secrets(settings) is settings
    assert not (tmp_path / "data").exists()


def test_strong_production_configuration_has_no_problems(tmp_path: Path) -> None:
    assert production_problems(_strong_production(tmp_path)) == []


def test_production_lists_every_problem_not_just_the_first(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        debug=True,
        cors_origins=["*"],
        token_signing_key="short",
        session_secret="changeme",
    )
    problems = production_problems(settings)
    joined = "\n".join(problems)
    assert "ASSAY_TOKEN_SIGNING_KEY is shorter than 32 bytes" in joined
    assert "ASSAY_SESSION_SECRET is shorter than 32 bytes" in joined
    assert "ASSAY_ENCRYPTION_KEY is not set" in joined
    assert "ASSAY_DEBUG" in joined
    assert "ASSAY_CORS_ORIGINS" in joined
    assert "SQLite" in joined
    assert "ASSAY_PUBLIC_URL is not https" in joined
    assert "ASSAY_SMTP_HOST is not set" in joined
    assert len(problems) == 8


@pytest.mark.parametrize(
    "placeholder",
    ["a" * 40, "changeme-changeme-changeme-changeme", "your-secret-key-here-please-change"],
)
def test_long_placeholder_secrets_are_refused(tmp_path: Path, placeholder: str) -> None:
    problems = production_problems(_strong_production(tmp_path, session_secret=placeholder))
    assert problems == ["ASSAY_SESSION_SECRET is a known placeholder value, not a secret."]


def test_identical_secrets_are_refused(tmp_path: Path) -> None:
    shared = new_secret()
    settings = _strong_production(
        tmp_path, token_signing_key=shared, session_secret=shared, encryption_key=shared
    )
    assert production_problems(settings) == ["The secrets must all differ from one another."]


def test_sqlite_in_production_needs_explicit_opt_in(tmp_path: Path) -> None:
    refused = _strong_production(tmp_path, database_url=None)
    assert any("SQLite" in p for p in production_problems(refused))
    accepted = _strong_production(tmp_path, database_url=None, allow_sqlite_in_production=True)
    assert production_problems(accepted) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "metrics.internal"])
def test_production_refuses_an_unauthenticated_metrics_listener_off_loopback(
    tmp_path: Path, host: str
) -> None:
    problems = production_problems(
        _strong_production(tmp_path, metrics_host=host, metrics_port=9464)
    )
    assert len(problems) == 1
    assert f"ASSAY_METRICS_HOST is {host}, not a loopback address" in problems[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_metrics_listener_or_none_is_accepted_in_production(
    tmp_path: Path, host: str
) -> None:
    listening = _strong_production(tmp_path, metrics_host=host, metrics_port=9464)
    assert production_problems(listening) == []
    # Off (the default), the host does not matter.
    assert production_problems(_strong_production(tmp_path, metrics_host="0.0.0.0")) == []


def test_the_metrics_listener_is_off_by_default() -> None:
    assert Settings(_env_file=None).metrics_port == 0  # type: ignore[call-arg]


def test_create_app_refuses_a_weak_production_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        create_app(Settings(env="production", data_dir=tmp_path))
    assert len(refused.value.problems) >= 5


def test_production_defaults_turn_docs_off_and_logs_to_json(tmp_path: Path) -> None:
    settings = _strong_production(tmp_path)
    assert not settings.effective_docs_enabled
    assert not settings.effective_auto_migrate
    assert settings.effective_log_format == "json"
    app = create_app(settings)
    assert app.openapi_url is None
    assert app.docs_url is None


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`ASSAY_{name.upper()}`" not in text]
    assert missing == [], f"undocumented settings (run `make docs-config`): {missing}"


def test_configuration_reference_is_up_to_date() -> None:
    from scripts.render_config_docs import render

    assert DOCS.read_text(encoding="utf-8") == render(), "run `make docs-config`"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_settings_fixture_never_uses_literal_secrets(
    settings_factory: Callable[..., Settings],
) -> None:
    first, second = settings_factory(), settings_factory()
    assert first.token_signing_key != second.token_signing_key


def test_workers_get_the_configured_time_to_answer_the_supervisor(
    settings_factory: Callable[..., Settings],
) -> None:
    # uvicorn replaces a worker that misses its health check; its default of 5 seconds
    # killed workers still importing model runtimes on a busy machine.
    from assay.server import uvicorn_options

    assert uvicorn_options(settings_factory())["timeout_worker_healthcheck"] == 60.0
    slow = settings_factory(worker_healthcheck_timeout_seconds=120)
    assert uvicorn_options(slow)["timeout_worker_healthcheck"] == 120
