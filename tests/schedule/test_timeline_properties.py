"""Whatever the mix of broadcasts, levels and policies: no device plays two items at once, an
emergency always wins, and no non-emergency item breaks a policy rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttcs.core.schedule.policy import TZ, Policy, Slot, violations, window_of
from ttcs.core.schedule.timeline import Occurrence, resolve
from ttcs.schemas import BulletinLevel

DAY = datetime(2026, 11, 23, tzinfo=TZ)  # a Monday

policies = st.one_of(
    st.none(),
    st.builds(lambda days, per_day, minutes, quiet: Policy.model_validate({
        "weekdays": days, "sessions_per_day": per_day, "max_minutes_per_session": minutes,
        "session_windows": [{"name": "morning", "start": "06:00", "end": "08:00"},
                            {"name": "afternoon", "start": "16:30", "end": "18:30"}],
        "quiet_hours": [{"start": "22:00", "end": "05:00"}] if quiet else None}),
        st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                 min_size=1, unique=True),
        st.integers(1, 2), st.sampled_from([5, 15, 45]), st.booleans()),
)


@st.composite
def occurrences(draw: st.DrawFn) -> list[Occurrence]:
    items = []
    for n in range(draw(st.integers(0, 12))):
        start = DAY + timedelta(days=draw(st.integers(0, 2)),
                                hours=draw(st.sampled_from([5, 6, 7, 12, 16, 17, 18, 23])),
                                minutes=draw(st.integers(0, 59)))
        items.append(Occurrence(
            key=f"b{n}@{start.isoformat()}", broadcast_id=f"b{n}",
            level=draw(st.sampled_from(list(BulletinLevel))), start=start,
            seconds=draw(st.sampled_from([30, 120, 300, 600, 1200])),
            created_at=DAY - timedelta(minutes=draw(st.integers(0, 1000))),
            rank=draw(st.integers(0, 3)),
            latest_end=draw(st.one_of(st.none(), st.just(start + timedelta(hours=1))))))
    return items


CHECK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CHECK
@given(occurrences(), policies)
def test_no_device_ever_plays_two_items_at_once(items: list[Occurrence],
                                                policy: Policy | None) -> None:
    placed = sorted((p for p in resolve(items, policy) if p.placed), key=lambda p: p.start)
    for a, b in pairwise(placed):
        assert a.end <= b.start, f"{a.occurrence.key} overlaps {b.occurrence.key}"


@CHECK
@given(occurrences(), policies)
def test_an_emergency_always_plays_and_only_another_emergency_delays_it(
        items: list[Occurrence], policy: Policy | None) -> None:
    result = {p.occurrence.key: p for p in resolve(items, policy)}
    emergencies = [o for o in items if o.level is BulletinLevel.EMERGENCY]
    for occ in emergencies:
        p = result[occ.key]
        assert p.placed
        if p.start != occ.start:  # delayed: some other emergency was playing right then
            blockers = [result[o.key] for o in emergencies if o.key != occ.key]
            assert any(b.end == p.start for b in blockers)


@CHECK
@given(occurrences(), policies)
def test_no_non_emergency_item_breaks_a_policy_rule(items: list[Occurrence],
                                                    policy: Policy | None) -> None:
    regular = [p for p in resolve(items, policy)
               if p.placed and p.occurrence.level is not BulletinLevel.EMERGENCY]
    if policy is None:
        return
    for p in regular:
        others = [Slot(q.start, q.end) for q in regular if q is not p]
        # Checked against everything else placed: the rule holds for the final timeline.
        broken = [v for v in violations(policy, "x", p.start, p.occurrence.seconds, others)]
        assert not broken, f"{p.occurrence.key}: {[str(v) for v in broken]}"
        assert window_of(policy, p.start, p.end) is not None


@CHECK
@given(occurrences(), policies, st.randoms())
def test_the_result_does_not_depend_on_input_order(items: list[Occurrence],
                                                   policy: Policy | None, rnd: object) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    key = lambda ps: [(p.occurrence.key, p.start, p.reason) for p in ps]  # noqa: E731
    assert key(resolve(items, policy)) == key(resolve(shuffled, policy))


def test_priority_items_follow_the_communes_order_and_normal_items_move_later() -> None:
    at = DAY.replace(hour=6, minute=0)
    made = DAY - timedelta(hours=1)
    items = [
        Occurrence("n", "n", BulletinLevel.NORMAL, at, 300, made, label="weather"),
        Occurrence("p1", "p1", BulletinLevel.PRIORITY, at, 120, made, rank=2),
        Occurrence("p2", "p2", BulletinLevel.PRIORITY, at, 120, made, rank=1),
    ]
    result = resolve(items)
    assert [p.occurrence.key for p in result] == ["p2", "p1", "n"]
    assert result[2].reason == "normal: moved 06:00:00→06:04:00, after priority item p1"
