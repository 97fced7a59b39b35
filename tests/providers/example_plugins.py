"""Provider plugins for the tests: one that asks AbuseIPDB's API (the mock's) its own way,
and one that always fails."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from assay.indicators.schemas import Indicator, IndicatorType
from assay.providers.plugins import Evidence, PluginHttp, PluginNoData


class AbuseByHand:
    supports = (IndicatorType.IPV4,)

    async def fetch(
        self, indicator: Indicator, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> Any:
        query = urlencode({"ipAddress": indicator.value})
        answer = await http.get(f"{base_url}/check?{query}", headers={"Key": credential or ""})
        if answer.status_code == 404:
            raise PluginNoData
        answer_body: dict[str, Any] = json.loads(answer.body)
        return answer_body["data"]

    def normalise(self, indicator: Indicator, answer: Any) -> Evidence:
        reports = int(answer.get("totalReports", 0))
        score = 0.0 if answer.get("isWhitelisted") else float(answer["abuseConfidenceScore"])
        return Evidence(score, {"reports": reports}, f"{reports:,} reports, by hand")

    async def health_check(
        self, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> str | None:
        answer = await http.get(f"{base_url}/check?ipAddress=1.1.1.1", headers={"Key": "x"})
        return None if answer.status_code == 200 else f"check answered {answer.status_code}"


class AlwaysBroken:
    supports = (IndicatorType.IPV4,)

    async def fetch(
        self, indicator: Indicator, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> Any:
        raise RuntimeError("the plugin's own bug")

    def normalise(self, indicator: Indicator, answer: Any) -> Evidence:
        raise AssertionError("never reached")

    async def health_check(
        self, *, base_url: str, credential: str | None, http: PluginHttp
    ) -> str | None:
        raise RuntimeError("the plugin's own bug")
