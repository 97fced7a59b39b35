"""Errors the scoring engine raises: a definition or an artifact it cannot accept.

They derive from the catalogue's base (`assay.core.errors.AssayError`), so a service
serving the engine over HTTP renders them as problem details without translating
them; used as a library, they are plain exceptions with a status and a detail.
"""

from __future__ import annotations

from assay.core.errors import AssayError


class InvalidModelDefinition(AssayError):
    """A schema, rules, ensemble or manifest document is malformed; `errors` names each spot."""

    status, slug, title = 422, "invalid-model-definition", "Invalid model definition"


class InvalidArtifact(AssayError):
    """Artifact bytes are not the declared format, are an archive, or cannot be loaded."""

    status, slug, title = 422, "invalid-artifact", "Invalid model artifact"


class RuntimeNotInstalled(InvalidArtifact):
    """The artifact's format needs a model runtime this server cannot import; the detail
    names the `assay[...]` extra that installs it."""

    status, slug, title = 422, "runtime-not-installed", "Model runtime not installed"


class UntrustedArtifact(AssayError):
    """Artifact refused by policy: pickle not allowed, bad or missing signature, untrusted types."""

    status, slug, title = 422, "untrusted-artifact", "Untrusted model artifact"


class ArtifactIntegrityError(AssayError):
    """Stored artifact bytes no longer match their pinned SHA-256 digest.

    A fault of the server's storage, not of the request, which may succeed once the
    store is repaired: 503, like a model version that fails the same check at load.
    """

    status, slug, title = 503, "artifact-integrity-failed", "Artifact failed its integrity check"
