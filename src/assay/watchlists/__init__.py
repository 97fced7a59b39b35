"""Watchlists: indicators re-checked on a schedule; a changed verdict is an event."""
