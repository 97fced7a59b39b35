"""The identity feature's mail: reset, verification, invitation and notices.

Links point at console pages under `public_url` and carry the token in the fragment
(`#token=...`): browsers never send a fragment to a server, so the token stays out of
access logs, proxies and Referer headers. The console page posts it to the API.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from assay.auth.context import IdentityContext
from assay.core.after_commit import after_commit
from assay.core.mail import Mail
from assay.settings import Settings

RESET_PASSWORD_PAGE: Final = "/reset-password"  # noqa: S105 - a page path
VERIFY_EMAIL_PAGE: Final = "/verify-email"
ACCEPT_INVITATION_PAGE: Final = "/accept-invitation"
FORGOT_PASSWORD_PAGE: Final = "/forgot-password"  # noqa: S105 - a page path
SIGN_IN_PAGE: Final = "/sign-in"
_SIGNATURE = "\n-- \nAssay. This message was sent automatically; replies are not read.\n"


def page_url(settings: Settings, page: str, token: str | None = None) -> str:
    base = settings.public_url.rstrip("/") + page
    return f"{base}#token={token}" if token else base


def queue_mail(db: AsyncSession, identity: IdentityContext, mail: Mail) -> None:
    """Send `mail` once (and only if) the current transaction commits."""
    dispatcher = identity.mail
    after_commit(db, lambda: dispatcher.submit(mail))


def password_reset(settings: Settings, to: str, token: str) -> Mail:
    minutes = settings.password_reset_ttl_minutes
    return Mail(
        to=to,
        subject="Reset your Assay password",
        text=(
            "Someone asked to reset the password of the Assay account for this address.\n\n"
            f"To choose a new password, open this link within {minutes} minutes:\n\n"
            f"{page_url(settings, RESET_PASSWORD_PAGE, token)}\n\n"
            "The link works once. If you did not ask for it, ignore this message: your "
            "password stays as it is. Resetting the password signs you out everywhere; "
            "two-step verification, if you use it, is still required at sign-in.\n" + _SIGNATURE
        ),
    )


def password_changed(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay password was changed",
        text=(
            "The password of the Assay account for this address was just reset, and every "
            "session was signed out.\n\n"
            "If this was not you, reset it again at once and tell your administrator:\n\n"
            f"{page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def email_verification(settings: Settings, to: str, token: str) -> Mail:
    hours = settings.email_verification_ttl_hours
    return Mail(
        to=to,
        subject="Confirm your email address for Assay",
        text=(
            "Confirm that this address belongs to you by opening this link within "
            f"{hours} hours:\n\n{page_url(settings, VERIFY_EMAIL_PAGE, token)}\n\n"
            "Until you do, you cannot sign in. If you did not create an Assay account, "
            "ignore this message.\n" + _SIGNATURE
        ),
    )


def signup_for_existing_account(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Sign-up attempt for your Assay account",
        text=(
            "Someone, perhaps you, tried to create a new Assay account with this address, "
            "but an account for it already exists, so nothing was changed.\n\n"
            f"To sign in: {page_url(settings, SIGN_IN_PAGE)}\n"
            f"Forgot your password? {page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def invitation(
    settings: Settings,
    to: str,
    token: str,
    *,
    organisation: str,
    role: str,
    existing_account: bool,
) -> Mail:
    days = settings.invitation_ttl_days
    how = (
        "You already have an Assay account with this address: accept with your current password."
        if existing_account
        else "Accepting creates your Assay account: choose a password on that page."
    )
    return Mail(
        to=to,
        subject=f"You are invited to {organisation} on Assay",
        text=(
            f"You have been invited to join the organisation {organisation!r} on Assay "
            f"with the role {role!r}.\n\n"
            f"To accept, open this link within {days} days:\n\n"
            f"{page_url(settings, ACCEPT_INVITATION_PAGE, token)}\n\n"
            f"{how} The link works once. If you did not expect this invitation, ignore "
            "this message.\n" + _SIGNATURE
        ),
    )


def email_change_confirmation(settings: Settings, to: str, token: str) -> Mail:
    hours = settings.email_verification_ttl_hours
    return Mail(
        to=to,
        subject="Confirm the new email address of your Assay account",
        text=(
            "Someone, presumably you, asked to use this address for their Assay account.\n\n"
            f"To confirm it, open this link within {hours} hours:\n\n"
            f"{page_url(settings, VERIFY_EMAIL_PAGE, token)}\n\n"
            "Until you do, the account keeps its old address. If you did not ask for "
            "this, ignore this message.\n" + _SIGNATURE
        ),
    )


def email_change_requested(settings: Settings, to: str, new_address: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay account's email address is being changed",
        text=(
            "Someone signed in to the Assay account for this address asked to change its "
            f"address to {new_address}. It changes once the link sent there is opened.\n\n"
            "If this was not you, your password is known to someone else: reset it now, "
            "which signs out every session and voids the pending change, and tell your "
            f"administrator:\n\n{page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )


def email_changed(settings: Settings, to: str, new_address: str) -> Mail:
    return Mail(
        to=to,
        subject="Your Assay account's email address was changed",
        text=(
            f"The Assay account that used this address now uses {new_address}. This "
            "address no longer signs in to it or receives its mail.\n\n"
            "If this was not you, tell your administrator at once.\n" + _SIGNATURE
        ),
    )


def email_address_taken(settings: Settings, to: str) -> Mail:
    return Mail(
        to=to,
        subject="Email change for Assay not possible",
        text=(
            "Someone asked to use this address for an Assay account, but another account "
            "already uses it, so nothing was changed.\n\n"
            f"To sign in: {page_url(settings, SIGN_IN_PAGE)}\n"
            f"Forgot your password? {page_url(settings, FORGOT_PASSWORD_PAGE)}\n" + _SIGNATURE
        ),
    )
