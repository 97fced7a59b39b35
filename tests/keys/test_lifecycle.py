"""The data-key lifecycle through the API: rotate, re-encrypt (and resume), retire; two
processes on one database; an unknown key id is a clear answer; only platform admins."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from assay.accounts.models import User
from assay.app import create_app
from assay.core.crypto import ciphertext_key_id, initial_data_key
from assay.core.db_types import utcnow
from assay.core.tenancy import across_tenants
from assay.keys.models import DataKey, KeyReencryption, RunState
from assay.keys.reencrypt import KeyMaintenance, Reencryptor
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.providers.models import ConfiguredProviderRow, credential_aad
from assay.providers.service import builtin_definition
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import (
    MakeMember,
    bearer,
    enrol_totp,
    events,
    login,
    platform_admin_token,
)
from tests.support.outbound import LoopbackOnlyBackend, StubResolver

PROVIDERS = ("abuseipdb", "virustotal", "urlhaus")


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    # Every request looks at the keyring's generation, and the tests work the
    # re-encryption runs themselves, two values per batch.
    return settings_factory(
        database_url=database_url,
        key_refresh_seconds=0,
        keys_reencrypt_in_process=False,
        keys_reencrypt_batch_size=2,
    )


@pytest.fixture
async def admin(client: httpx.AsyncClient, make_member: MakeMember) -> dict[str, str]:
    return bearer(await platform_admin_token(client, make_member))


async def _owner(client: httpx.AsyncClient, make_member: MakeMember) -> dict[str, str]:
    return bearer((await login(client, await make_member()))["access_token"])


async def _seal_credential(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, credential: str
) -> None:
    KNOWN_SECRETS.add(credential)
    saved = await client.put(
        f"/v1/providers/{name}", json={"definition": builtin_definition(name)}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    sealed = await client.put(
        f"/v1/providers/{name}/credential", json={"credential": credential}, headers=headers
    )
    assert sealed.status_code == 204, sealed.text


async def _credentials(app: FastAPI) -> list[ConfiguredProviderRow]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(
            across_tenants(select(ConfiguredProviderRow), "test reads sealed credentials")
        )
        return list(rows.scalars())


def _opened(app: FastAPI, row: ConfiguredProviderRow) -> str:
    assert row.credential_encrypted is not None
    aad = credential_aad(row.org_id, row.id, row.name)
    return str(app.state.identity.keyring.decrypt(row.credential_encrypted, aad).decode())


async def _seed(client: httpx.AsyncClient, make_member: MakeMember, count: int) -> dict[str, str]:
    """`count` provider credentials over as many organisations as it takes."""
    expected: dict[str, str] = {}
    headers: dict[str, str] = {}
    for index in range(count):
        if index % len(PROVIDERS) == 0:
            headers = await _owner(client, make_member)
        credential = f"credential-{index}-{base64.b32encode(bytes([index] * 5)).decode()}"
        await _seal_credential(client, headers, PROVIDERS[index % len(PROVIDERS)], credential)
        expected[credential] = PROVIDERS[index % len(PROVIDERS)]
    return expected


async def _status(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    answer = await client.get("/v1/admin/keys", headers=admin)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _key(status: dict[str, Any], key_id: str) -> dict[str, Any]:
    [key] = [key for key in status["keys"] if key["key_id"] == key_id]
    return key


async def _rotate(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    answer = await client.post("/v1/admin/keys/rotate", headers=admin)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _reencrypt(app: FastAPI, run_id: str, owner: str = "worker") -> KeyReencryption:
    worker = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker, owner
    )
    assert await worker.claim(uuid.UUID(run_id))
    return await worker.run(uuid.UUID(run_id))


async def test_rotation_seals_new_values_with_the_new_key_and_old_ones_still_open(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], make_member: MakeMember
) -> None:
    before = await _status(client, admin)
    [initial] = before["keys"]
    assert initial["state"] == "active"
    assert initial["origin"] == "imported"
    # The administrator's TOTP secret is sealed with the keyring too.
    assert initial["columns"]["users.totp_secret_encrypted"] == 1
    owner = await _owner(client, make_member)
    await _seal_credential(client, owner, "abuseipdb", "old-credential-7c1d0e")

    rotation = await _rotate(client, admin)
    new_id = rotation["key"]["key_id"]
    assert rotation["previous_key_id"] == initial["key_id"] != new_id
    assert rotation["reencryption"]["state"] == "queued"
    await _seal_credential(client, owner, "virustotal", "new-credential-92ab4f")

    rows = {row.name: row for row in await _credentials(app)}
    assert rows["abuseipdb"].credential_encrypted is not None
    assert rows["virustotal"].credential_encrypted is not None
    assert ciphertext_key_id(rows["abuseipdb"].credential_encrypted) == initial["key_id"]
    assert ciphertext_key_id(rows["virustotal"].credential_encrypted) == new_id
    assert _opened(app, rows["abuseipdb"]) == "old-credential-7c1d0e"
    assert _opened(app, rows["virustotal"]) == "new-credential-92ab4f"

    after = await _status(client, admin)
    assert after["active_key_id"] == new_id
    assert _key(after, initial["key_id"])["state"] == "decrypt_only"
    assert _key(after, new_id)["columns"] == {"providers.credential_encrypted": 1}
    [event] = await events(app, "data_key.rotated")
    assert event.org_id is None
    assert event.details["previous_key_id"] == initial["key_id"]
    assert event.details["key_id"] == new_id


async def test_reencryption_reseals_everything_and_resumes_after_an_interruption(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], make_member: MakeMember
) -> None:
    expected = await _seed(client, make_member, 5)
    old_id = (await _status(client, admin))["active_key_id"]
    rotation = await _rotate(client, admin)
    new_id, run_id = rotation["key"]["key_id"], rotation["reencryption"]["id"]
    first = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker, "first"
    )
    assert await first.claim(uuid.UUID(run_id))
    # The first worker does one batch (two values), then is killed.
    stopped = await first.run(uuid.UUID(run_id), max_batches=1)
    assert stopped.state == RunState.RUNNING
    assert stopped.total == 6  # five credentials and the administrator's TOTP secret
    assert 0 < stopped.done < stopped.total
    second = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker, "second"
    )
    assert not await second.claim(uuid.UUID(run_id)), "the first worker's lease still holds"
    progress = await client.get(f"/v1/admin/keys/reencryptions/{run_id}", headers=admin)
    assert progress.json()["done"] == stopped.done
    assert _key(await _status(client, admin), old_id)["sealed"] == 6 - stopped.done

    # Its lease runs out; the second worker takes the run over from the committed cursor.
    async with app.state.database.sessionmaker() as db:
        await db.execute(
            update(KeyReencryption).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
    assert await second.claim(uuid.UUID(run_id))
    finished = await second.run(uuid.UUID(run_id))
    assert finished.state == RunState.SUCCEEDED
    assert (finished.done, finished.failed) == (6, 0)

    status = await _status(client, admin)
    assert _key(status, old_id)["sealed"] == 0
    assert _key(status, new_id)["sealed"] == 6
    rows = await _credentials(app)
    assert {_opened(app, row): row.name for row in rows} == expected
    assert all(
        row.credential_encrypted and ciphertext_key_id(row.credential_encrypted) == new_id
        for row in rows
    )
    [event] = await events(app, "data_key.reencrypted")
    assert event.details["resealed"] == 6
    assert event.org_id is None


async def test_a_key_is_retired_only_when_nothing_uses_it(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], make_member: MakeMember
) -> None:
    await _seed(client, make_member, 2)
    old_id = (await _status(client, admin))["active_key_id"]
    rotation = await _rotate(client, admin)

    refused = await client.post(f"/v1/admin/keys/{old_id}/retire", headers=admin)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "urn:assay:problem:data-key-in-use"
    assert problem["sealed"] == 3
    assert problem["columns"] == {
        "providers.credential_encrypted": 2,
        "users.totp_secret_encrypted": 1,
    }
    assert "still seals 3 values" in problem["detail"]
    active = await client.post(f"/v1/admin/keys/{rotation['key']['key_id']}/retire", headers=admin)
    assert active.json()["type"] == "urn:assay:problem:data-key-not-retirable"
    unknown = await client.post("/v1/admin/keys/0badc0de/retire", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:assay:problem:data-key-not-found"
    assert await events(app, "data_key.retired") == []

    await _reencrypt(app, rotation["reencryption"]["id"])
    retired = await client.post(f"/v1/admin/keys/{old_id}/retire", headers=admin)
    assert retired.status_code == 200, retired.text
    assert retired.json()["state"] == "retired"
    async with app.state.database.sessionmaker() as db:
        key = await db.get(DataKey, old_id)
        assert key is not None
        assert key.wrapped_key is None  # the material is erased
    assert old_id not in app.state.identity.keyring.key_ids
    [event] = await events(app, "data_key.retired")
    assert event.target_id == old_id
    again = await client.post(f"/v1/admin/keys/{old_id}/retire", headers=admin)
    assert again.json()["type"] == "urn:assay:problem:data-key-not-retirable"


async def test_a_value_of_an_unknown_key_is_a_clear_answer_not_a_500(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    member = await make_member(platform_admin=True)
    restricted = (await login(client, member))["access_token"]
    await enrol_totp(client, restricted)
    async with app.state.database.sessionmaker() as db:
        user = await db.get(User, member.user_id)
        assert user is not None
        assert user.totp_secret_encrypted is not None
        await db.execute(
            update(User)
            .where(User.id == member.user_id)
            .values(totp_secret_encrypted=b"\xff\xff\xff\xff" + user.totp_secret_encrypted[4:])
        )
        await db.commit()
    challenge = (await login(client, member))["challenge"]
    answer = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": "123456"})
    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:assay:problem:dependency-unavailable"
    assert "cannot be opened" in answer.json()["detail"]


@pytest.fixture
async def second_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Another process of the same installation: same settings, same database."""
    other = create_app(settings)
    outbound = OutboundClient(
        OutboundPolicy.from_settings(settings),
        resolver=StubResolver(),
        network_backend=LoopbackOnlyBackend(),
    )
    other.state.webhooks.outbound = outbound
    other.state.providers.caller.outbound = outbound
    other.state.targets.client.outbound = outbound
    async with other.router.lifespan_context(other):
        yield other


async def test_a_rotation_through_one_process_reaches_the_next_write_of_another(
    app: FastAPI,
    second_app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    make_member: MakeMember,
) -> None:
    member = await make_member()
    transport = httpx.ASGITransport(app=second_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        owner = bearer((await login(other, member))["access_token"])
        await _seal_credential(other, owner, "abuseipdb", "before-rotation-31d2aa")
        old_id = second_app.state.identity.keyring.active_key_id

        new_id = (await _rotate(client, admin))["key"]["key_id"]
        # The second process has not looked yet; its next request does, before it seals.
        assert second_app.state.identity.keyring.active_key_id == old_id
        await _seal_credential(other, owner, "virustotal", "after-rotation-8e0c4b")

    rows = {row.name: row for row in await _credentials(app)}
    assert rows["virustotal"].credential_encrypted is not None
    assert ciphertext_key_id(rows["virustotal"].credential_encrypted) == new_id
    # Each process opens what the other sealed, under either key.
    assert _opened(second_app, rows["abuseipdb"]) == "before-rotation-31d2aa"
    assert _opened(app, rows["virustotal"]) == "after-rotation-8e0c4b"


async def test_only_platform_administrators_manage_the_keys(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    owner = await _owner(client, make_member)
    for method, path in (
        ("GET", "/v1/admin/keys"),
        ("POST", "/v1/admin/keys/rotate"),
        ("POST", "/v1/admin/keys/00000000/retire"),
    ):
        answer = await client.request(method, path, headers=owner)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["type"] == "urn:assay:problem:forbidden"
        assert (await client.request(method, path)).status_code == 401


async def test_no_answer_event_or_log_line_carries_key_material(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _seed(client, make_member, 1)
    answers = [await _rotate(client, admin)]
    run_id = answers[0]["reencryption"]["id"]
    await _reencrypt(app, run_id)
    old_id = answers[0]["previous_key_id"]
    retired = await client.post(f"/v1/admin/keys/{old_id}/retire", headers=admin)
    answers.append(retired.json())
    answers.append(await _status(client, admin))

    keeper = app.state.identity.keeper
    # The imported key (now retired) is derived from the secret; the new one is unwrapped.
    material = [initial_data_key(app.state.settings.encryption_key.get_secret_value())]
    async with app.state.database.sessionmaker() as db:
        for key in (await db.execute(select(DataKey))).scalars():
            if key.wrapped_key is not None:
                material.append(await keeper.provider.unwrap(key.key_id, key.wrapped_key))
    assert len(material) == 2
    forms = {
        form
        for raw in material
        for form in (
            raw.hex(),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        )
    }
    # The session-wide log check fails the run if any of these ever reaches the log.
    KNOWN_SECRETS.update(forms)
    recorded = [
        event.details
        for action in ("data_key.rotated", "data_key.reencrypted", "data_key.retired")
        for event in await events(app, action)
    ]
    texts = [str(answers), str(recorded), caplog.text]
    for text in texts:
        assert not any(form in text for form in forms)


async def test_the_maintenance_loop_works_a_queued_run_to_its_end(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], make_member: MakeMember
) -> None:
    await _seed(client, make_member, 3)
    rotation = await _rotate(client, admin)
    # What every process's background loop does when in-process re-encryption is on.
    worker = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker
    )
    maintenance = KeyMaintenance(app.state.identity.keeper, worker)
    await maintenance.step()
    run = await client.get(
        f"/v1/admin/keys/reencryptions/{rotation['reencryption']['id']}", headers=admin
    )
    assert run.json()["state"] == "succeeded"
    assert run.json()["done"] == run.json()["total"] == 4
    assert _key(await _status(client, admin), rotation["previous_key_id"])["sealed"] == 0
    assert await worker.run_pending() == 0  # nothing left to claim


async def test_a_stopping_process_ends_its_run_after_the_batch_and_releases_it(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], make_member: MakeMember
) -> None:
    await _seed(client, make_member, 5)
    rotation = await _rotate(client, admin)
    run_id = uuid.UUID(rotation["reencryption"]["id"])
    worker = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker, "first"
    )
    done_batches: list[int] = []

    def stop_after_the_first_batch(run: KeyReencryption) -> None:
        done_batches.append(run.done)
        worker.stopping = True  # what KeyMaintenance.stop() sets as the process stops

    assert await worker.claim(run_id)
    stopped = await worker.run(run_id, progress=stop_after_the_first_batch)
    assert stopped.state == RunState.RUNNING
    assert len(done_batches) == 1
    assert 0 < stopped.done < stopped.total
    # run_pending releases what it stopped: another process claims it at once, no lease
    # to wait out, and finishes it from the committed cursor.
    await worker.release(run_id)
    successor = Reencryptor(
        app.state.settings, app.state.identity.keeper, app.state.database.sessionmaker, "second"
    )
    assert await successor.run_pending() == 1
    progress = await client.get(f"/v1/admin/keys/reencryptions/{run_id}", headers=admin)
    assert progress.json()["state"] == "succeeded"
    assert progress.json()["done"] == progress.json()["total"]
    assert not await worker.run_pending(), "a stopping worker claims nothing new"
