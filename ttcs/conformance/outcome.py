"""What a case found: one result per check, and the case's status made from them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """A case's (or a check's) verdict."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not_run"  # could not be carried out here (needs a person, a second device, …)
    EXEMPT = "exempt"  # the declaration exempts it, with a reason
    UNVERIFIED = "unverified"  # a check a person must confirm, in a run without a person


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: str
    status: Status
    detail: str | None = None
    by: str = Field(default="kit", description="kit, or person (confirmed at the device)")


class CaseResult(BaseModel):
    """One case in the report."""

    model_config = ConfigDict(extra="forbid")

    id: str
    profile: str
    title: str
    mandatory: bool
    status: Status
    reason: str | None = None
    started_at: str | None = None
    seconds: float = 0.0
    checks: list[CheckResult] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list, description="log lines written during the "
                           "case (secrets redacted), the kit's notes first")
    log_lines_dropped: int = 0


class NotRun(Exception):
    """The case cannot be carried out in this run (the message says why)."""


class CaseAborted(Exception):
    """A required check failed; the rest of the case cannot mean anything."""


def verdict(checks: list[CheckResult]) -> tuple[Status, str | None]:
    """The case's status from its checks: any failure fails it; a check nobody could confirm
    leaves it not run; otherwise it passed."""
    failed = [c for c in checks if c.status is Status.FAILED]
    if failed:
        return Status.FAILED, failed[0].check + (f": {failed[0].detail}" if failed[0].detail
                                                  else "")
    unverified = [c for c in checks if c.status in (Status.UNVERIFIED, Status.NOT_RUN)]
    if unverified:
        return Status.NOT_RUN, (f"{len(unverified)} check(s) need a person at the device "
                                f"(run interactively): {unverified[0].check}")
    if not checks:
        return Status.FAILED, "the case checked nothing (a bug in the kit)"
    return Status.PASSED, None


__all__ = ["CaseAborted", "CaseResult", "CheckResult", "NotRun", "Status", "verdict"]
