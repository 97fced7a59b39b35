"""What other features may use of auth: sessions, credentials checks, lockout and MFA.

The modules behind it are auth's own (`sessions`, `signin`, `credentials/`,
`request_signing`); other packages import these names from here, so auth can
reorganise inside without touching them (the import contracts in .importlinter hold
that).
"""

from __future__ import annotations

from assay.auth.authority import check_grantable, require_authority_over
from assay.auth.credentials.lockout import (
    count_failure,
    is_locked,
    lock_state,
    record_unlock,
    register_success,
    unlock,
)
from assay.auth.credentials.mfa import begin_enrolment as begin_mfa_enrolment
from assay.auth.credentials.mfa import confirm_enrolment as confirm_mfa_enrolment
from assay.auth.credentials.mfa import disable as disable_mfa
from assay.auth.credentials.mfa import regenerate_backup_codes
from assay.auth.credentials.users import (
    check_new_password,
    confirm_password,
    find_user_by_email,
    mfa_requirement,
    normalise_email,
    send_verification,
    set_password,
)
from assay.auth.request_signing import signing_secret_aad
from assay.auth.sessions import (
    MfaChallenge,
    OrgChoice,
    TokenPair,
    choose_org,
    end_member_session,
    end_own_session,
    end_sessions,
    finish_sign_in,
    org_sessions,
    user_sessions,
)
from assay.auth.signin import change_password
from assay.auth.tokens import new_api_key

__all__ = [
    "MfaChallenge",
    "OrgChoice",
    "TokenPair",
    "begin_mfa_enrolment",
    "change_password",
    "check_grantable",
    "check_new_password",
    "choose_org",
    "confirm_mfa_enrolment",
    "confirm_password",
    "count_failure",
    "disable_mfa",
    "end_member_session",
    "end_own_session",
    "end_sessions",
    "find_user_by_email",
    "finish_sign_in",
    "is_locked",
    "lock_state",
    "mfa_requirement",
    "new_api_key",
    "normalise_email",
    "org_sessions",
    "record_unlock",
    "regenerate_backup_codes",
    "register_success",
    "require_authority_over",
    "send_verification",
    "set_password",
    "signing_secret_aad",
    "unlock",
    "user_sessions",
]
