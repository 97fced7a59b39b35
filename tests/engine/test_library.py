"""The engine is a library: importing all of it pulls in no web, database or network
library, and no model runtime's library before a model of its format is loaded."""

from __future__ import annotations

import subprocess
import sys

IMPORT_EVERY_ENGINE_MODULE = """
import importlib, pkgutil, sys
import assay.engine
for module in pkgutil.walk_packages(assay.engine.__path__, "assay.engine."):
    importlib.import_module(module.name)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""
WEB_DATABASE_NETWORK = {"fastapi", "starlette", "sqlalchemy", "httpx", "redis"}
RUNTIME_LIBRARIES = {"onnxruntime", "lightgbm", "xgboost", "sklearn", "skops", "joblib"}


def test_importing_the_engine_imports_no_web_database_network_or_runtime_library() -> None:
    # A fresh interpreter: this test process has imported the whole application.
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_ENGINE_MODULE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    imported = set(result.stdout.split())
    assert "assay" in imported
    assert imported & (WEB_DATABASE_NETWORK | RUNTIME_LIBRARIES) == set()
