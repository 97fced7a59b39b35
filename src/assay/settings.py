"""The one typed configuration object for Assay.

Every setting is read here and nowhere else: environment variables prefixed with
``ASSAY_``, an optional ``.env`` file, and an optional TOML file named by
``ASSAY_CONFIG_FILE``. Precedence, highest first: explicit arguments, environment,
``.env``, TOML file, defaults.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
import uuid
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

CONFIG_FILE_ENV = "ASSAY_CONFIG_FILE"
SECRET_FIELDS = ("token_signing_key", "session_secret", "encryption_key")
# Backends of the URLs Assay maps onto the async drivers it ships (assay.core.db).
DATABASE_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")
REDIS_SCHEMES = ("redis", "rediss", "unix")
JOBS_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


class ConfigFileError(SettingsError):
    """The TOML settings file is named but missing, unreadable or not valid TOML."""


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The TOML file named by `config_file`, from an argument, the environment or `.env`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        # current_state holds what the sources above this one (arguments, environment,
        # .env) have set, so ASSAY_CONFIG_FILE may come from any of them.
        named = self.current_state.get("config_file")
        if not named:
            return {}
        path = Path(named)
        if not path.is_file():
            msg = f"ASSAY_CONFIG_FILE names {path}, which does not exist or is not a file."
            raise ConfigFileError(msg)
        try:
            return TomlConfigSettingsSource(self.settings_cls, toml_file=path)()
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path} is not valid TOML: {exc}."
            raise ConfigFileError(msg) from None
        except OSError as exc:
            msg = f"{path} cannot be read: {exc.strerror}."
            raise ConfigFileError(msg) from None


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class OidcProvider(BaseModel):
    """One OpenID Connect provider users may sign in with (authorization code + PKCE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="Short name used in the URLs /v1/auth/sso/<name>/start and /callback.",
    )
    issuer: str = Field(
        min_length=8,
        max_length=500,
        description="Issuer URL, exactly as the provider writes it in its ID tokens.",
    )
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"  # noqa: S105 - the name of a method, not a secret
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Email domains this provider is believed for; empty means any.",
    )
    org: str | None = Field(
        None,
        pattern=r"^[a-z0-9-]{1,63}$",
        description="Slug of the organisation users created by this provider join.",
    )
    role: str = Field("viewer", pattern=r"^[a-z0-9_-]{1,64}$")
    auto_create: bool = False
    allow_private_network: bool = Field(
        False,
        description="Let the provider's endpoints resolve to private addresses "
        "(an identity provider inside the company network).",
    )

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            value = ["openid", *value]
        if any(not scope or " " in scope for scope in value):
            msg = "scopes are single words"
            raise ValueError(msg)
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _normalise_domains(cls, value: list[str]) -> list[str]:
        return [domain.strip().lower().lstrip("@") for domain in value if domain.strip()]


class Settings(BaseSettings):
    """Effective configuration of one Assay process."""

    model_config = SettingsConfigDict(
        env_prefix="ASSAY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        # A rejected value may be a password inside a URL: errors name the setting only.
        hide_input_in_errors=True,
    )

    # --- environment -----------------------------------------------------------------
    env: Environment = Field(
        Environment.DEVELOPMENT,
        description="Deployment environment: development, test or production.",
    )
    debug: bool = Field(False, description="Verbose errors and logs; refused in production.")
    config_file: Path | None = Field(
        None,
        description="Optional TOML file with settings (read from ASSAY_CONFIG_FILE).",
    )
    data_dir: Path = Field(
        Path(".assay"),
        description="Directory for the SQLite database, generated secrets and artifacts.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Externally visible base URL; must be https in production. When unset, "
        "the address the server listens on (host and port; a wildcard host as loopback), "
        "so links in mails and the token audience follow `assay serve --port`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _public_url_from_the_listening_address(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("public_url"):
            return data
        fields = cls.model_fields
        host = str(data.get("host") or fields["host"].default)
        port = data.get("port") or fields["port"].default
        # A wildcard address is reached, on this machine, through loopback.
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104  # nosec B104
        if ":" in shown:
            shown = f"[{shown}]"
        return {**data, "public_url": f"http://{shown}:{port}"}

    # --- server ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP server binds to.")
    workers: int = Field(1, ge=1, le=64, description="Number of server worker processes.")
    worker_healthcheck_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=600,
        description="With several workers: how long a worker may take to answer the "
        "supervisor's health check (starting up included) before it is replaced.",
    )
    shutdown_grace_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="On SIGTERM, how long in-flight requests may take before being cut off.",
    )
    keepalive_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="How long an idle keep-alive connection is kept open."
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body accepted on ordinary routes, in bytes (413 above).",
    )
    docs_enabled: bool | None = Field(
        None,
        description="Serve /docs and /openapi.json; default on outside production.",
    )
    console_enabled: bool = Field(
        True,
        description="Serve the web console at /console/ (and redirect / there); off for an "
        "API-only deployment.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDR networks whose X-Forwarded-For header is believed.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Exact origins allowed for cross-origin requests; empty means same-origin.",
    )

    # --- http protection -------------------------------------------------------------
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names clients may address (exact, or *.example.org for subdomains); "
        "the public_url host is always allowed; enforced in production or whenever set.",
    )
    hsts_max_age_seconds: int = Field(
        31_536_000,
        ge=31_536_000,
        le=63_072_000,
        description="Strict-Transport-Security max-age sent on https responses (1-2 years).",
    )
    hsts_preload: bool = Field(
        False,
        description="Add `preload` to Strict-Transport-Security (after submitting the domain).",
    )
    cors_max_age_seconds: int = Field(
        600, ge=0, le=86_400, description="How long browsers may cache a CORS preflight answer."
    )
    csrf_token_max_age_seconds: int = Field(
        43_200,
        ge=300,
        le=604_800,
        description="How long a console CSRF token is accepted after it was issued; the "
        "console fetches a fresh one from GET /v1/auth/csrf-token.",
    )
    max_upload_bytes: int = Field(
        104_857_600,
        ge=1024,
        description="Largest body accepted on upload routes (model artifacts, CSV), in bytes.",
    )
    max_json_depth: int = Field(
        32, ge=2, le=256, description="Deepest nesting of arrays and objects in a JSON body (413)."
    )
    max_json_array_length: int = Field(
        10_000, ge=1, description="Most elements in any one array of a JSON body (413 above)."
    )
    max_header_bytes: int = Field(
        16_384,
        ge=4096,
        le=1_048_576,
        description="Largest request line plus headers the server reads, in bytes (431 above).",
    )
    header_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Time a client has to send the request line and headers before being cut off.",
    )
    body_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Longest a request body may stall (no byte arriving) before a 408 and close.",
    )
    max_concurrency: int | None = Field(
        None,
        ge=1,
        description="Connections and in-flight requests per worker before new ones get a 503; "
        "unset means unbounded.",
    )
    rate_limit_namespace: str = Field(
        "assay",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of rate-limit keys in Redis; deployments sharing one Redis need "
        "different values.",
    )
    rate_limit_auth_per_address: str = Field(
        "20/minute;200/hour",
        description="Authentication routes: limit per client address (limits notation).",
    )
    rate_limit_auth_per_account: str = Field(
        "10/minute;100/hour",
        description="Authentication routes: limit per account named in the request.",
    )
    rate_limit_scoring_per_key: str = Field(
        "1200/minute", description="Scoring routes: limit per API key (else user, else address)."
    )
    rate_limit_scoring_per_org: str = Field(
        "6000/minute;5000000/day",
        description="Scoring routes: quota per organisation, unless overridden for that org.",
    )
    rate_limit_org_overrides: dict[str, str] = Field(
        default_factory=dict,
        description='Per-organisation scoring quotas replacing the default, as JSON: {"<org id>": '
        '"100/minute;10000/day"}; a quota set in the database (assay admin org set-quota) '
        "takes precedence.",
    )
    org_quota_cache_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="How long a process reuses the per-organisation scoring quotas read "
        "from the database before reading them again.",
    )
    rate_limit_management: str = Field(
        "300/minute", description="Management routes: limit per user or API key."
    )
    rate_limit_default: str = Field(
        "600/minute",
        description="Every other route, 404s included: limit per principal, else per address.",
    )
    rate_limit_fail_open_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["scoring", "management", "default"],
        description="Rate-limit classes that let requests through when Redis is unreachable; "
        "the others (auth) answer 503.",
    )
    rate_limit_redis_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Timeout of each rate-limit call to Redis."
    )

    @field_validator("allowed_hosts", "rate_limit_fail_open_classes", mode="before")
    @classmethod
    def _split_http_protection_lists(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "rate_limit_auth_per_address",
        "rate_limit_auth_per_account",
        "rate_limit_scoring_per_key",
        "rate_limit_scoring_per_org",
        "rate_limit_management",
        "rate_limit_default",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        # Refuse a typo at start-up rather than on the first request that needs the limit.
        parse_many(value)
        return value

    @field_validator("rate_limit_org_overrides")
    @classmethod
    def _check_rate_limit_overrides(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for org_id, limit in value.items():
            try:
                # Canonical form: the limiter looks organisations up by str(UUID).
                key = str(uuid.UUID(org_id))
            except ValueError:
                msg = f"{org_id!r} is not an organisation id (a UUID)"
                raise ValueError(msg) from None
            parse_many(limit)
            checked[key] = limit
        return checked

    @field_validator("rate_limit_fail_open_classes")
    @classmethod
    def _check_rate_limit_classes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"auth", "scoring", "management", "default"})
        if unknown:
            msg = f"unknown rate-limit classes {unknown}; use auth, scoring, management, default"
            raise ValueError(msg)
        return value

    # --- database --------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL (postgresql://, mysql://, mariadb://, sqlite:///); "
        "default is a SQLite file in the data directory.",
    )
    allow_sqlite_in_production: bool = Field(
        False, description="Explicit opt-in to run production on SQLite."
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply pending migrations at start; default on in development and test.",
    )
    db_pool_size: int = Field(10, ge=1, le=500, description="Pooled connections kept open.")
    db_max_overflow: int = Field(
        10, ge=0, le=500, description="Extra connections allowed above the pool size."
    )
    db_pool_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a request waits for a pooled connection."
    )
    db_pool_recycle_seconds: int = Field(
        1800, ge=-1, description="Connections older than this are replaced (-1: never)."
    )
    db_pool_pre_ping: bool = Field(True, description="Test a pooled connection before use.")
    db_connect_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout for opening a new database connection."
    )
    db_application_name: str = Field(
        "assay",
        max_length=60,
        description="Name reported to PostgreSQL (pg_stat_activity.application_name).",
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        # Refused here, so every command names the setting instead of failing later.
        if value is None:
            return value
        try:
            backend = make_url(value).get_backend_name()
        except (ArgumentError, ValueError):
            msg = "not a database URL; expected e.g. postgresql://user@host/assay"
            raise ValueError(msg) from None
        if backend not in {*DATABASE_BACKENDS, "postgres"}:
            msg = f"unsupported database {backend!r}; use {', '.join(DATABASE_BACKENDS)}"
            raise ValueError(msg)
        return value

    # --- cache -----------------------------------------------------------------------
    redis_url: str | None = Field(
        None,
        description="Redis URL for the shared cache; unset means in-process cache.",
    )
    cache_max_entries: int = Field(
        10_000, ge=1, description="Capacity of the in-process cache before eviction."
    )
    health_check_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="Timeout of each dependency check in /readyz."
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            msg = f"not a Redis URL; use one of the schemes {', '.join(REDIS_SCHEMES)}"
            raise ValueError(msg)
        return value

    # --- secrets ---------------------------------------------------------------------
    token_signing_key: SecretStr | None = Field(
        None,
        description="Key that signs access tokens (>= 32 bytes); generated in development.",
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs console sessions and CSRF tokens; generated in development.",
    )
    encryption_key: SecretStr | None = Field(
        None,
        description="Secret the key-encryption key is derived from: it wraps the data keys "
        "that seal fields at rest (docs/keys.md); generated in development.",
    )
    key_refresh_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How stale a process's view of the data keys may be: before a request it "
        "looks at the keyring's generation when its last look is older (0: at every request).",
    )
    keys_reencrypt_in_process: bool = Field(
        True,
        description="Work waiting re-encryption runs (after a key rotation) in this process's "
        "background loop; any API or worker process may, one at a time holds a run.",
    )
    keys_reencrypt_batch_size: int = Field(
        500, ge=1, le=10000, description="Sealed values one re-encryption transaction re-seals."
    )
    keys_reencrypt_lease_seconds: float = Field(
        120.0,
        ge=5,
        le=3600,
        description="How long a re-encryption run stays with a worker that stopped renewing "
        "it before another process takes it over.",
    )

    # --- identity --------------------------------------------------------------------
    access_token_ttl_seconds: int = Field(
        900, ge=30, le=900, description="Lifetime of an access token (at most 15 minutes)."
    )
    refresh_token_ttl_days: int = Field(
        30, ge=1, le=365, description="Absolute lifetime of a session and its refresh tokens."
    )
    session_idle_timeout_minutes: int = Field(
        1440, ge=5, description="A session unused for this long ends (token and console)."
    )
    auth_state_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=5,
        description="How long (at most 5 s) a process may reuse a session's or API key's "
        "checked state; revocations are pushed through the cache at once.",
    )
    password_min_length: int = Field(
        15,
        ge=15,
        le=128,
        description="Minimum password length (at least 15); only an organisation that "
        "enforces MFA may allow shorter ones.",
    )
    password_min_length_with_mfa: int = Field(
        8,
        ge=8,
        le=128,
        description="Minimum length an organisation that enforces MFA may choose.",
    )
    password_min_strength: int = Field(
        3, ge=0, le=4, description="Lowest zxcvbn score (0-4) a new password must reach."
    )
    password_history_size: int = Field(
        5, ge=0, le=24, description="How many previous passwords may not be reused."
    )
    argon2_time_cost: int = Field(2, ge=1, le=20, description="Argon2id iterations.")
    argon2_memory_kib: int = Field(
        65536, ge=1024, description="Argon2id memory in KiB (production needs >= 47104)."
    )
    argon2_parallelism: int = Field(1, ge=1, le=16, description="Argon2id lanes.")
    lockout_threshold: int = Field(
        5, ge=1, le=50, description="Consecutive failures of one factor before a timed lock."
    )
    lockout_base_seconds: int = Field(
        60, ge=1, description="First lock duration; doubles with each further failure."
    )
    lockout_max_seconds: int = Field(900, ge=1, description="Longest timed lock.")
    lockout_hard_limit: int = Field(
        50,
        ge=2,
        le=99,
        description="Consecutive failures that lock the account until an admin or reset.",
    )
    mfa_challenge_ttl_seconds: int = Field(
        300, ge=30, le=1800, description="How long a pending MFA challenge stays valid."
    )
    signup_enabled: bool = Field(False, description="Allow self sign-up (unverified at first).")
    password_reset_ttl_minutes: int = Field(
        30, ge=5, le=30, description="How long a password-reset link stays valid (at most 30)."
    )
    email_verification_ttl_hours: int = Field(
        24, ge=1, le=168, description="How long an email-verification link stays valid."
    )
    invitation_ttl_days: int = Field(
        7, ge=1, le=30, description="How long an invitation to an organisation stays valid."
    )

    # --- single sign-on --------------------------------------------------------------
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list,
        description="OpenID Connect providers, as a JSON list of objects: name, issuer, "
        "client_id, client_secret, and optionally token_endpoint_auth_method, scopes, "
        "allowed_domains, org, role (default viewer), auto_create (default false), "
        "allow_private_network (default false). See docs/security.md.",
    )
    sso_state_ttl_seconds: int = Field(
        600,
        ge=60,
        le=1800,
        description="How long a started single sign-on may take before its state expires.",
    )
    sso_http_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="Timeout of each call to an identity provider."
    )
    sso_clock_skew_seconds: int = Field(
        60, ge=0, le=300, description="Clock difference tolerated when checking ID token times."
    )

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _parse_oidc_providers(cls, value: object) -> object:
        # The environment source decodes JSON itself; explicit values may be JSON too.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("oidc_providers")
    @classmethod
    def _check_oidc_providers(
        cls, value: list[OidcProvider], info: ValidationInfo
    ) -> list[OidcProvider]:
        names = [provider.name for provider in value]
        if len(set(names)) != len(names):
            msg = "oidc_providers names must be unique"
            raise ValueError(msg)
        production = info.data.get("env") == Environment.PRODUCTION
        for provider in value:
            if provider.auto_create and provider.org is None:
                msg = f"oidc provider {provider.name}: auto_create needs an org"
                raise ValueError(msg)
            # Plain http only for a provider on this machine, and never in production:
            # ID tokens and client secrets travel over these connections.
            if not provider.issuer.startswith("https://") and (
                production or not _is_loopback_url(provider.issuer)
            ):
                msg = f"oidc provider {provider.name}: the issuer must be an https URL"
                raise ValueError(msg)
        return value

    # --- outbound requests and webhooks ---------------------------------------------
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR) outbound requests (webhooks, identity providers) may "
        "reach although they are loopback, private, link-local or otherwise not public, "
        "e.g. 10.20.0.0/16 for receivers inside the company network. Empty: public only.",
    )
    outbound_connect_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Timeout for connecting to an outbound destination."
    )
    outbound_timeout_seconds: float = Field(
        15.0,
        gt=0,
        le=120,
        description="Longest an outbound request may take in all, from connect to last byte.",
    )
    outbound_max_response_bytes: int = Field(
        65_536,
        ge=1024,
        le=16_777_216,
        description="Most bytes of an outbound response body that are read; the rest is dropped.",
    )

    webhook_dispatcher_enabled: bool = Field(
        True,
        description="Run the webhook dispatcher (fan-out and delivery loop) in this process. "
        "Turn it off where a job engine schedules the same steps instead.",
    )
    webhook_poll_interval_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often the dispatcher looks for new events and due deliveries when "
        "nothing in this process woke it (events from other processes, retries).",
    )
    webhook_retry_schedule_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        max_length=20,
        description="Delays before each retry of a failed delivery (the Standard Webhooks "
        "schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last one it is dead.",
    )
    webhook_disable_after_failures: int = Field(
        50,
        ge=1,
        le=10_000,
        description="Consecutive failed attempts (across deliveries) after which an endpoint "
        "is disabled; a 410 Gone disables it at once.",
    )
    webhook_secret_grace_seconds: int = Field(
        86_400,
        ge=0,
        le=30 * 86_400,
        description="After a secret rotation, how long the previous secret still signs "
        "(both signatures are sent), so receivers can switch without losing messages.",
    )
    webhook_lease_seconds: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="How long a dispatcher holds a delivery it is sending; another takes "
        "it over after that (a crashed process). Keep above outbound_timeout_seconds.",
    )
    webhook_batch_size: int = Field(
        50, ge=1, le=1000, description="Events fanned out, or deliveries claimed, per step."
    )
    webhook_concurrency: int = Field(
        8, ge=1, le=256, description="Deliveries one dispatcher sends at the same time."
    )
    webhook_max_retry_after_seconds: int = Field(
        86_400,
        ge=1,
        description="Longest Retry-After (from a 429 or 503 answer) a delivery waits for.",
    )
    webhook_response_excerpt_bytes: int = Field(
        1024,
        ge=0,
        le=16_384,
        description="How much of a receiver's answer the delivery log keeps (sanitised).",
    )

    # --- evidence providers and lookups --------------------------------------------
    provider_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base URL by provider name, replacing the one in every organisation's "
        'definition of that provider (JSON), e.g. {"virustotal": "http://127.0.0.1:8900/'
        'virustotal/api/v3"} to use `assay mock-providers` or a forward proxy.',
    )
    provider_breaker_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed calls to one provider, for one organisation, within the window "
        "that open its circuit breaker (shared by every process through the cache).",
    )
    provider_breaker_window_seconds: float = Field(
        60.0, gt=0, le=3600, description="The window those failures are counted in."
    )
    provider_breaker_cooldown_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long an open breaker keeps a provider uncalled; then one call "
        "probes it, and a failure opens it again at once.",
    )
    provider_max_response_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=16_777_216,
        description="Largest provider answer read; a longer one is an error.",
    )
    redteam_max_attempts: int = Field(
        10_000,
        ge=1,
        le=100_000,
        description="Most attempts one scan may plan (probes x transform variants).",
    )
    redteam_probe_directories: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Directories of your own assay-probes/v1 files (*.yaml), offered to scans "
        "next to the shipped probe sets; a set name used twice is refused at start. JSON list "
        "or comma-separated.",
    )
    redteam_max_answer_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=16_777_216,
        description="Largest answer read from a scan target; a longer one is an error.",
    )
    provider_max_cooldown_seconds: int = Field(
        3600,
        ge=1,
        description="Longest Retry-After (from a provider's 429) honoured before calling it again.",
    )
    lookup_deadline_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Overall time a lookup waits for its providers; those still running "
        "then are reported as timeouts and the verdict is made from the others.",
    )
    watchlist_checker_enabled: bool = Field(
        True,
        description="Re-check watched indicators in this process (every API and worker "
        "process may; each due entry is claimed by one).",
    )
    watchlist_poll_interval_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often this process looks for due watch entries."
    )
    watchlist_batch_size: int = Field(
        20, ge=1, le=1000, description="Due watch entries one pass claims at most."
    )
    audit_forward: Literal["off", "stdout", "syslog", "http"] = Field(
        "off",
        description="Forward every sealed audit event, as one JSON line, to a SIEM: standard "
        "output, syslog over UDP (RFC 5424, facility log audit) or an HTTP sink (JSON Lines "
        "POSTs). The process that seals an event forwards it, once.",
    )
    audit_forward_syslog_address: str = Field(
        "127.0.0.1:514",
        pattern=r"^[A-Za-z0-9.-]{1,253}:\d{1,5}$",
        description="host:port of the syslog receiver (audit_forward = syslog).",
    )
    audit_forward_url: str | None = Field(
        None,
        max_length=2000,
        description="URL of the HTTP sink (audit_forward = http); reached through the outbound "
        "guard, so a private address must be in outbound_allowed_networks.",
    )
    audit_forward_token: SecretStr | None = Field(
        None, description="Bearer token sent to the HTTP sink, if it wants one."
    )
    audit_reads_flush_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often audited reads of sensitive data (answers, unsealed inputs, "
        "member lists...) are written to the trail from their buffer (also at shutdown).",
    )
    audit_chainer_enabled: bool = Field(
        True,
        description="Seal new audit events into their organisation's hash chain in this "
        "process (every API and worker process may; one seals a chain at a time).",
    )
    audit_chain_interval_seconds: float = Field(
        2.0, gt=0, le=3600, description="How often this process seals new audit events."
    )
    audit_chain_batch_size: int = Field(
        500, ge=1, le=10000, description="Audit events one sealing transaction takes at most."
    )
    audit_checkpoint_every: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Sign an audit checkpoint after this many new events in a chain.",
    )
    audit_checkpoint_interval_seconds: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        description="Sign an audit checkpoint at least this often while a chain has new events.",
    )
    lookup_model: str = Field(
        "threat-verdict",
        min_length=1,
        max_length=100,
        description="The organisation's model (alias production) that turns provider "
        "scores into a verdict; the threat-intelligence pack registers it.",
    )

    @field_validator("webhook_retry_schedule_seconds", mode="before")
    @classmethod
    def _split_retry_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _check_retry_schedule(cls, value: list[float]) -> list[float]:
        if any(delay < 0 or delay > 7 * 86_400 for delay in value):
            msg = "each retry delay is between 0 and 604800 seconds"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _forwarding_has_a_sink(self) -> Settings:
        if self.audit_forward == "http" and not self.audit_forward_url:
            msg = "audit_forward = http needs audit_forward_url"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Settings:
        # A lease shorter than one request would hand a delivery still being sent to a
        # second dispatcher: the receiver would get it twice for no reason.
        if self.webhook_lease_seconds <= self.outbound_timeout_seconds:
            msg = "webhook_lease_seconds must be longer than outbound_timeout_seconds"
            raise ValueError(msg)
        return self

    @field_validator("outbound_allowed_networks", "redteam_probe_directories", mode="before")
    @classmethod
    def _split_outbound_networks(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _check_outbound_networks(cls, value: list[str]) -> list[str]:
        invalid = []
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                invalid.append(entry)
        if invalid:
            msg = f"not a CIDR network: {', '.join(invalid)}"
            raise ValueError(msg)
        return value

    # --- mail ------------------------------------------------------------------------
    smtp_host: str | None = Field(
        None,
        description="SMTP server for outgoing mail; unset writes .eml files to "
        "<data_dir>/outbox outside production (production needs it).",
    )
    smtp_port: int = Field(
        587, ge=1, le=65535, description="SMTP server port (587 for STARTTLS, 465 for TLS)."
    )
    smtp_username: str | None = Field(
        None, description="SMTP user name; unset means no authentication."
    )
    smtp_password: SecretStr | None = Field(
        None, description="SMTP password, sent with the user name."
    )
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls",
        description="starttls (required, never opportunistic), tls (implicit, port 465), or "
        "none (only for a relay on the same host).",
    )
    smtp_from: str = Field("Assay <assay@localhost>", description="From address of outgoing mail.")
    smtp_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Timeout of each SMTP connection and command."
    )

    @field_validator("smtp_from")
    @classmethod
    def _check_smtp_from(cls, value: str) -> str:
        # A line break would let the value add headers to every message.
        _, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            msg = "smtp_from must be an address such as 'Assay <assay@example.org>'"
            raise ValueError(msg)
        return value

    # --- scoring ---------------------------------------------------------------------
    scoring_threads: int = Field(
        4, ge=1, le=256, description="Threads that run model calls, off the event loop."
    )
    predict_fast_path: bool = Field(
        True,
        description="Answer well-formed native predict requests without the framework's "
        "routing and dependency resolution: the same checks and answers for less CPU. "
        "False sends every request through the framework.",
    )
    predict_max_batch: int = Field(
        1000, ge=1, le=100_000, description="Most records one predict request may carry."
    )
    batch_max_size: int = Field(
        64,
        ge=1,
        le=4096,
        description="Most single-record predictions the micro-batcher merges into one model "
        "call; 1 turns merging off.",
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Longest a prediction waits to join a batch while another batch of the same "
        "model version is running; an idle model never waits.",
    )
    model_cache_entries: int = Field(
        64, ge=1, le=10_000, description="Loaded model versions kept in memory (LRU)."
    )
    model_cache_max_bytes: int = Field(
        1_073_741_824,
        ge=1_048_576,
        description="Total artifact bytes of the loaded versions kept in memory (LRU).",
    )
    model_preload: bool = Field(
        False, description="Load every aliased version at start instead of on first use."
    )
    model_resolution_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="How long a process reuses an alias-to-version lookup; alias moves "
        "reach other processes within this time.",
    )
    allow_pickle_models: bool = Field(
        False,
        description="Admit pickle/joblib artifacts, and then only signed by a trusted key.",
    )
    require_model_signatures: bool = Field(
        False, description="Refuse every artifact without a valid trusted signature."
    )
    skops_trusted_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Types a skops artifact may contain beyond skops's safe defaults, comma "
        "separated (for example sklearn.tree._tree.Tree); any other type is refused.",
    )
    model_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Native threads of one ONNX, LightGBM or XGBoost model call; concurrency "
        "comes from scoring_threads and micro-batching.",
    )
    prediction_records_sync: bool = Field(
        False,
        description="Write each prediction record in the request instead of in batches.",
    )
    prediction_flush_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="Longest time a prediction record waits in the buffer."
    )
    prediction_flush_max_rows: int = Field(
        500, ge=1, le=100_000, description="Buffered prediction records that force a flush."
    )
    prediction_cache_enabled: bool = Field(
        True,
        description="Answer a repeated single-record prediction (same organisation, model "
        "version digest, input and options) from the cache; hits are still recorded.",
    )
    prediction_cache_ttl_seconds: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="How long a cached prediction is served; a model's manifest may set "
        "its own (cache: {ttl_seconds: N}) or opt out (cache: off).",
    )
    prediction_cache_max_entry_bytes: int = Field(
        65_536,
        ge=256,
        le=4_194_304,
        description="Largest serialised prediction kept in the cache; larger ones are "
        "recomputed every time.",
    )
    prediction_cache_max_entries: int = Field(
        10_000,
        ge=1,
        description="Capacity of the in-process prediction cache (its own, so predictions "
        "never evict sessions or nonces); with redis_url the Redis server holds them.",
    )

    # --- jobs ------------------------------------------------------------------------
    jobs_broker: str | None = Field(
        None,
        description="Queue engine for jobs: redis://... or amqp://...; unset runs jobs in "
        "this process. With a broker, `assay worker` processes run them (they share the "
        "database and the data directory).",
    )
    jobs_queue: str = Field(
        "assay-jobs",
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="Name of the queue (Redis list, RabbitMQ queue) jobs travel on.",
    )
    jobs_chunk_rows: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Rows in one chunk of a job: the unit one worker takes at a time.",
    )
    jobs_checkpoint_rows: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Rows scored between two checkpoints; a chunk taken over resumes at the "
        "last one, and cancellation is seen there.",
    )
    jobs_lease_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How long a worker holds a chunk without reaching a checkpoint before "
        "another worker may take it over.",
    )
    jobs_max_attempts: int = Field(
        5, ge=1, le=50, description="Attempts at a job after transient failures before it fails."
    )
    jobs_retry_base_seconds: float = Field(
        1.0,
        ge=0,
        le=600,
        description="First retry delay after a transient failure; doubles on each attempt "
        "(with random jitter).",
    )
    jobs_retry_max_seconds: float = Field(
        60.0, ge=0, le=3600, description="Longest delay between two retries."
    )
    jobs_max_concurrent_per_org: int = Field(
        4, ge=1, le=1000, description="Queued or running jobs one organisation may have at once."
    )
    jobs_max_input_bytes: int = Field(
        268_435_456,
        ge=1024,
        description="Largest job input (uploaded CSV or JSONL, or inline records) in bytes.",
    )
    jobs_max_input_rows: int = Field(
        1_000_000, ge=1, le=100_000_000, description="Most rows one job input may hold."
    )
    jobs_max_input_columns: int = Field(
        500, ge=1, le=10_000, description="Most columns in a CSV job input."
    )
    jobs_events_poll_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often a job's event stream looks for progress to send.",
    )
    jobs_events_ping_seconds: float = Field(
        15.0, gt=0, le=300, description="Heartbeat comment interval of a job's event stream."
    )
    jobs_worker_concurrency: int = Field(
        2, ge=1, le=256, description="Chunks one `assay worker` process works on at once."
    )

    @field_validator("jobs_broker")
    @classmethod
    def _check_jobs_broker(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in JOBS_BROKER_SCHEMES:
            msg = f"not a job broker URL; use one of the schemes {', '.join(JOBS_BROKER_SCHEMES)}"
            raise ValueError(msg)
        return value

    # --- logging and telemetry -------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to the log."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="Log format; auto is JSON in production and readable console otherwise.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the separate, unauthenticated metrics listener; production "
        "refuses one that is not loopback.",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the separate metrics listener; 0 (default) turns it off.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scraper sends to GET /metrics on the main port "
        "(at least 32 bytes). Without it, only platform administrators can read /metrics "
        "there; organisations see their own usage at GET /v1/system/usage.",
    )
    metrics_model_series_limit: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Model versions, per process, that get their own series in the per-model "
        'metrics (assay_model_*); later ones are counted as model="other".',
    )
    otel_enabled: bool = Field(
        False,
        description="Export OpenTelemetry traces over OTLP/HTTP (needs the otel extra: "
        "pip install 'assay[otel]').",
    )
    otel_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces",
        description="OTLP/HTTP traces endpoint used when tracing is enabled.",
    )
    otel_service_name: str = Field("assay", description="service.name resource attribute.")
    sentry_dsn: SecretStr | None = Field(
        None,
        description="Sentry DSN; when set, unhandled errors are reported (scrubbed; needs the "
        "sentry extra: pip install 'assay[sentry]').",
    )
    sentry_traces_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of requests traced by Sentry."
    )

    @field_validator("trusted_proxies", "cors_origins", "skops_trusted_types", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        # Operators write lists in env vars as "a,b"; JSON lists still work.
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        invalid = []
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                invalid.append(entry)
        if invalid:
            msg = f"not an IP address or CIDR network: {', '.join(invalid)}"
            raise ValueError(msg)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _ConfigFileSource(settings_cls))

    # --- derived values --------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'assay.db').as_posix()}"

    @property
    def effective_docs_enabled(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    @property
    def effective_auto_migrate(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else not self.is_production

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format == "auto":
            return "json" if self.is_production else "console"
        return self.log_format


def _is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, `.env` and the TOML file, then apply overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
