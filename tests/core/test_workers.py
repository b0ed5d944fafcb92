"""Partitioning between workers: rendezvous hashing over the live worker set."""

from __future__ import annotations

import pytest

from ttcs.core.workers import rendezvous, with_mqtt5


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_rendezvous_owners_are_deterministic_balanced_and_move_little(workers: int) -> None:
    ids = tuple(f"w{n}" for n in range(workers))
    keys = [f"dev-{n}" for n in range(3000)]
    owners = {k: rendezvous(k, ids) for k in keys}
    assert owners == {k: rendezvous(k, tuple(reversed(ids))) for k in keys}
    share = [sum(o == w for o in owners.values()) for w in ids]
    assert min(share) > len(keys) / workers * 0.8
    if workers > 1:  # one leaves: only its keys move
        rest = ids[1:]
        moved = [k for k in keys if rendezvous(k, rest) != owners[k]]
        assert all(owners[k] == ids[0] for k in moved)


def test_workers_ask_the_broker_for_mqtt5_whatever_the_url_said() -> None:
    assert with_mqtt5("mqtt://u:p@h:1883") == "mqtt://u:p@h:1883?version=5"
    assert with_mqtt5("mqtts://h?ca=/c.pem&version=4") == "mqtts://h?ca=%2Fc.pem&version=5"
