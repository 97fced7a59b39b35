"""Collecting every problem in a model definition and raising them together.

A schema, rules document, ensemble or manifest is checked as a whole: each problem is
recorded with a path into the document (``rules[3].when.value``) and, when the path
passes through a named entry, that entry's name or id, so the author sees every mistake
and where it is in one round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from assay.engine.errors import InvalidModelDefinition


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    """One mistake in a definition document."""

    path: str
    message: str
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"path": self.path, "message": self.message}
        if self.name is not None:
            out["name"] = self.name
        return out

    def describe(self) -> str:
        where = f"{self.path} ({self.name})" if self.name else self.path
        return f"{where}: {self.message}" if where else self.message


def join_path(*parts: str | int) -> str:
    """Render path parts as ``fields[2].maximum``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else part
    return out


def name_along(document: Any, loc: Sequence[str | int]) -> str | None:
    """The name or id of the deepest named list entry the location passes through."""
    found: str | None = None
    node = document
    for part in loc:
        if isinstance(node, Mapping) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, Sequence) and not isinstance(node, str) and isinstance(part, int):
            if not 0 <= part < len(node):
                break
            node = node[part]
            if isinstance(node, Mapping):
                label = node.get("id", node.get("name"))
                if isinstance(label, str):
                    found = label
        else:
            break
    return found


def _document_loc(document: Any, loc: Sequence[str | int]) -> list[str | int]:
    """Keep the parts of a pydantic location that are keys or indices of the document.

    Pydantic also puts union tags and validator names in locations; they mean nothing
    to the author of the document. The last part is always kept: it may name a missing
    or unexpected key.
    """
    out: list[str | int] = []
    node = document
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(part, int):
            out.append(part)
            ok = isinstance(node, Sequence) and not isinstance(node, str) and 0 <= part < len(node)
            node = node[part] if ok else None
        elif isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif last:
            out.append(part)
    return out


class DefinitionProblems:
    """Accumulates problems for one document; `raise_if_any` reports them all at once."""

    def __init__(self, document: str) -> None:
        self.document = document
        self.problems: list[DefinitionProblem] = []

    def __bool__(self) -> bool:
        return bool(self.problems)

    def add(self, path: str, message: str, name: str | None = None) -> None:
        self.problems.append(DefinitionProblem(path, message, name))

    def extend(self, problems: Sequence[DefinitionProblem]) -> None:
        self.problems.extend(problems)

    def add_pydantic(
        self, exc: ValidationError, raw: Any, prefix: Sequence[str | int] = ()
    ) -> None:
        """Record each pydantic error with its path (under ``prefix``) and the entry name."""
        for err in exc.errors(include_url=False, include_input=False):
            loc = _document_loc(raw, [part for part in err["loc"] if isinstance(part, str | int)])
            message = str(err["msg"])
            if message.startswith("Value error, "):
                message = message.removeprefix("Value error, ")
            self.add(join_path(*prefix, *loc), message, name_along(raw, loc))

    def error(self) -> InvalidModelDefinition:
        count = len(self.problems)
        first = self.problems[0].describe() if self.problems else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        return InvalidModelDefinition(
            f"The {self.document} is invalid: {first}{more}.",
            errors=[p.as_dict() for p in self.problems],
        )

    def raise_if_any(self) -> None:
        if self.problems:
            raise self.error()


def definition_error(
    document: str, path: str, message: str, name: str | None = None
) -> InvalidModelDefinition:
    """An `InvalidModelDefinition` for a single problem, ready to raise."""
    problems = DefinitionProblems(document)
    problems.add(path, message, name)
    return problems.error()
