"""The HTML page: the verdict in plain words before any detail, self-contained, escaped."""

from __future__ import annotations

import re

from tests.conformance.test_report import case, sample
from ttcs.conformance.html import render
from ttcs.conformance.outcome import Status


def test_the_page_says_the_result_in_plain_words_before_the_details() -> None:
    page = render(sample(), {"signer": "Sở TT Huế", "kid": "0123456789abcdef",
                             "signed_at": "2026-01-01T00:00:00Z"})
    verdict = page.index("Result: Level 2")
    assert verdict < page.index("What went wrong") < page.index("Every case")
    assert "2 of 3 cases passed, 1 failed." in page
    assert "Signed by <b>Sở TT Huế</b>" in page


def test_the_page_needs_nothing_from_outside_and_runs_no_script() -> None:
    page = render(sample())
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page


def test_text_from_devices_and_vendors_is_escaped() -> None:
    hostile = case("TC-CORE-001", "core", Status.FAILED).model_copy(
        update={"reason": "<img src=x onerror=alert(1)>"})
    page = render(sample([hostile]))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
