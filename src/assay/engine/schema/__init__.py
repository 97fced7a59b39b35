"""Input schemas: the schema document, per-field checks, derived fields and cross-field
rules, compiled into an `InputSchema` that validates records."""
