"""The implementation of every case, registered by case id.

Each module implements the cases of one profile with ``@implements("TC-…")``. A case gets a
:class:`~ttcs.conformance.context.CaseContext` and records its checks on it; it never knows the
plugin it certifies. Cases marked ``whole_run`` judge what was observed during the whole run
(the logs, the event loop's lag) and run after all others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..context import CaseContext

Implementation = Callable[[CaseContext], Awaitable[None]]

IMPLEMENTATIONS: dict[str, Implementation] = {}
WHOLE_RUN: set[str] = set()


def implements(case_id: str, *, whole_run: bool = False
               ) -> Callable[[Implementation], Implementation]:
    def register(func: Implementation) -> Implementation:
        if case_id in IMPLEMENTATIONS:
            raise ValueError(f"{case_id} is implemented twice")
        IMPLEMENTATIONS[case_id] = func
        if whole_run:
            WHOLE_RUN.add(case_id)
        return func

    return register


def implementations() -> dict[str, Implementation]:
    """Every implementation, by case id (importing the profile modules registers them)."""
    from . import audio, core, display, resilience, security, zones  # noqa: F401

    return IMPLEMENTATIONS


__all__ = ["IMPLEMENTATIONS", "WHOLE_RUN", "Implementation", "implementations", "implements"]
