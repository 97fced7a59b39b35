from html.parser import HTMLParser

import pytest

from assay.scans.reports import render_html
from assay.scans.reports.html import ANSWER_DISPLAY_CHARS
from tests.scans_reports.builders import CANARY, attempt, odd_reports, realistic_report


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)


def _markup(page: str) -> _Markup:
    parser = _Markup()
    parser.feed(page)
    parser.close()
    return parser


def test_html_escapes_every_answer():
    page = render_html(realistic_report()).decode("utf-8")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "Voilà, café ☕ 日本語" in page
    assert CANARY in page


@pytest.mark.parametrize("name", ["realistic", *sorted(odd_reports())])
def test_html_has_no_script_no_style_and_no_external_resource(name):
    report = realistic_report() if name == "realistic" else odd_reports()[name]
    page = render_html(report).decode("utf-8")
    markup = _markup(page)

    assert not {"script", "style", "link", "iframe", "img", "object", "embed"} & set(markup.tags)
    assert "style" not in markup.attributes
    assert not [name for name in markup.attributes if name.startswith("on")]
    assert "style=" not in page
    assert "\x00" not in page


def test_html_shows_summary_findings_and_attempts():
    page = render_html(realistic_report()).decode("utf-8")
    markup = _markup(page)

    assert page.startswith("<!DOCTYPE html>")
    assert markup.tags.count("details") == 7
    assert markup.tags.count("pre") == 5 * 2 + 2  # prompt and answer, prompt only
    assert "LLM07:2025" in page
    assert "System Prompt Leakage" in page
    assert "HTTP 503 from the target after 3 retries" in page
    assert "3 of 5 answered attempts succeeded (60%)" in page


def test_html_cuts_a_runaway_answer():
    answer = "repeat " * 10_000
    page = render_html(realistic_report(attempts=(attempt(0, answer=answer),))).decode("utf-8")

    assert f"{len(answer) - ANSWER_DISPLAY_CHARS} more characters not shown" in page
    assert answer not in page
