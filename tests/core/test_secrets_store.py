"""Generated development secrets: written atomically, refused when damaged or exposed."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from assay.core.secrets_store import SECRETS_DIRNAME, SecretsStoreError, with_generated_secrets
from assay.settings import SECRET_FIELDS, Settings

STARTERS = 12


def _secrets_dir(data_dir: Path) -> Path:
    return data_dir / SECRETS_DIRNAME


def test_processes_starting_together_all_get_the_same_complete_secrets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    barrier = threading.Barrier(STARTERS)
    seen: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            settings = with_generated_secrets(Settings(data_dir=data_dir))
            seen.append(tuple(getattr(settings, n).get_secret_value() for n in SECRET_FIELDS))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(seen) == STARTERS
    assert len(set(seen)) == 1, "starters disagree about the secrets"
    for name, value in zip(SECRET_FIELDS, seen[0], strict=True):
        assert len(value) >= 32
        assert (_secrets_dir(data_dir) / name).read_text(encoding="utf-8") == value
    # No temporary file is left behind.
    assert sorted(p.name for p in _secrets_dir(data_dir).iterdir()) == sorted(SECRET_FIELDS)


@pytest.mark.parametrize("content", ["", "\n", "short-value"])
def test_an_empty_or_short_secret_file_is_refused_not_reused(tmp_path: Path, content: str) -> None:
    directory = _secrets_dir(tmp_path)
    directory.mkdir(parents=True, mode=0o700)
    damaged = directory / "session_secret"
    damaged.write_text(content, encoding="utf-8")
    damaged.chmod(0o600)
    with pytest.raises(SecretsStoreError) as refused:
        with_generated_secrets(Settings(data_dir=tmp_path))
    message = str(refused.value)
    assert str(damaged) in message
    assert "fewer than 32" in message
    assert "Delete it" in message
    assert damaged.read_text(encoding="utf-8") == content, "the file was changed"


def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    with_generated_secrets(Settings(data_dir=tmp_path))
    exposed = _secrets_dir(tmp_path) / "encryption_key"
    exposed.chmod(0o644)
    with pytest.raises(SecretsStoreError) as refused:
        with_generated_secrets(Settings(data_dir=tmp_path))
    assert "0644" in str(refused.value)
    assert f"chmod 600 {exposed}" in str(refused.value)
    assert stat.S_IMODE(exposed.stat().st_mode) == 0o644, "refused, not silently changed"


def test_secrets_given_in_the_settings_are_not_read_from_the_store(tmp_path: Path) -> None:
    given = {name: "g" * 40 + name for name in SECRET_FIELDS}
    settings = Settings(data_dir=tmp_path, **given)  # type: ignore[arg-type]
    assert with_generated_secrets(settings) is settings
    assert not _secrets_dir(tmp_path).exists()
