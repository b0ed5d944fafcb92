"""One poll loop for all poll devices: fixed rate, no pile-up behind a hanging device."""

from __future__ import annotations

import asyncio

from tests.support.wait import eventually
from ttcs.core.poller import LATENESS_KEPT, Poller


async def test_a_hanging_job_is_skipped_not_piled_up_and_others_keep_their_rate() -> None:
    poller = Poller()
    calls = {"fast": 0, "hang": 0}

    async def fast() -> None:
        calls["fast"] += 1

    async def hang() -> None:
        calls["hang"] += 1
        await asyncio.sleep(10)

    poller.add("fast", 0.05, fast, first_in=0)
    poller.add("hang", 0.05, hang, first_in=0, timeout=5)
    poller.start()
    await asyncio.sleep(0.53)
    await poller.stop()
    assert calls["hang"] == 1
    job = poller.job("hang")
    assert job is not None
    assert job.skipped >= 8
    assert calls["fast"] >= 5  # it kept polling while the other job hung


async def test_a_removed_job_stops_running() -> None:
    poller = Poller()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    poller.add("x", 0.02, job, first_in=0)
    poller.start()
    await asyncio.sleep(0.05)
    poller.remove("x")
    seen = len(runs)
    await asyncio.sleep(0.1)
    await poller.stop()
    assert len(runs) == seen


async def test_poll_now_runs_a_job_off_its_grid_but_never_twice_at_once() -> None:
    poller = Poller()
    release = asyncio.Event()
    runs: list[float] = []

    async def slow() -> None:
        runs.append(asyncio.get_running_loop().time())
        await release.wait()

    poller.add("dev", 3600, slow, timeout=30, first_in=3600)
    poller.start()
    try:
        assert poller.poll_now("dev")  # an hour early: the parent came back
        await eventually(lambda: len(runs) == 1)
        assert not poller.poll_now("dev")  # still running: not started again
        release.set()
        await eventually(lambda: not poller.job("dev").running)  # type: ignore[union-attr]
        assert poller.job("dev").next_due - asyncio.get_running_loop().time() > 3500  # type: ignore[union-attr]
        assert not poller.poll_now("nobody")
    finally:
        await poller.stop()


async def test_a_paced_job_runs_in_one_slot_of_every_n_and_poll_now_still_runs_it() -> None:
    poller = Poller()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    poller.add("x", 0.01, job, first_in=0)
    poller.pace("x", 4)
    poller.start()
    try:
        job_ = poller.job("x")
        assert job_ is not None and job_.every == 4
        await eventually(lambda: len(runs) >= 3)
        # every run but a first one came after three slots that passed
        assert job_.paced >= 3 * (job_.runs - 1)
        before = len(runs)
        assert poller.poll_now("x")
        await eventually(lambda: len(runs) > before)
        poller.pace("x", 1)
        passed = job_.paced
        await eventually(lambda: job_.runs >= before + 10)
        assert job_.paced == passed  # back to every slot
    finally:
        await poller.stop()


async def test_a_job_keeps_the_lateness_of_its_last_runs_only() -> None:
    poller = Poller()

    async def job() -> None:
        pass

    poller.add("often", 0.002, job, first_in=0)
    poller.start()
    kept = poller.job("often")
    assert kept is not None
    await eventually(lambda: kept.runs > LATENESS_KEPT + 20, timeout=20)
    await poller.stop()
    assert len(kept.lateness) == LATENESS_KEPT
    assert all(0 <= x < 5 for x in kept.lateness)  # seconds late, each under a loaded loop
