"""The demo's red team (`serve --demo` registers the FAKE models as targets, and its API
key may scan them), and `assay scans` against a real server, failing a CI step on a
finding."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from assay.app import create_app
from assay.demo import DEMO_TARGET_KEY, create_demo
from assay.engine.pack import Pack
from assay.mock_target.background import BackgroundTarget, serve_in_background
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings, load_settings
from tests.conftest import KNOWN_SECRETS
from tests.jobs.workers import ASSAY
from tests.scans.conftest import mock_requests
from tests.security.test_server_limits import _serve, _stop
from tests.support.outbound import LoopbackOnlyBackend, StubResolver

KNOWN_SECRETS.add(DEMO_TARGET_KEY)


@pytest.fixture
def demo_mock() -> Iterator[BackgroundTarget]:
    with serve_in_background() as running:
        yield running


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(database_url=f"sqlite:///{tmp_path / 'assay.db'}")


async def test_the_demo_key_scans_the_demo_targets(
    settings: Settings, trained_pack: Pack, demo_mock: BackgroundTarget
) -> None:
    credentials = await create_demo(
        settings, trained_pack.directory, mock_target_url="http://127.0.0.1:9"
    )
    # `serve --demo` starts the mock on a new port each time: the targets follow it.
    credentials = await create_demo(
        settings, trained_pack.directory, mock_target_url=demo_mock.base_url
    )
    assert credentials.api_key is not None
    KNOWN_SECRETS.add(credentials.api_key)
    served = settings.model_copy(update={"outbound_allowed_networks": ["127.0.0.1/32"]})
    app = create_app(served)
    app.state.targets.client.outbound = OutboundClient(
        OutboundPolicy.from_settings(served),
        resolver=StubResolver(),
        network_backend=LoopbackOnlyBackend(),
    )
    headers = {"x-api-key": credentials.api_key}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        targets = (await client.get("/v1/targets", headers=headers)).json()
        assert {t["name"]: t["url"].startswith(demo_mock.base_url) for t in targets} == {
            "demo-refusing": True,
            "demo-vulnerable": True,
        }
        body = {"target": "demo-vulnerable", "probe_sets": ["system-prompt-leakage"]}
        started = await client.post("/v1/scans", json=body, headers=headers)
        assert started.status_code == 202, started.text
        scan: dict[str, object] = {}
        for _ in range(3000):
            scan = (await client.get(f"/v1/scans/{started.json()['id']}", headers=headers)).json()
            if scan["state"] == "succeeded":
                break
            await asyncio.sleep(0.02)
        assert scan["state"] == "succeeded"
        assert isinstance(scan["hits"], int)
        assert scan["hits"] > 0
    assert mock_requests(demo_mock)


def _assay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ASSAY), *args], env=env, capture_output=True, text=True, check=False, timeout=180
    )


async def test_assay_scans_fails_a_ci_step_on_a_finding(
    tmp_path: Path,
    trained_pack: Pack,
    demo_mock: BackgroundTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, port = _serve(
        tmp_path, "server", ASSAY_OUTBOUND_ALLOWED_NETWORKS=json.dumps(["127.0.0.1/32"])
    )
    try:
        # The demo written into the server's own data directory and database.
        monkeypatch.setenv("ASSAY_ENV", "test")
        monkeypatch.setenv("ASSAY_DATA_DIR", str(tmp_path / "server"))
        from assay.core.secrets_store import with_generated_secrets

        credentials = await create_demo(
            with_generated_secrets(load_settings()),
            trained_pack.directory,
            mock_target_url=demo_mock.base_url,
        )
        assert credentials.api_key is not None
        KNOWN_SECRETS.add(credentials.api_key)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(ASSAY_ENV="test", ASSAY_API_KEY=credentials.api_key)
        url = f"http://127.0.0.1:{port}"
        common = ("--probe-set", "prompt-injection", "--wait", "--fail-on-findings", "--url", url)
        found = _assay(env, "scans", "start", "--target", "demo-vulnerable", *common)
        assert found.returncode == 2, found.stderr
        scan_id = re.search(r"scan ([0-9a-f-]{36})", found.stderr)
        assert scan_id is not None, found.stderr
        assert json.loads(found.stdout)["hits"] > 0
        clean = _assay(env, "scans", "start", "--target", "demo-refusing", *common)
        assert clean.returncode == 0, clean.stderr

        report = tmp_path / "redteam.xml"
        saved = _assay(
            env,
            "scans",
            "report",
            scan_id.group(1),
            "--format",
            "junit",
            "--output",
            str(report),
            "--url",
            url,
        )
        assert saved.returncode == 0, saved.stderr
        suites = ET.fromstring(report.read_bytes())  # noqa: S314 - our own output, parsed to check it
        assert sum(int(s.get("failures", "0")) for s in suites.iter("testsuite")) > 0
        listed = _assay(env, "scans", "list", "--url", url)
        assert scan_id.group(1) in listed.stdout
        missing = _assay(env, "scans", "show", "00000000-0000-0000-0000-000000000000", "--url", url)
        assert missing.returncode == 1
        assert "Error (404)" in missing.stderr
    finally:
        _stop(process)
