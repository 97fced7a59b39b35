"""Before each request, the keyring is made fresh enough (ADR 0024)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from assay.core.keyring_store import KeyringKeeper
from assay.core.logging import get_logger

log = get_logger("assay.keys")


class KeyringFreshness:
    """ASGI middleware: before each request, make sure the keyring is fresh enough."""

    def __init__(self, app: ASGIApp, keeper: Callable[[], KeyringKeeper | None]) -> None:
        self.app = app
        self.keeper = keeper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keeper = self.keeper()
        if scope["type"] == "http" and keeper is not None:
            try:
                await keeper.ensure_fresh()
            except Exception:
                # The request goes on with the keyring as it is; retiring waits long
                # enough that a process which cannot look does no harm (ADR 0024).
                log.exception("keyring_refresh_failed")
        await self.app(scope, receive, send)
