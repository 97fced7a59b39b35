"""Reading a user's YAML or JSON document with bounds on the work it can cause.

Every document a user hands Assay (an uploaded manifest, a pack's files, and the
provider and rules definitions to come) is read here. A document is refused, before
any of it is built, when it:

- is longer than `MAX_DOCUMENT_CHARS`;
- uses a YAML anchor or alias. Aliases are how a few hundred bytes expand into ten
  million nodes ("billion laughs"); no Assay document needs them, so they are refused
  outright rather than counted;
- has more than `MAX_DOCUMENT_NODES` values or nests deeper than `MAX_DOCUMENT_DEPTH`.

YAML is scanned as a stream of parser events first (libyaml's C parser when PyYAML has
it), so the checks cost one linear pass and never build a node; only a document that
passes is loaded, with the safe loader. JSON is parsed by the standard library (linear,
no references) and then walked. The work is therefore bounded by the size limit; the
callers in the API run this off the event loop.
"""

from __future__ import annotations

import json
from typing import Any, Final

import yaml

MAX_DOCUMENT_CHARS: Final = 1_000_000
MAX_DOCUMENT_NODES: Final = 100_000
MAX_DOCUMENT_DEPTH: Final = 64

# libyaml when present (about ten times faster), else the pure-Python parser.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class DocumentRefused(ValueError):
    """The document cannot be read; `code` says why, the message says it to the author."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def load_document(text: str) -> Any:
    """The document in `text` (JSON, or YAML), read within the bounds above."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DocumentRefused("too_large", f"longer than {MAX_DOCUMENT_CHARS} characters")
    try:
        # JSON first, for JSON's meaning: YAML reads an escaped surrogate pair
        # ("\ud83d\ude80", as json.dumps writes any character beyond U+FFFF) as two
        # unpaired surrogates rather than as one character.
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return _load_yaml(text)
    _check_json_shape(document)
    return document


def _refuse_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _too_deep() -> DocumentRefused:
    return DocumentRefused("too_deep", f"nested deeper than {MAX_DOCUMENT_DEPTH} levels")


def _too_many() -> DocumentRefused:
    return DocumentRefused("too_many_nodes", f"more than {MAX_DOCUMENT_NODES} values")


def _load_yaml(text: str) -> Any:
    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise DocumentRefused(
                    "aliases_refused", "YAML anchors and aliases (&name, *name) are not accepted"
                )
            if isinstance(event, _OPENING):
                depth += 1
                if depth > MAX_DOCUMENT_DEPTH:
                    raise _too_deep()
            elif isinstance(event, _CLOSING):
                depth -= 1
                continue
            elif not isinstance(event, yaml.ScalarEvent):
                continue
            nodes += 1
            if nodes > MAX_DOCUMENT_NODES:
                raise _too_many()
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - the safe loader, checked above  # nosec B506
    except yaml.YAMLError as exc:
        raise DocumentRefused("unparsable", f"not valid YAML or JSON: {exc}"[:300]) from None


def _check_json_shape(document: Any) -> None:
    """Walk a parsed JSON document without recursion, counting values and depth."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    nodes = 0
    while pending:
        node, depth = pending.pop()
        nodes += 1
        if nodes > MAX_DOCUMENT_NODES:
            raise _too_many()
        if isinstance(node, dict | list) and depth > MAX_DOCUMENT_DEPTH:
            raise _too_deep()
        if isinstance(node, dict):
            pending.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            pending.extend((value, depth + 1) for value in node)
