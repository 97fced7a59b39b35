"""Tables of the identity feature: tenants, people, their roles and credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, synonym

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow


class SecurityEvent(Base):
    """Who did what to what, when, from where, and how it ended.

    Written unchained in the transaction of the change it describes; the audit trail's
    chainer (`assay.audit_trail`) later gives it its place in its organisation's chain:
    `seq` (gap-free from 1), `prev_hash` and `hash`. Until then those are NULL.
    """

    __tablename__ = "security_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq", name="uq_security_events_org_seq"),
        Index("ix_security_events_seq", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)

    # The name the shared keyset cursors (assay.core.cursors) order by.
    created_at: Mapped[datetime] = synonym("occurred_at")


# Events are queried, counted (`assay_security_events_total{action=...}`) and alerted on
# by these names, so they are a contract: add members, never rename one.
class SecurityAction(StrEnum):
    # signing in and out
    LOGIN = "login"
    LOGIN_SSO = "login.sso"
    LOGOUT = "logout"
    MFA_VERIFY = "mfa.verify"
    REFRESH_TOKEN_REUSE = "refresh_token.reuse"  # nosec B105
    SESSION_ENDED = "session.ended"
    ORG_SWITCHED = "org.switched"
    REAUTHENTICATION = "reauthentication"
    # credentials
    PASSWORD_CHANGE = "password.change"  # nosec B105
    PASSWORD_CHANGED = "password.changed"  # nosec B105
    PASSWORD_RESET = "password.reset"  # nosec B105
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # nosec B105
    MFA_ENROLLED = "mfa.enrolled"
    MFA_DISABLED = "mfa.disabled"
    MFA_BACKUP_CODES_REGENERATED = "mfa.backup_codes_regenerated"
    MFA_BACKUP_CODE_USED = "mfa.backup_code_used"
    ACCOUNT_LOCKED = "account.locked"
    ACCOUNT_HARD_LOCKED = "account.hard_locked"
    ACCOUNT_UNLOCKED = "account.unlocked"
    # accounts and their addresses
    USER_CREATED = "user.created"
    USER_SIGNED_UP = "user.signed_up"
    USER_DISABLED = "user.disabled"
    EMAIL_VERIFICATION_SENT = "email.verification_sent"
    EMAIL_VERIFIED = "email.verified"
    EMAIL_CHANGE = "email.change"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    SSO_USER_CREATED = "sso.user_created"
    SSO_IDENTITY_LINKED = "sso.identity_linked"
    # organisations, members, roles, keys
    ORG_CREATED = "org.created"
    ORG_UPDATED = "org.updated"
    ORG_DELETED = "org.deleted"
    ORG_SUSPENDED = "org.suspended"
    ORG_RESUMED = "org.resumed"
    ORG_QUOTA_CHANGED = "org.quota_changed"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    ROLE_CREATED = "role.created"
    INVITATION_CREATED = "invitation.created"
    INVITATION_REVOKED = "invitation.revoked"
    INVITATION_ACCEPTED = "invitation.accepted"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    # models
    MODEL_CREATED = "model.created"
    MODEL_DELETED = "model.deleted"
    MODEL_VERSION_CREATED = "model.version_created"
    MODEL_ALIAS_MOVED = "model.alias_moved"
    MODEL_HEALTHY = "model.healthy"
    MODEL_UNHEALTHY = "model.unhealthy"
    MODEL_VERIFICATION_FAILED = "model.verification_failed"
    MODEL_INTEGRITY_FAILED = "model.integrity_failed"
    MODEL_LOAD_REFUSED = "model.load_refused"
    MODEL_LOAD_FAILED = "model.load_failed"
    PUBLISHER_KEY_TRUSTED = "publisher_key.trusted"
    PUBLISHER_KEY_REVOKED = "publisher_key.revoked"
    # field-encryption data keys (platform events: no organisation)
    DATA_KEY_ROTATED = "data_key.rotated"
    DATA_KEY_REENCRYPTED = "data_key.reencrypted"
    DATA_KEY_RETIRED = "data_key.retired"
    # webhooks
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # nosec B105
    WEBHOOK_DISABLED = "webhook.disabled"
    # evidence providers
    PROVIDER_SAVED = "provider.saved"
    PROVIDER_DELETED = "provider.deleted"
    PROVIDER_CREDENTIAL_SET = "provider.credential_set"  # nosec B105
    # red-team targets and scans
    TARGET_SAVED = "target.saved"
    TARGET_DELETED = "target.deleted"
    TARGET_CREDENTIAL_SET = "target.credential_set"  # nosec B105
    SCAN_STARTED = "scan.started"
    SCAN_CANCELLED = "scan.cancelled"
    # reads of sensitive data (buffered: assay.audit.reads)
    PREDICTION_INPUTS_REVEALED = "prediction.inputs_revealed"
    SCAN_RESULTS_READ = "scan.results_read"
    LOOKUP_RESULTS_READ = "lookup.results_read"
    PROVIDERS_READ = "providers.read"
    MEMBERS_LISTED = "members.listed"
    # the audit trail itself
    AUDIT_READ = "audit.read"
    AUDIT_VERIFIED = "audit.verified"
    AUDIT_EXPORTED = "audit.exported"
