"""Helpers for programs that call Assay's API."""

from assay.client.signing import SignedRequestAuth, sign_request

__all__ = ["SignedRequestAuth", "sign_request"]
