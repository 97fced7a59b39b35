from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from assay.auth.passwords import Passwords, password_violations
from assay.settings import Settings
from tests.support.identity import Member, bearer, login, strong_password


def _codes(password: str, context: list[str] | None = None, min_length: int = 15) -> set[str]:
    return {
        v.code
        for v in password_violations(
            password, min_length=min_length, context=context or [], min_strength=3
        )
    }


def test_fourteen_characters_rejected_fifteen_accepted() -> None:
    assert _codes("tundra-cobalt-x") == set()  # 15
    assert _codes("tundra-cobalt-") == {"too_short"}  # 14


def test_length_is_counted_in_code_points_after_nfkc() -> None:
    # 15 code points of which several are multi-byte; NFKC folds the ligature "ﬁ" to "fi".
    assert "too_short" not in _codes("ménagère-élève-ß")
    assert _codes("ﬁ" * 7) == _codes("fi" * 7)


def test_common_passwords_are_rejected_with_their_own_code() -> None:
    assert "common_password" in _codes("1qaz2wsx3edc", min_length=8)
    assert "common_password" in _codes("iloveyou", min_length=8)


@pytest.mark.parametrize(
    "passphrase",
    ["correcthorsebatterystaple", "iloveyou12345", "thisisapassword", "passwordpassword"],
)
def test_breached_passphrases_are_refused_as_typed_or_in_other_case(passphrase: str) -> None:
    # Long enough and, to zxcvbn's single-word list, unknown: only the breach corpus knows.
    assert "common_password" not in _codes(passphrase, min_length=10)
    assert "breached_password" in _codes(passphrase, min_length=10)
    assert "breached_password" in _codes(passphrase.upper(), min_length=10)


def test_a_passphrase_no_breach_list_holds_is_accepted() -> None:
    assert "breached_password" not in _codes("tundra-cobalt-x-quiet-lantern")
    # Shorter than the corpus's entries: the common-passwords list's business.
    assert "breached_password" not in _codes("iloveyou", min_length=8)


def test_context_words_are_rejected() -> None:
    assert "contains_context_word" in _codes("assay-lantern-meadow-91")
    assert "contains_context_word" in _codes(
        "ada.lovelace-glacier-97", context=["ada.lovelace@example.org"]
    )
    assert "contains_context_word" in _codes("acme-orchid-copper-55", context=["Acme Ltd"])


def test_weak_but_long_passwords_are_rejected() -> None:
    assert _codes("qqqqqqqqqqqqqqqqqqqqx") == {"too_weak"}
    # A weak one that a breach list holds too is refused as breached first.
    assert _codes("aaaaaaaaaaaaaaaaaaaa") == {"breached_password"}


def test_overlong_password_is_rejected_not_truncated() -> None:
    assert "too_long" in _codes("x" * 1025)


async def test_argon2id_parameters_are_stored_and_rehash_is_detected(
    settings_factory: Callable[..., Settings],
) -> None:
    weak = Passwords(settings_factory(argon2_memory_kib=1024, argon2_time_cost=1))
    strong = Passwords(settings_factory(argon2_memory_kib=47104, argon2_time_cost=2))
    hashed = await weak.hash("tundra-cobalt-juniper")
    assert hashed.startswith("$argon2id$")
    assert "m=1024,t=1" in hashed
    assert await strong.verify(hashed, "tundra-cobalt-juniper")
    assert strong.needs_rehash(hashed)
    assert not weak.needs_rehash(hashed)


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
    client: httpx.AsyncClient, owner: Member
) -> None:
    mine = await login(client, owner)
    other = await login(client, owner)
    new_password = strong_password()
    wrong = await client.post(
        "/v1/me/password",
        json={"current_password": "not-it-at-all-really", "new_password": new_password},
        headers=bearer(mine["access_token"]),
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "current_password"
    changed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": new_password},
        headers=bearer(mine["access_token"]),
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/v1/me", headers=bearer(other["access_token"]))).status_code == 401
    assert (await client.get("/v1/me", headers=bearer(mine["access_token"]))).status_code == 200
    owner.password = new_password
    await login(client, owner)


async def test_new_password_names_every_failed_rule(
    client: httpx.AsyncClient, owner: Member, owner_token: str
) -> None:
    response = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": "assay"},
        headers=bearer(owner_token),
    )
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert {"too_short", "contains_context_word"} <= codes


async def test_the_last_five_passwords_cannot_be_reused(
    client: httpx.AsyncClient, owner: Member
) -> None:
    history = [owner.password]
    for _ in range(5):
        token = (await login(client, owner))["access_token"]
        new = strong_password()
        response = await client.post(
            "/v1/me/password",
            json={"current_password": owner.password, "new_password": new},
            headers=bearer(token),
        )
        assert response.status_code == 204, response.text
        owner.password = new
        history.append(new)
    token = (await login(client, owner))["access_token"]
    for old in history[-5:-1]:
        reused = await client.post(
            "/v1/me/password",
            json={"current_password": owner.password, "new_password": old},
            headers=bearer(token),
        )
        assert reused.status_code == 422
        assert reused.json()["errors"][0]["code"] == "reused_password"
    # The sixth-oldest is allowed again.
    allowed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": history[0]},
        headers=bearer(token),
    )
    assert allowed.status_code == 204, allowed.text


@pytest.mark.parametrize("bad", ["", "x" * 1025])
async def test_login_with_empty_or_oversized_password_is_a_4xx(
    client: httpx.AsyncClient, owner: Member, bad: str
) -> None:
    response = await client.post("/v1/auth/login", json={"email": owner.email, "password": bad})
    assert response.status_code in (401, 422)
