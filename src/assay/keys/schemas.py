"""Answers of /v1/admin/keys: ids, states, times and counts; never key material."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class DataKeyView(BaseModel):
    key_id: str = Field(description="The 4-byte id (hex) every ciphertext of this key begins with.")
    state: str = Field(description="active, decrypt_only or retired.")
    origin: str = Field(description="imported (derived from the encryption secret) or generated.")
    wrapped_by: str = Field(description="The key-encryption key that wraps it.")
    sealed: int = Field(description="Values this key still seals, over every sealed column.")
    columns: dict[str, int] = Field(description="Those values per sealed column (table.column).")
    created_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None
    retired_at: datetime | None


class ReencryptionView(BaseModel):
    id: uuid.UUID
    key_id: str = Field(description="The key that was active when the run was asked for.")
    state: str = Field(description="queued, running, succeeded or failed.")
    total: int = Field(description="Values not under the active key when the run started.")
    done: int = Field(description="Values re-sealed so far.")
    failed: int = Field(description="Values that could not be opened (left as they are).")
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class KeyringView(BaseModel):
    active_key_id: str
    keys: list[DataKeyView]
    unknown: dict[str, int] = Field(
        description="Values sealed with key ids the database does not know, by id."
    )
    reencryptions: list[ReencryptionView] = Field(description="The latest runs, newest first.")


class RotationView(BaseModel):
    key: DataKeyView
    previous_key_id: str
    reencryption: ReencryptionView
