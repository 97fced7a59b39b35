"""The registry of sealed columns: every database column holding keyring ciphertexts.

Each feature registers its sealed columns next to its tables, with the recipe of the
associated data that binds a ciphertext to its place. The key lifecycle (assay.keys)
counts, per data key, how many values each column still holds, and re-seals them
under the active key. A test fails when a `*_encrypted` column is not registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import DeclarativeBase


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """One sealed column: its table (the model, keyed by `id`), the column, the columns
    the associated data is made of, and the recipe (given a row with those columns)."""

    model: type[DeclarativeBase]
    column: str
    aad_columns: tuple[str, ...]
    aad: Callable[[Any], bytes]

    @property
    def name(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"


_REGISTRY: dict[str, SealedColumn] = {}


def register_sealed_column(
    model: type[DeclarativeBase],
    column: str,
    aad_columns: tuple[str, ...],
    aad: Callable[[Any], bytes],
) -> None:
    sealed = SealedColumn(model, column, aad_columns, aad)
    _REGISTRY[sealed.name] = sealed


def sealed_columns() -> list[SealedColumn]:
    """Every registered sealed column, in a fixed order (by name)."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
