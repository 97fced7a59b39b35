"""Permissions: each guards a route, and the role table in docs/security.md is the code's."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from assay.auth.deps import PERMISSION_ATTRIBUTE
from assay.core.permissions import ALL_PERMISSIONS, BUILTIN_ROLES, GUARDS, Permission
from assay.core.routes import iter_api_routes

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def render_role_table() -> str:
    roles = list(BUILTIN_ROLES)
    lines = [
        "| permission | guards | " + " | ".join(roles) + " |",
        "| --- | --- | " + " | ".join(":-:" for _ in roles) + " |",
    ]
    for permission in Permission:
        marks = " | ".join("✓" if permission in BUILTIN_ROLES[r] else "" for r in roles)
        lines.append(f"| `{permission}` | {GUARDS[permission]} | {marks} |")
    return "\n".join(lines)


def _guarded_permissions(app: FastAPI) -> set[str]:
    found: set[str] = set()

    def walk(dependant: object) -> None:
        for dep in getattr(dependant, "dependencies", []):
            permission = getattr(dep.call, PERMISSION_ATTRIBUTE, None)
            if permission is not None:
                found.add(permission)
            walk(dep)

    for route in iter_api_routes(app):
        walk(route.dependant)
    return found


def test_the_role_table_in_the_docs_is_generated_from_the_code() -> None:
    text = SECURITY_DOC.read_text()
    documented = text.split("<!-- roles:begin -->\n", 1)[1].split("\n<!-- roles:end -->", 1)[0]
    expected = render_role_table()
    assert documented == expected, f"docs/security.md's role table should read:\n{expected}"


def test_every_permission_says_what_it_guards_and_the_owner_holds_all() -> None:
    assert set(GUARDS) == set(Permission)
    assert BUILTIN_ROLES["owner"] == ALL_PERMISSIONS
    for role, permissions in BUILTIN_ROLES.items():
        assert permissions <= ALL_PERMISSIONS, role


def test_every_permission_guards_at_least_one_route(app: FastAPI) -> None:
    unguarded = set(Permission) - _guarded_permissions(app)
    assert not unguarded, f"permissions that guard no route: {sorted(unguarded)}"
