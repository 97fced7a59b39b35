"""Organisation B never sees or touches organisation A's objects, on any route."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import (
    Executable,
    Select,
    Table,
    column,
    delete,
    exists,
    func,
    literal,
    select,
    table,
    text,
    update,
)
from sqlalchemy.orm import aliased

from assay.accounts.models import User
from assay.api_keys.models import ApiKey
from assay.auth.public_routes import is_public
from assay.core.db import Base
from assay.core.principal import Principal
from assay.core.routes import iter_api_routes
from assay.core.tenancy import (
    ORG_LINKED_TABLES,
    OrganisationScope,
    TenantOwned,
    TenantScopeError,
    across_tenants,
    scope_statement,
    scoped,
    tenant_table_names,
)
from assay.lookups.models import Lookup
from assay.orgs.models import Membership, Organisation
from assay.predictions.models import PredictionRecord
from assay.providers.service import builtin_definition
from assay.scans.models import Scan
from tests.support.identity import MakeMember, bearer, login, new_member
from tests.support.models import RULES_MANIFEST, register_rules_model

from ..conftest import KNOWN_SECRETS

# Valid bodies, so that a 404 cannot be a validation error in disguise.
BODIES = {
    "/v1/org/members/{user_id}": b'{"role": "viewer"}',
    "/v1/models/{name}/aliases/{alias}": b'{"version": 1}',
    "/v1/models/{name}/predict": b'{"record": {"amount": 1, "country": "US"}}',
}
_OIP_INFER = json.dumps(
    {
        "inputs": [
            {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]},
            {"name": "country", "shape": [1], "datatype": "BYTES", "data": ["US"]},
        ]
    }
).encode()
BODIES["/v2/models/{name}/infer"] = _OIP_INFER
BODIES["/v2/models/{name}/versions/{version}/infer"] = _OIP_INFER
BODIES["/v1/providers/{name}/credential"] = json.dumps({"credential": "b-guesses-a-key"}).encode()
FORMS = {"/v1/models/{name}/versions": {"manifest": json.dumps(RULES_MANIFEST)}}


def _provider(name: str, title: str) -> bytes:
    return json.dumps(
        {"definition": {**builtin_definition("abuseipdb"), "name": name, "title": title}}
    ).encode()


def _target(name: str, description: str) -> bytes:
    del name  # a target's name is the URL's
    body = {
        "kind": "openai_chat",
        "url": "https://93.184.215.14/v1/chat/completions",
        "model": "m",
        "description": description,
    }
    return json.dumps(body).encode()


# Routes that create or replace by name inside the caller's own organisation: another
# organisation's PUT makes its own object and leaves A's as it was (checked below); the
# body to send, and the field that tells whose object it is.
OWN_NAMESPACE_PUTS: dict[str, tuple[Callable[[str, str], bytes], str]] = {
    "/v1/providers/{name}": (_provider, "title"),
    "/v1/targets/{name}": (_target, "description"),
}
BODIES["/v1/targets/{name}/credential"] = json.dumps({"credential": "b-guesses-a-key"}).encode()


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


async def _populate(app: FastAPI, client: httpx.AsyncClient, token: str) -> dict[str, str]:
    """Create one of every kind of tenant object; return ids by path-parameter name."""
    key = await client.post(
        "/v1/org/api-keys", json={"name": "a", "scopes": ["members:read"]}, headers=bearer(token)
    )
    KNOWN_SECRETS.add(key.json()["key"])
    sessions = await client.get("/v1/org/sessions", headers=bearer(token))
    members = await client.get("/v1/org/members", headers=bearer(token))
    invitation = await client.post(
        "/v1/org/invitations",
        json={"email": f"guest-{uuid.uuid4().hex[:6]}@example.org", "role": "viewer"},
        headers=bearer(token),
    )
    assert invitation.status_code == 201, invitation.text
    from assay.engine.integrity import generate_publisher_key, public_key_base64

    publisher = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "p", "public_key": public_key_base64(generate_publisher_key().public_key())},
        headers=bearer(token),
    )
    assert publisher.status_code == 201, publisher.text
    model_name = f"model-{uuid.uuid4().hex[:8]}"
    registered = await register_rules_model(client, token, name=model_name)
    assert registered.status_code == 201, registered.text
    job = await client.post(
        "/v1/jobs",
        json={"kind": "batch_score", "params": {"model": model_name, "records": [{"amount": 1}]}},
        headers=bearer(token),
    )
    assert job.status_code == 202, job.text
    # A public address literal: accepted without resolving, and never called here (the
    # dispatcher is off in tests), but its test message leaves a delivery in the log.
    webhook = await client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "event_types": ["job.succeeded"]},
        headers=bearer(token),
    )
    assert webhook.status_code == 201, webhook.text
    KNOWN_SECRETS.add(webhook.json()["secret"])
    delivery = await client.post(f"/v1/webhooks/{webhook.json()['id']}/test", headers=bearer(token))
    assert delivery.status_code == 202, delivery.text
    # A provider named like the model (both are addressed as {name}), and a lookup,
    # written directly: running one needs the threat pack, tested in tests/lookups.
    provider = await client.put(
        f"/v1/providers/{model_name}",
        content=_provider(model_name, "A's own"),
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert provider.status_code == 200, provider.text
    org_id = (await client.get("/v1/org", headers=bearer(token))).json()["id"]
    lookup_id = uuid.uuid4()
    async with app.state.database.sessionmaker() as db, db.begin():
        db.add(
            Lookup(
                id=lookup_id,
                org_id=uuid.UUID(org_id),
                indicator="1.1.1.1",
                indicator_digest="0" * 64,
                indicator_type="ipv4",
                verdict="clean",
                results=[],
            )
        )
    watched = await client.post(
        "/v1/watchlist", json={"indicator": "1.1.1.1"}, headers=bearer(token)
    )
    assert watched.status_code == 201, watched.text
    # A target named like the model too, and a scan of it written directly (running one
    # needs the red-team pack and a target that answers: tests/scans).
    target = await client.put(
        f"/v1/targets/{model_name}",
        content=_target(model_name, "A's own"),
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert target.status_code == 200, target.text
    scan_id = uuid.uuid4()
    async with app.state.database.sessionmaker() as db, db.begin():
        db.add(
            Scan(
                id=scan_id,
                org_id=uuid.UUID(org_id),
                job_id=uuid.UUID(job.json()["id"]),
                target_id=uuid.uuid4(),
                target_name=model_name,
                target_kind="openai_chat",
                target_url="https://93.184.215.14/v1/chat/completions",
                probe_sets=[],
                transforms=[],
                detector_alias="production",
                max_requests=1,
                concurrency=1,
                marker="ASSAY-MK-TEST",
                canary="ASSAY-CN-TEST",
            )
        )
    # A prediction record with a sealed input, to reveal.
    scored = await client.post(
        f"/v1/models/{model_name}/predict",
        json={"record": {"amount": 1, "country": "US", "email": "a@example.org"}},
        headers=bearer(token),
    )
    assert scored.status_code == 200, scored.text
    await app.state.predictions.recorder.flush()
    async with app.state.database.sessionmaker() as db:
        record_id = await db.scalar(
            across_tenants(
                select(PredictionRecord.id).where(PredictionRecord.org_id == uuid.UUID(org_id)),
                "test: A's record",
            )
        )
    return {
        "record_id": str(record_id),
        "scan_id": str(scan_id),
        "entry_id": watched.json()["id"],
        "lookup_id": str(lookup_id),
        "job_id": job.json()["id"],
        "webhook_id": webhook.json()["id"],
        "delivery_id": delivery.json()["id"],
        "key_id": key.json()["id"],
        "session_id": sessions.json()[0]["id"],
        "user_id": members.json()[0]["user_id"],
        "name": model_name,
        "version": "1",
        "alias": "production",
        "invitation_id": invitation.json()["id"],
        "fingerprint": publisher.json()["fingerprint"],
    }


async def test_org_b_gets_404_on_every_route_naming_org_a_objects(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    a = await make_member()
    b = await make_member()
    token_a = (await login(client, a))["access_token"]
    token_b = (await login(client, b))["access_token"]
    ids_a = await _populate(app, client, token_a)
    await _populate(app, client, token_b)

    checked = 0
    for route in iter_api_routes(app):
        names = _PARAM.findall(route.path)
        if not names or route.path.startswith("/v1/admin") or route.path.startswith("/v1/me"):
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD" or is_public(method, route.path):
                continue
            unknown = [n for n in names if n not in ids_a]
            assert not unknown, f"teach this test the ids for {route.path}: {unknown}"
            path = _PARAM.sub(lambda m: ids_a[m.group(1)], route.path)
            if route.path in OWN_NAMESPACE_PUTS and method == "PUT":
                body_of, owner_field = OWN_NAMESPACE_PUTS[route.path]
                mine = await client.put(
                    path,
                    content=body_of(ids_a["name"], "B's own"),
                    headers={**bearer(token_b), "content-type": "application/json"},
                )
                assert mine.status_code == 200, mine.text
                theirs = await client.get(path, headers=bearer(token_a))
                assert theirs.json()[owner_field] == "A's own"
                # B's own object goes again, so the walk's other routes find nothing of B's.
                removed = await client.delete(path, headers=bearer(token_b))
                assert removed.status_code == 204
                continue
            if route.path in FORMS and method == "POST":
                response = await client.post(path, data=FORMS[route.path], headers=bearer(token_b))
            else:
                response = await client.request(
                    method,
                    path,
                    headers={**bearer(token_b), "content-type": "application/json"},
                    content=BODIES.get(route.path, b"{}")
                    if method in ("PATCH", "PUT", "POST")
                    else None,
                )
            assert response.status_code == 404, (method, route.path, response.text)
            checked += 1
    assert checked >= 4
    # And A's objects are all still there.
    assert (await client.get("/v1/org/api-keys", headers=bearer(token_a))).json()[0]["id"] == ids_a[
        "key_id"
    ]


async def test_lists_never_show_another_organisations_objects(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    a = await make_member()
    b = await make_member()
    token_a = (await login(client, a))["access_token"]
    token_b = (await login(client, b))["access_token"]
    ids_a = await _populate(app, client, token_a)
    await app.state.predictions.recorder.flush()
    for route in iter_api_routes(app):
        if "GET" not in (route.methods or ()) or "{" in route.path:
            continue
        if not route.path.startswith(
            (
                "/v1/org",
                "/v1/models",
                "/v1/predictions",
                "/v1/system",
                "/v1/webhooks",
                "/v1/providers",
                "/v1/lookups",
                "/v1/watchlist",
                "/v1/targets",
                "/v1/scans",
                "/v1/audit",
            )
        ):
            continue
        response = await client.get(route.path, headers=bearer(token_b))
        assert response.status_code == 200, route.path
        for key, value in ids_a.items():
            if key not in ("version", "alias"):  # shared words, not identifiers
                assert value not in response.text, route.path
        assert str(a.org_id) not in response.text


async def test_a_query_that_forgets_tenant_scoping_fails_loudly(app: FastAPI) -> None:
    principal = Principal(
        kind="user", id=uuid.uuid4(), org_id=uuid.uuid4(), permissions=frozenset()
    )
    async with app.state.database.sessionmaker() as db:
        with pytest.raises(TenantScopeError):
            await db.execute(select(ApiKey))
        with pytest.raises(TenantScopeError):
            await db.execute(select(Membership.role).where(Membership.user_id == principal.id))
        with pytest.raises(TenantScopeError):
            await db.get(ApiKey, uuid.uuid4())
        assert (await db.execute(scoped(principal, ApiKey))).all() == []
        assert (await db.execute(across_tenants(select(ApiKey), "test"))).all() == []
    with pytest.raises(ValueError, match="reason"):
        across_tenants(select(ApiKey), " ")


def _bypasses() -> dict[str, Executable]:
    """Statements that reach a tenant table other than through their main entity."""
    keys = cast(Table, ApiKey.__table__)
    other_members = cast(Table, Membership.__table__).alias("m")
    return {
        "join": select(User).join(Membership, Membership.user_id == User.id),
        "outer join": select(User).outerjoin(Membership, Membership.user_id == User.id),
        "subquery in where": select(User).where(User.id.in_(select(Membership.user_id))),
        "exists": select(User).where(
            select(Membership.id).where(Membership.user_id == User.id).exists()
        ),
        "core table": select(keys),
        "lightweight table": select(table("api_keys", column("id"))),
        "cte": select(select(ApiKey.id).cte("k").c.id),
        "scalar subquery column": select(
            Organisation.id,
            select(func.count(ApiKey.id)).where(ApiKey.org_id == Organisation.id).scalar_subquery(),
        ),
        "core update": update(keys).values(name="x"),
        "core delete": delete(keys),
        "text": text("select * from api_keys"),
        "text, any case": text("SELECT id FROM API_KEYS"),
        "text inside a select": select(User.id).where(
            text("users.id in (select user_id from memberships)")
        ),
        # Joined onto a scoped query in a form the tenant filter cannot reach.
        "core table joined onto a scoped query": _scoped_memberships().join(
            keys, keys.c.created_by == Membership.user_id
        ),
        "core alias joined onto a scoped query": _scoped_memberships().join(
            keys.alias("k"), keys.alias("k").c.created_by == Membership.user_id
        ),
        "lightweight table joined onto a scoped query": _scoped_memberships().join(
            table("api_keys", column("created_by")),
            column("created_by") == Membership.user_id,
        ),
        "core alias of the scoped table": _scoped_memberships().join(
            other_members, other_members.c.user_id == Membership.user_id
        ),
        "text inside a scoped query": _scoped_memberships().where(
            text("memberships.user_id in (select created_by from api_keys)")
        ),
        "core table in a subquery of a scoped update": scope_statement(
            OrganisationScope(uuid.uuid4()),
            update(ApiKey).where(ApiKey.created_by.in_(select(keys.c.created_by))),
            ApiKey,
        )
        .values(name="x")
        .execution_options(synchronize_session=False),
    }


def _scoped_memberships() -> Select[tuple[Membership]]:
    return scoped(OrganisationScope(uuid.uuid4()), Membership)


@pytest.mark.parametrize("name", sorted(_bypasses()))
async def test_tenant_tables_reached_indirectly_are_refused(app: FastAPI, name: str) -> None:
    statement = _bypasses()[name]
    async with app.state.database.sessionmaker() as db:
        with pytest.raises(TenantScopeError):
            await db.execute(statement)
        # The same statement, marked with a reason, runs (but MariaDB's table names are
        # case-sensitive, so API_KEYS names no table there).
        if not (name == "text, any case" and db.bind.dialect.name in ("mysql", "mariadb")):
            await db.execute(across_tenants(statement, "test: the guard's exemption"))
        await db.rollback()


# --- tenant tables joined onto a scoped query -----------------------------------------------


async def _two_organisations_one_user(app: FastAPI) -> tuple[uuid.UUID, uuid.UUID]:
    """Org A and org B; one user, owner of A and viewer in B, made a key in each.

    Returns (A, B). A join from A's membership row on the user's id reaches both keys
    unless the join itself is filtered.
    """
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM
    from assay.orgs import service as orgs

    a = await new_member(app)
    b = await new_member(app)
    assert a.org_id is not None
    assert b.org_id is not None
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, a.user_id)
        await orgs.add_member(db, CLI, PLATFORM, b.org_id, user, "viewer")
        for org_id, name in ((a.org_id, "key-of-a"), (b.org_id, "key-of-b")):
            db.add(
                ApiKey(
                    org_id=org_id,
                    key_id=uuid.uuid4().hex,
                    name=name,
                    secret_hash="0" * 64,
                    created_by=user.id,
                )
            )
        await db.commit()
    return a.org_id, b.org_id


def _joined(scope: OrganisationScope, other: uuid.UUID) -> dict[str, tuple[Executable, object]]:
    """Statements scoped to `scope` that read tenant rows beyond their main entity, each
    with what it must return: only `scope`'s rows. (`other` names the other organisation.)
    """
    key = aliased(ApiKey)
    member = aliased(Membership)
    names = select(ApiKey.created_by, ApiKey.name).cte("names")
    by_user = ApiKey.created_by == Membership.user_id
    return {
        # The review's case: joined on a column that does not bind the organisation.
        "join": (
            scoped(scope, Membership).add_columns(ApiKey.name).join(ApiKey, by_user),
            ["key-of-a"],
        ),
        "outer join": (
            scoped(scope, Membership).add_columns(ApiKey.name).outerjoin(ApiKey, by_user),
            ["key-of-a"],
        ),
        "columns, joined in WHERE": (
            scoped(scope, Membership).add_columns(ApiKey.name).where(by_user),
            ["key-of-a"],
        ),
        "aliased join": (
            scoped(scope, Membership)
            .add_columns(key.name)
            .join(key, key.created_by == Membership.user_id),
            ["key-of-a"],
        ),
        "cte": (
            scoped(scope, Membership)
            .add_columns(names.c.name)
            .join(names, names.c.created_by == Membership.user_id),
            ["key-of-a"],
        ),
        "scalar subquery": (
            scoped(scope, Membership).add_columns(
                select(func.count(ApiKey.id)).where(by_user).scalar_subquery()
            ),
            [1],
        ),
        "exists": (
            scoped(scope, Membership).add_columns(
                exists(select(ApiKey.id).where(by_user, ApiKey.name == "key-of-b"))
            ),
            [False],
        ),
        "the scoped table again, aliased": (
            scoped(scope, Membership)
            .add_columns(member.role)
            .join(member, member.user_id == Membership.user_id),
            ["owner"],
        ),
        "the scoped table again, in a subquery": (
            scoped(scope, Membership)
            .add_columns(literal(True))
            .where(
                Membership.user_id.in_(select(Membership.user_id).where(Membership.org_id == other))
            ),
            [],
        ),
        "counted from outside": (
            select(func.count()).select_from(
                scoped(scope, Membership).join(ApiKey, by_user).subquery()
            ),
            [1],
        ),
    }


def _values(rows: list[Any]) -> list[object]:
    return (
        sorted(row[-1] for row in rows) if rows and len(rows[0]) > 1 else [row[0] for row in rows]
    )


@pytest.mark.parametrize("name", sorted(_joined(OrganisationScope(uuid.uuid4()), uuid.uuid4())))
async def test_tenant_tables_joined_onto_a_scoped_query_are_filtered_to_its_organisation(
    app: FastAPI, name: str
) -> None:
    org_a, org_b = await _two_organisations_one_user(app)
    statement, expected = _joined(OrganisationScope(org_a), org_b)[name]
    async with app.state.database.sessionmaker() as db:
        seen = _values(list((await db.execute(statement)).all()))
        # Without the filter the same statement reaches organisation B's rows.
        unfiltered = _values(
            list((await db.execute(across_tenants(statement, "test: unfiltered"))).all())
        )
    assert seen == expected
    assert unfiltered != expected


async def test_the_filter_follows_each_statements_organisation(app: FastAPI) -> None:
    """The same statement shape, compiled once and cached, filters by the organisation of
    each execution (a bound value), never by the first one's."""
    org_a, org_b = await _two_organisations_one_user(app)
    seen = []
    async with app.state.database.sessionmaker() as db:
        for org in (org_a, org_b, org_a):
            statement, _ = _joined(OrganisationScope(org), org)["join"]
            seen.append(_values(list((await db.execute(statement)).all())))
    assert seen == [["key-of-a"], ["key-of-b"], ["key-of-a"]]


async def test_a_subquery_of_a_scoped_update_is_filtered_too(app: FastAPI) -> None:
    org_a, _ = await _two_organisations_one_user(app)
    # The user is a viewer only in B: read unfiltered, the subquery would rename A's key.
    statement = scope_statement(
        OrganisationScope(org_a),
        update(ApiKey).where(
            ApiKey.created_by.in_(select(Membership.user_id).where(Membership.role == "viewer"))
        ),
        ApiKey,
    ).values(name="renamed")
    # Without a read-back of the rows: the ORM's read-back is a query of its own.
    statement = statement.execution_options(synchronize_session=False)
    async with app.state.database.sessionmaker() as db:
        await db.execute(statement)
        await db.commit()
        names = (await db.execute(across_tenants(select(ApiKey.name), "test: every key"))).scalars()
        assert sorted(names) == ["key-of-a", "key-of-b"]


async def test_a_join_through_a_table_no_tenant_owns_is_filtered_too(
    app: FastAPI,
) -> None:
    """Memberships to users to keys: the keys are still only the organisation's."""
    org_a, _ = await _two_organisations_one_user(app)
    async with app.state.database.sessionmaker() as db:
        rows = (
            await db.execute(
                scoped(OrganisationScope(org_a), Membership)
                .add_columns(User.email, ApiKey.name)
                .join(User, User.id == Membership.user_id)
                .join(ApiKey, ApiKey.created_by == User.id)
            )
        ).all()
    assert [row[2] for row in rows] == ["key-of-a"]


async def test_scoped_parts_and_tenant_free_sql_pass_the_guard(app: FastAPI) -> None:
    scope = OrganisationScope(uuid.uuid4())
    async with app.state.database.sessionmaker() as db:
        # A scoped() subquery is scoped wherever it is used.
        counted = await db.execute(
            select(func.count()).select_from(scoped(scope, Membership).subquery())
        )
        assert counted.scalar_one() == 0
        assert (await db.execute(text("SELECT 1"))).scalar_one() == 1
        assert (await db.execute(select(User).where(User.email == "x@example.org"))).all() == []
        # A word that only contains a tenant table's name is not that table.
        assert (await db.execute(text("SELECT 1 AS my_api_keys_count"))).scalar_one() == 1


def test_every_table_with_an_org_id_is_tenant_owned_or_explained() -> None:
    import assay.app  # noqa: F401 - imports every model

    classes = {mapper.local_table.name: mapper.class_ for mapper in Base.registry.mappers}
    tenant_owned = set()
    for name, table_ in Base.metadata.tables.items():
        org_id = table_.columns.get("org_id")
        if org_id is None:
            assert name not in ORG_LINKED_TABLES, f"{name} has no org_id"
            continue
        assert org_id.index, f"{name}.org_id is not indexed"
        if issubclass(classes[name], TenantOwned):
            tenant_owned.add(name)
            assert not org_id.nullable, f"{name}.org_id must be NOT NULL"
            targets = {fk.target_fullname for fk in org_id.foreign_keys}
            assert targets == {"organisations.id"}, name
        else:
            assert name in ORG_LINKED_TABLES, (
                f"{name} has an org_id but is not tenant-owned: mix in TenantOwned, "
                "or add it to ORG_LINKED_TABLES with the reason"
            )
            assert len(ORG_LINKED_TABLES[name]) > 30, f"give a real reason for {name}"
    assert set(ORG_LINKED_TABLES) <= set(Base.metadata.tables)
    # The guard knows exactly the tenant-owned tables.
    assert tenant_table_names() == tenant_owned
    assert {"memberships", "api_keys", "custom_roles"} <= tenant_owned
