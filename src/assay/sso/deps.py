"""What single sign-on routes depend on: the OpenID Connect client, built once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assay.sso.oidc import OidcClient


def oidc_of(request: Request) -> OidcClient:
    client: OidcClient = request.app.state.oidc
    return client


# Provider metadata and keys are cached in it, so it lives as long as the application.
Oidc = Annotated[OidcClient, Depends(oidc_of)]
