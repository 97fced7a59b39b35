import json

import pytest

from assay.scans.reports import (
    render_garak_jsonl,
    render_html,
    render_json,
    render_junit,
    render_sarif,
)
from tests.scans_reports.builders import odd_reports

RENDERERS = [render_json, render_sarif, render_junit, render_html, render_garak_jsonl]


@pytest.mark.parametrize("name", sorted(odd_reports()))
@pytest.mark.parametrize("render", RENDERERS, ids=lambda render: render.__name__)
def test_every_renderer_returns_utf8_bytes_on_odd_data(render, name):
    document = render(odd_reports()[name])

    assert isinstance(document, bytes)
    assert document.decode("utf-8")


@pytest.mark.parametrize("render", [render_json, render_sarif])
def test_json_documents_of_odd_data_parse_strictly(render):
    def refuse(constant: str) -> None:
        raise AssertionError(constant)

    for report in odd_reports().values():
        json.loads(render(report), parse_constant=refuse)
