"""Errors of the scans feature."""

from __future__ import annotations

from assay.core.errors import AssayError


class ScanNotFound(AssayError):
    status, slug, title = 404, "scan-not-found", "Scan not found"


class InvalidScan(AssayError):
    """The scan cannot run as asked (unknown probe sets or transforms, too many
    attempts); `errors` names each problem."""

    status, slug, title = 422, "scan-invalid", "Scan invalid"


class DetectorsMissing(AssayError):
    """A probe's detector is not a model of the organisation (the red-team pack
    registers them: `assay models import <pack> --org ...`)."""

    status, slug, title = 409, "detectors-missing", "Detectors missing"
