"""Lookups: one indicator scored across the organisation's providers (docs/threat-intel.md)."""
