"""Errors of the watchlists feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class WatchlistEntryNotFound(AssayError):
    status, slug, title = 404, "watchlist-entry-not-found", "Watchlist entry not found"


class AlreadyWatched(AssayError):
    status, slug, title = 409, "already-watched", "Indicator already on the watchlist"
