"""Deliberately broken variants of the native plugin fail exactly the cases their defect breaks.

Each fixture under ``tests/fixtures/conformance/`` is the native plugin with one defect and
the native plugin's declaration; every other case of every declared profile must still pass,
so a case that fails "by accident" (or one that cannot fail) shows up here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conformance.conftest import Certifications
from tests.conformance.support import failed, not_passed
from ttcs.conformance.report import Report

BROKEN = {
    "ignores_keys": {"TC-CORE-006"},  # a repeated idempotency key acts twice
    "leaks_secret": {"TC-SEC-001"},  # the access key appears in a log line
    "blocks_loop": {"TC-RES-005"},  # time.sleep in read_status stops the event loop
    "unstable_serial": {"TC-RES-006"},  # another serial after a firmware upgrade
}


def traced_to_the_blocking_line(report: Report) -> None:
    [case] = [c for c in report.cases if c.id == "TC-RES-005"]
    assert "blocks_loop/__init__.py" in (case.checks[0].detail or "")
    assert report.figures["stalls"]


def leak_not_republished(report: Report) -> None:
    text = report.model_dump_json()
    assert "fixture-access-key-8c1f" not in text
    assert "«secret»" in text  # the leaking line is kept, redacted


#: what else each broken run must show
ALSO: dict[str, Callable[[Report], None]] = {
    "blocks_loop": traced_to_the_blocking_line,
    "leaks_secret": leak_not_republished,
}


@pytest.mark.parametrize(("fixture", "expected"), list(BROKEN.items()))
def test_broken_plugin_fails_exactly_the_cases_of_its_defect(
        fixture: str, expected: set[str], certifications: Certifications) -> None:
    report = certifications[f"broken:{fixture}"]
    assert isinstance(report, Report), report
    assert failed(report) == expected, not_passed(report)
    assert set(not_passed(report)) == expected
    assert report.level.rank < 4
    ALSO.get(fixture, lambda _: None)(report)
