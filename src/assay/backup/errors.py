"""Why a backup or a restore could not be done, in words an operator can act on."""

from __future__ import annotations


class BackupError(RuntimeError):
    """A backup or restore was refused or failed; nothing partial was left behind."""
