"""Checks that decide whether a configuration is fit to serve production traffic."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from assay.settings import SECRET_FIELDS, Settings

MIN_SECRET_BYTES = 32
MIN_ARGON2_MEMORY_KIB = 47104

# Values people paste from tutorials; refused even when long enough.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "supersecret",
        "your-secret-key",
        "your_secret_key",
        "yoursecretkey",
        "your-secret-key-here",
        "insecure",
        "development",
        "dev",
        "test",
        "default",
        "xxx",
        "todo",
    }
)


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in KNOWN_PLACEHOLDERS:
        return True
    if len(set(lowered)) <= 2:  # "aaaa…", "0000…", "abab…"
        return True
    return any(
        lowered.startswith(word) and len(lowered) < MIN_SECRET_BYTES * 2
        for word in ("changeme", "change-me", "your-secret", "insecure", "replace-me")
    )


def secret_problems(settings: Settings) -> list[str]:
    """Problems with the secrets, whatever the environment."""
    problems: list[str] = []
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        env_name = f"ASSAY_{name.upper()}"
        if value is None or not value.get_secret_value():
            problems.append(f"{env_name} is not set.")
            continue
        raw = value.get_secret_value()
        if len(raw.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{env_name} is shorter than {MIN_SECRET_BYTES} bytes.")
        elif _is_placeholder(raw):
            problems.append(f"{env_name} is a known placeholder value, not a secret.")
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is not None and (len(token.encode()) < MIN_SECRET_BYTES or _is_placeholder(token)):
        problems.append(
            f"ASSAY_METRICS_TOKEN is shorter than {MIN_SECRET_BYTES} bytes or a placeholder."
        )
    values = [
        getattr(settings, n).get_secret_value() for n in SECRET_FIELDS if getattr(settings, n)
    ]
    if len(values) != len(set(values)):
        problems.append("The secrets must all differ from one another.")
    return problems


def production_problems(settings: Settings) -> list[str]:
    """Every problem that would stop a production start, in a stable order."""
    problems = secret_problems(settings)
    if settings.debug:
        problems.append("ASSAY_DEBUG is on; debug mode is refused in production.")
    if "*" in settings.cors_origins:
        problems.append("ASSAY_CORS_ORIGINS contains '*'; list the exact allowed origins.")
    if settings.effective_database_url.startswith("sqlite") and not (
        settings.allow_sqlite_in_production
    ):
        problems.append(
            "The database is SQLite; use PostgreSQL or MariaDB, or set "
            "ASSAY_ALLOW_SQLITE_IN_PRODUCTION=true to accept a single-node deployment."
        )
    if settings.argon2_memory_kib < MIN_ARGON2_MEMORY_KIB:
        problems.append(
            f"ASSAY_ARGON2_MEMORY_KIB is below {MIN_ARGON2_MEMORY_KIB} (46 MiB, OWASP minimum)."
        )
    if urlsplit(settings.public_url).scheme != "https":
        problems.append("ASSAY_PUBLIC_URL is not https.")
    if not settings.smtp_host:
        problems.append(
            "ASSAY_SMTP_HOST is not set; password reset and invitations cannot send mail."
        )
    if settings.metrics_port and not _is_loopback(settings.metrics_host):
        problems.append(
            f"ASSAY_METRICS_HOST is {settings.metrics_host}, not a loopback address: the "
            "metrics listener has no authentication. Bind it to 127.0.0.1, or turn it off "
            "(ASSAY_METRICS_PORT=0) and scrape GET /metrics with a system:read API key."
        )
    problems.extend(_outbound_problems(settings.outbound_allowed_networks))
    return problems


# Where clouds answer instance-metadata requests (credentials among them).
_METADATA_ADDRESSES = (
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
)


def _outbound_problems(allowed: list[str]) -> list[str]:
    problems = []
    for entry in allowed:
        network = ipaddress.ip_network(entry.strip(), strict=False)
        if network.prefixlen == 0:
            problems.append(
                f"ASSAY_OUTBOUND_ALLOWED_NETWORKS contains {network}, which opens every "
                "address to webhooks; list the networks receivers live in."
            )
        elif any(address in network for address in _METADATA_ADDRESSES):
            problems.append(
                f"ASSAY_OUTBOUND_ALLOWED_NETWORKS contains {network}, which includes the "
                "cloud metadata address; webhooks could read the instance's credentials."
            )
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
