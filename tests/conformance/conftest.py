"""The certifications the conformance tests judge: run once per session, side by side.

A certification mostly waits (timeouts, polls, outages it causes), so the runs the collected
tests need — built-in plugins and broken fixtures — are started together, each in a process
of its own (:mod:`ttcs.conformance.batch`), the first time a test asks for one.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.conformance.support import BROKEN_MODULE, BUILTIN_MODULE, fixture_manager, request_for
from ttcs.conformance.batch import Outcome, certify_many
from ttcs.conformance.runner import RunRequest


class Certifications:
    """Reports by run name (``builtin:native``, ``broken:leaks_secret``), computed lazily."""

    def __init__(self, wanted: Iterable[str]) -> None:
        self.wanted = sorted(set(wanted))
        self._outcomes: dict[str, Outcome] | None = None

    def __getitem__(self, name: str) -> Outcome:
        if self._outcomes is None:
            names = self.wanted if name in self.wanted else [*self.wanted, name]
            self._outcomes = dict(zip(names, certify_many([_request(n) for n in names]),
                                      strict=True))
        if name not in self._outcomes:  # not foreseen (a test added at run time)
            [self._outcomes[name]] = certify_many([_request(name)])
        return self._outcomes[name]


def _request(name: str) -> RunRequest:
    family, _, which = name.partition(":")
    if family == "broken":
        manager, plugin = fixture_manager(which)
        return request_for(plugin, plugins=manager)
    return request_for(which)


def _wanted(items: Iterable[pytest.Item]) -> set[str]:
    """The runs the collected tests will ask for, from their parameters."""
    wanted = set()
    for item in items:
        params = getattr(item, "callspec", None)
        module = getattr(getattr(item, "module", None), "__name__", "")
        if params is None:
            continue
        if module == BUILTIN_MODULE and "plugin" in params.params:
            wanted.add(f"builtin:{params.params['plugin']}")
        elif module == BROKEN_MODULE and "fixture" in params.params:
            wanted.add(f"broken:{params.params['fixture']}")
    return wanted


@pytest.fixture(scope="session")
def certifications(request: pytest.FixtureRequest) -> Certifications:
    return Certifications(_wanted(request.session.items))
