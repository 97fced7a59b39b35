"""The effective settings as an operator may see them: no secret, no password."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from assay.core.logging import _SENSITIVE_KEY
from assay.core.secrets_store import SECRETS_DIRNAME
from assay.settings import SECRET_FIELDS, Settings

MASK = "********"
GENERATED_MARK = "[generated, masked]"
NOT_YET_GENERATED_MARK = "[generated at first start]"
# Letters only, so SQLAlchemy's renderer leaves it as it is (it percent-encodes '*').
_PLACEHOLDER = "ASSAYMASKEDVALUE"


def _mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_SENSITIVE_KEY.search(k) for k, _ in pairs):
        return query
    return urlencode([(k, MASK if _SENSITIVE_KEY.search(k) else v) for k, v in pairs], safe="*")


def mask_url(url: str) -> str:
    """Hide the credentials of a URL: its whole user-info part and credential-like parameters.

    A password may hold '/', '?', '#' or even '@' unencoded, so the user-info is
    everything between '://' and the last '@': anything in doubt is masked, never shown.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    userinfo_end = rest.rfind("@")
    masked_userinfo = f"{MASK}@" if userinfo_end >= 0 else ""
    # Edited as text, not re-assembled by urllib, which rewrites schemes it does not know.
    location, question_mark, after = rest[userinfo_end + 1 :].partition("?")
    query, hash_mark, fragment = after.partition("#")
    shown_query = _mask_query(query)
    return (
        f"{scheme}://{masked_userinfo}{location}{question_mark}{shown_query}{hash_mark}{fragment}"
    )


def mask_database_url(url: str) -> str:
    """Hide the password and credential-like parameters of a SQLAlchemy database URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return MASK
    if "@" in (parsed.host or "") or "@" in (parsed.database or ""):
        # An unencoded '@' in the password: SQLAlchemy splits at the first one.
        return mask_url(url)
    if parsed.password is not None:
        parsed = parsed.set(password=_PLACEHOLDER)
    sensitive = [key for key in parsed.query if _SENSITIVE_KEY.search(key)]
    if sensitive:
        parsed = parsed.update_query_dict(dict.fromkeys(sensitive, _PLACEHOLDER))
    return parsed.render_as_string(hide_password=False).replace(_PLACEHOLDER, MASK)


def _shown(value: Any) -> Any:
    # Recursive, so a secret inside a nested model (an SSO provider's client secret)
    # is masked like a top-level one.
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, BaseModel):
        value = {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(key): _shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_shown(item) for item in value]
    return str(value)


def _generated_secret_state(settings: Settings, name: str) -> str:
    # Only reports; `config show` must not create the data directory or a secret.
    if (settings.data_dir / SECRETS_DIRNAME / name).is_file():
        return GENERATED_MARK
    return NOT_YET_GENERATED_MARK


def masked_settings(settings: Settings) -> dict[str, Any]:
    shown: dict[str, Any] = {
        name: _shown(getattr(settings, name)) for name in type(settings).model_fields
    }
    if settings.database_url is not None:
        shown["database_url"] = mask_database_url(settings.database_url)
    shown["effective_database_url"] = mask_database_url(settings.effective_database_url)
    if not settings.is_production:
        for name in SECRET_FIELDS:
            if getattr(settings, name) is None:
                shown[name] = _generated_secret_state(settings, name)
    return shown
