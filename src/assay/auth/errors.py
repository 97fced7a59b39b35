"""Signing in and out: login, MFA step, refresh rotation, sessions, password change."""

from __future__ import annotations

from assay.auth.tokens import InvalidToken
from assay.core.errors import Conflict, Forbidden, ValidationFailed


class InvalidCredentials(InvalidToken):
    """One answer for unknown email, wrong password, locked or disabled account."""

    title = "Invalid credentials"
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class InvalidSecondFactor(InvalidToken):
    title = "Invalid credentials"
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The code is incorrect, or the sign-in attempt has expired.")


class EmailNotVerified(Forbidden):
    """The password was right, but the account's address was never confirmed."""

    title = "Email address not verified"
    # The sign-in evidence and the fresh verification link must survive the refusal.
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__(
            "Confirm your email address first: open the link in the verification email "
            "we sent you (a sign-in attempt sends a new one, at most every 5 minutes), "
            "then sign in again."
        )


class IncorrectPassword(ValidationFailed):
    """The password given to confirm a sensitive change is wrong (or the account locked).

    The failure is counted like a sign-in failure and recorded, so the writes are kept.
    """

    keeps_writes = True

    def __init__(self, field: str = "password") -> None:
        super().__init__(
            "The password is incorrect.",
            errors=[{"field": field, "code": "incorrect", "message": "incorrect"}],
        )


class MfaRequired(Conflict):
    def __init__(self, why: str) -> None:
        super().__init__(f"Two-step verification cannot be turned off: {why}.")


class RefreshTokenReused(InvalidToken):
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The refresh token is no longer valid; sign in again.")
